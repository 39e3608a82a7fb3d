"""Transport guards of ``grm serve`` as plain ASGI middleware: bearer-token auth (constant-time compare; ``/health``
stays open), request-head size, body size (Content-Length or counted while streaming, so chunked bodies are bounded
too) and the body deadline; records every request in the metrics."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from http import HTTPStatus
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException

from grm.serving.completions import error_body
from grm.serving.metrics import Metrics
from grm.serving.requests import AppConfig


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw + (headers or [])})
    await send({"type": "http.response.body", "body": data})


async def _drain(receive: Any, max_bytes: int, timeout_s: float) -> None:
    """Read and drop the rest of an over-limit streamed body (at most ``max_bytes`` more, within ``timeout_s``) before
    the 413 goes out: a server that closes with unread input makes the kernel reset the connection, and a client still
    sending (most send the whole body before reading) then sees "connection reset" instead of the 413. A body longer
    than that still gets the reset."""
    drained = 0
    deadline = asyncio.get_running_loop().time() + timeout_s
    while drained <= max_bytes:
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except TimeoutError:
            return
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class GuardMiddleware:
    """Auth (bearer token, constant-time compare; ``/health`` stays open), the body size limit (Content-Length or
    counted while streaming, so chunked bodies are bounded too) and the body timeout; records metrics."""

    OPEN_PATHS = ("/health",)

    def __init__(self, app: Any, config: AppConfig, metrics: Metrics, routes: set[str]) -> None:
        self.app = app
        self.config = config
        self.metrics = metrics
        self.routes = routes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status_box = [500]
        started = [False]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                started[0] = True
            await send(message)

        route = scope["path"] if scope["path"] in self.routes else "other"
        try:
            await self._guarded(scope, receive, send_wrapper, started)
        finally:
            self.metrics.request(route, status_box[0], time.monotonic() - start)

    async def _guarded(self, scope: Any, receive: Any, send: Any, started: list[bool]) -> None:
        head_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head_bytes > self.config.limits.max_header_bytes:
            msg = f"The request headers have {head_bytes} bytes; at most {self.config.limits.max_header_bytes}."
            body = error_body(msg, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers")
            await _send_json(send, 431, body, [(b"connection", b"close")])
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        key = self.config.api_key
        if key is not None and scope["path"] not in self.OPEN_PATHS:
            auth = headers.get("authorization", b"")
            token = auth[7:] if auth[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(token, key.encode()):
                msg = "Missing or wrong API key: send `Authorization: Bearer <key>` (the server's --api-key)."
                body = error_body(msg, HTTPStatus.UNAUTHORIZED, "authorization")
                await _send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])
                return
        limit = self.config.limits.max_body_bytes
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            msg = f"The body has {int(length)} bytes; this server accepts at most {limit} (--max-body-bytes)."
            body = error_body(msg, HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body")
            await _send_json(send, 413, body, [(b"connection", b"close")])
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.limits.body_timeout_s
        seen = [0]
        complete = [False]

        async def guarded_receive() -> Any:
            if complete[0]:  # after the body (e.g. a disconnect listener): no deadline
                return await receive()
            remaining = deadline - loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError:
                raise StarletteHTTPException(
                    408, f"The body did not arrive within {self.config.limits.body_timeout_s:g} s."
                ) from None
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > limit:
                    if message.get("more_body", False):
                        await _drain(receive, limit, self.config.limits.body_timeout_s)
                    raise StarletteHTTPException(413, f"The body is over {limit} bytes (--max-body-bytes).")
                complete[0] = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, send)
