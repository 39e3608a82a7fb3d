"""A scripted stdlib HTTP server on 127.0.0.1 (free port) for client tests: retries, status codes, timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A reply: (status, JSON body, headers); a callable reply gets the request body and returns that tuple.
Reply = tuple[int, Any, dict[str, str]]


class StubServer:
    """Answer POST/GET requests from ``replies`` in order (the last one repeats); record every request body."""

    def __init__(self, replies: list[Reply | Callable[[dict], Reply]], delay_s: float = 0.0) -> None:
        self.replies = list(replies)
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, body: dict) -> None:
                with stub._lock:
                    stub.requests.append({"path": self.path, "method": self.command, "body": body})
                    reply = stub.replies[min(len(stub.requests) - 1, len(stub.replies) - 1)]
                if stub.delay_s:
                    time.sleep(stub.delay_s)
                status, payload, headers = reply(body) if callable(reply) else reply
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer(json.loads(self.rfile.read(length) or b"null"))

            def do_GET(self) -> None:
                self._answer({})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> StubServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(texts: list[str]) -> dict[str, Any]:
    """An OpenAI completions body with one choice per text."""
    return {
        "id": "cmpl-stub",
        "object": "text_completion",
        "choices": [{"index": i, "text": t, "finish_reason": "length"} for i, t in enumerate(texts)],
    }
