"""Run the app under uvicorn: bind rules, connection timeouts, a thread runner for tests, and ``grm serve``.

uvicorn (h11) bounds idle keep-alive connections (``timeout_keep_alive``), the size of an incomplete request head
(``h11_max_incomplete_event_size``, so endless headers are refused) and open connections (``limit_concurrency``,
answered 503), but arms no timer while a *new* request's head is arriving: a client that sends half a header and
stalls holds its connection forever (uvicorn 0.54 ``H11Protocol``: the keep-alive timer starts only after a response
and ``data_received`` cancels it). ``HeaderTimeoutProtocol`` adds that timer; the body timeout is in the app's
guard middleware.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from grm.sampling.base import Sampler
from grm.serving.access import check_bind
from grm.serving.serve_config import DEFAULTS, ServeConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """Transport-level limits handed to uvicorn."""

    header_timeout_s: float = DEFAULTS["header_timeout_s"]  # a request head must arrive within this
    keep_alive_s: float = DEFAULTS[
        "keep_alive_s"
    ]  # idle keep-alive connections: trainers idle minutes between rollouts
    max_header_bytes: int = 64 * 1024
    max_connections: int | None = None  # uvicorn limit_concurrency: open connections, idle ones included (None = off;
    # the app's in-flight cap, ServerLimits.max_in_flight, answers 503 with Retry-After and counts it in /metrics)


def _protocol_class(header_timeout_s: float) -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        """H11Protocol that closes a connection whose request head has not arrived within ``header_timeout_s``."""

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._head_timer = None
            self._arm()

        def _arm(self) -> None:
            if self._head_timer is None:
                self._head_timer = self.loop.call_later(header_timeout_s, self._head_timeout)

        def _disarm(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timeout(self) -> None:
            self._head_timer = None
            if (self.cycle is None or self.cycle.response_complete) and not self.transport.is_closing():
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._disarm()  # a request is being served; its body has the app's body timeout
            else:
                self._arm()  # bytes of a request head arrived but the head is incomplete

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def uvicorn_config(app: Any, host: str, port: int, limits: ConnectionLimits, log_level: str = "warning") -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol_class(limits.header_timeout_s),
        ws="none",
        lifespan="on",
        timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=limits.max_header_bytes,
        limit_concurrency=limits.max_connections,
        log_level=log_level,
        access_log=False,
        server_header=False,
    )


class RunningServer:
    """A uvicorn server on a background thread (tests, notebooks, benchmarks)."""

    def __init__(self, app: Any, host: str, port: int, limits: ConnectionLimits) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.host, self.port = host, self.sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn_config(app, host, self.port, limits))
        self.app = app
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start (see the log)")
            time.sleep(0.01)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def server_address(self) -> tuple[str, int]:  # the stdlib server's attribute, kept for callers
        return (self.host, self.port)

    def shutdown(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()

    def server_close(self) -> None:  # the stdlib server's method, kept for callers
        self.sock.close()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def start_in_thread(
    sampler: Sampler,
    host: str = "127.0.0.1",
    port: int = 0,
    model_name: str = "grm",
    *,
    config: Any = None,
    meta: Any = None,
    connection: ConnectionLimits | None = None,
) -> RunningServer:
    """Start the server on a daemon thread.

    Args:
        sampler: the GRM's sampler.
        host: bind address (non-local needs ``config.api_key``).
        port: TCP port (0 = a free one; read ``.port`` / ``.url``).
        model_name: served model name (used when ``config`` is None).
        config: an ``AppConfig`` or a ``ServeConfig`` (``grm.serving.assemble.as_app_config``).
        meta: meta RM scorer for MetaRM@k.
        connection: transport limits.

    Returns:
        The running server; stop it with ``.shutdown()`` (or use it as a context manager).
    """
    from grm.serving.app import create_app
    from grm.serving.assemble import as_app_config
    from grm.serving.requests import AppConfig

    config = as_app_config(config or AppConfig(model_name=model_name), sampler)
    check_bind(host, config.api_key, config.access.trusted_networks)
    return RunningServer(create_app(sampler, config, meta), host, port, connection or ConnectionLimits())


def serve(app_config: Any, sampler: Sampler, host: str, port: int, meta: Any, connection: ConnectionLimits) -> None:
    """Serve until interrupted (Ctrl-C)."""
    import uvicorn

    from grm.serving.app import create_app

    check_bind(host, app_config.api_key, app_config.access.trusted_networks)
    app = create_app(sampler, app_config, meta)
    log.warning(
        "Serving %s at http://%s:%s (POST /v1/score, /get_reward, /v1/completions; docs at /docs)",
        app_config.model_name,
        host,
        port,
    )
    uvicorn.Server(uvicorn_config(app, host, port, connection, log_level="info")).run()


def connection_limits(cfg: ServeConfig) -> ConnectionLimits:
    """uvicorn's transport limits from the knobs."""
    return ConnectionLimits(cfg.header_timeout_s, keep_alive_s=cfg.keep_alive_s)
