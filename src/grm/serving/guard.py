"""Transport guards of ``grm serve`` as plain ASGI middleware: auth (constant-time compare; ``/health`` stays open),
the ``Host`` check of a key-less loopback server, the in-flight request cap, request-head size, body size
(Content-Length or counted while streaming, so chunked bodies are bounded too) and the body deadline; records every
request in the metrics and logs every 4xx/5xx with its reason (one line).

The key is accepted where clients that cannot send headers can put it (OpenRLHF's ``--remote_rm_url``, slime's
``--rm-url`` are plain URLs): ``Authorization: Bearer KEY``, a ``/key/KEY/`` path prefix
(``http://host:8000/key/KEY/get_reward``) or ``?api_key=KEY``. A client in a ``--trust-network`` CIDR needs none.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.exceptions import HTTPException as StarletteHTTPException

from grm.serving.completions import error_body
from grm.serving.metrics import Metrics
from grm.serving.requests import AppConfig

log = logging.getLogger("grm.serving")
KEY_PREFIX = "/key/"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]", "::1")


def _host_name(value: str) -> str:
    """``Host`` header without its port (``[::1]:80`` -> ``[::1]``)."""
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


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
        self.in_flight = 0
        self.networks = [ipaddress.ip_network(n, strict=False) for n in config.access.trusted_networks]
        metrics.gauges["grm_requests_in_flight"] = lambda: float(self.in_flight)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        status_box = [500]
        started = [False]
        shown = scope["path"]  # never the key

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_box[0] = message["status"]
                started[0] = True
            elif message["type"] == "http.response.body" and status_box[0] >= 400 and status_box[0] != 499:
                self._log_error(scope, shown, status_box[0], message.get("body", b""))
            await send(message)

        scope, key_ok = self._key_from_url(scope)
        shown = scope["path"]
        route = scope["path"] if scope["path"] in self.routes else "other"
        self.in_flight += 1
        try:
            await self._guarded(scope, receive, send_wrapper, started, key_ok)
        finally:
            self.in_flight -= 1
            self.metrics.request(route, status_box[0], time.monotonic() - start)

    def _log_error(self, scope: Any, path: str, status: int, body: bytes) -> None:
        """One line per error answer: method, path (without any key), status, the field and the message."""
        try:
            err = json.loads(body)["error"]
            reason = f"{err.get('param') or '-'}: {err.get('message')}"
        except Exception:
            reason = body[:200].decode("utf-8", "replace")
        client = (scope.get("client") or ("-",))[0]
        log.warning("%s %s from %s -> %d %s", scope.get("method"), path, client, status, reason)

    def _key_from_url(self, scope: Any) -> tuple[Any, bool | None]:
        """Move a ``/key/KEY/`` path prefix or an ``api_key`` query parameter out of the request: the new scope
        and whether the URL's key was right (None: the URL carried none)."""
        path = scope["path"]
        given: str | None = None
        if path.startswith(KEY_PREFIX):
            given, _, rest = path[len(KEY_PREFIX) :].partition("/")
            path = "/" + rest
        query = scope.get("query_string", b"").decode("latin-1")
        if "api_key=" in query:
            pairs = parse_qsl(query, keep_blank_values=True)
            given = next((v for k, v in pairs if k == "api_key"), given)
            query = urlencode([(k, v) for k, v in pairs if k != "api_key"])
        if given is None:
            return scope, None
        key = self.config.api_key or ""
        ok = bool(key) and hmac.compare_digest(given.encode(), key.encode())
        scope = {**scope, "path": path, "raw_path": path.encode(), "query_string": query.encode("latin-1")}
        return scope, ok

    def _trusted(self, scope: Any) -> bool:
        if not self.networks:
            return False
        try:
            addr = ipaddress.ip_address((scope.get("client") or ("",))[0])
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    async def _guarded(self, scope: Any, receive: Any, send: Any, started: list[bool], key_ok: bool | None) -> None:
        head_bytes = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if head_bytes > self.config.limits.max_header_bytes:
            msg = f"The request headers have {head_bytes} bytes; at most {self.config.limits.max_header_bytes}."
            body = error_body(msg, HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers")
            await _send_json(send, 431, body, [(b"connection", b"close")])
            return
        headers = {k.decode("latin-1").lower(): v for k, v in scope["headers"]}
        access = self.config.access
        if access.allowed_hosts:
            host = _host_name(headers.get("host", b"").decode("latin-1")).lower()
            if host not in access.allowed_hosts:
                msg = (
                    f"Host {host!r} is not this server's (a key-less server answers only {', '.join(access.allowed_hosts)}"
                    "; DNS-rebinding protection). Use one of those names, or --allowed-host NAME."
                )
                await _send_json(send, 421, error_body(msg, HTTPStatus.MISDIRECTED_REQUEST, "host"))
                return
        key = self.config.api_key
        if key is not None and scope["path"] not in self.OPEN_PATHS and not self._trusted(scope):
            auth = headers.get("authorization", b"")
            token = auth[7:] if auth[:7].lower() == b"bearer " else b""
            if not (key_ok or hmac.compare_digest(token, key.encode())):
                msg = (
                    "Missing or wrong API key: send `Authorization: Bearer <key>`, or put it in the URL "
                    "(`/key/<key>/get_reward` or `?api_key=<key>`) for clients that cannot send headers."
                )
                body = error_body(msg, HTTPStatus.UNAUTHORIZED, "authorization")
                await _send_json(send, 401, body, [(b"www-authenticate", b"Bearer")])
                return
        if self.in_flight > self.config.limits.max_in_flight:
            self.metrics.count("rejected", "503")
            msg = f"{self.in_flight - 1} requests in flight (--max-connections {self.config.limits.max_in_flight})."
            body = error_body(msg, HTTPStatus.SERVICE_UNAVAILABLE)
            await _send_json(send, 503, body, [(b"retry-after", b"1")])
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
