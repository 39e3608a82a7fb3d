"""GuardMiddleware's body limit on a streamed (chunked) body: the over-limit rest is read and dropped, boundedly,
before the 413 (a server closing with unread input makes the kernel reset the connection, and a client that sends
its whole body before reading sees the reset, not the 413)."""

from __future__ import annotations

import asyncio

import pytest
from starlette.exceptions import HTTPException as StarletteHTTPException

from grm.serving.guard import GuardMiddleware
from grm.serving.metrics import Metrics
from grm.serving.requests import AppConfig, ServerLimits

LIMIT = 1000


class Stream:
    """An ASGI ``receive`` giving ``n`` body messages of ``size`` bytes (then, with ``stall``, waiting forever)."""

    def __init__(self, n: int, size: int, stall: bool = False) -> None:
        self.left, self.size, self.stall = n, size, stall
        self.read = 0

    async def __call__(self) -> dict:
        if self.left == 0:
            if self.stall:
                await asyncio.sleep(3600)
            return {"type": "http.disconnect"}
        self.left -= 1
        self.read += self.size
        return {"type": "http.request", "body": b"x" * self.size, "more_body": self.left > 0 or self.stall}


def _post(stream: Stream, timeout_s: float = 5.0) -> None:
    async def app(scope, receive, send) -> None:  # reads the body as FastAPI does
        while (await receive()).get("more_body"):
            pass

    config = AppConfig(limits=ServerLimits(max_body_bytes=LIMIT, body_timeout_s=timeout_s))
    guard = GuardMiddleware(app, config, Metrics(), {"/v1/score"})
    scope = {"type": "http", "path": "/v1/score", "headers": [(b"transfer-encoding", b"chunked")]}

    async def send(message) -> None:
        pass

    with pytest.raises(StarletteHTTPException) as raised:
        asyncio.run(guard(scope, stream, send))
    assert raised.value.status_code == 413


def test_an_over_limit_stream_is_read_to_its_end_before_the_413() -> None:
    stream = Stream(n=15, size=100)  # 1,500 bytes: 500 over
    _post(stream)
    assert stream.left == 0 and stream.read == 1500


def test_the_drain_stops_one_limit_past_the_limit() -> None:
    stream = Stream(n=1000, size=100)  # 100 kB: far more than twice the limit
    _post(stream)
    assert 2 * LIMIT < stream.read <= 2 * LIMIT + 2 * 100 and stream.left > 0


def test_the_drain_stops_when_the_client_stalls() -> None:
    stream = Stream(n=12, size=100, stall=True)
    _post(stream, timeout_s=0.2)
    assert stream.read == 1200
