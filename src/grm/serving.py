"""A minimal OpenAI-compatible completions server over any ``Sampler`` (stdlib only, for CPU/dev use).

Endpoints: ``POST /v1/completions`` (``prompt`` as a string or a list of strings, ``n``, ``temperature``,
``max_tokens``, ``seed``, ``top_p`` ignored unless 1), ``GET /v1/models`` and ``GET /health``. Requests are served
one at a time (the sampler is not thread-safe); a list ``prompt`` is sampled as one batch. Choices are ordered
prompt-major: ``index = prompt_index * n + sample_index``, as in the OpenAI API.

Why not ``transformers serve``: in transformers 5.24 it needs ``transformers[serving]`` (the ``openai`` package),
ignores ``n`` (always one choice), rejects list prompts, samples only when the model's generation_config sets
``do_sample=True`` (otherwise ``temperature > 0`` is silently greedy) and seeds with a process-wide
``torch.manual_seed``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from grm.sampling.base import Sampler

logger = logging.getLogger(__name__)

MAX_N = 256
MAX_PROMPTS = 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_TOKENS = 16  # the OpenAI API default


class RequestError(ValueError):
    """A client error, answered with its HTTP status and an OpenAI-style error body."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


def parse_completion_request(body: Any, model_name: str) -> dict[str, Any]:
    """Validate a ``/v1/completions`` JSON body.

    Args:
        body: the decoded JSON.
        model_name: the served model name (a different ``model`` is a 404, as in vLLM).

    Returns:
        ``{"prompts": [...], "n", "temperature", "max_tokens", "seed"}``.

    Raises:
        RequestError: the body is invalid (the message names the field).
    """
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if model is not None and model != model_name:
        raise RequestError(
            f"The model `{model}` does not exist; this server serves `{model_name}`.", HTTPStatus.NOT_FOUND, "model"
        )
    if body.get("stream"):
        raise RequestError("stream=true is not supported by grm serve; send stream=false.", param="stream")
    if body.get("echo"):
        raise RequestError("echo=true is not supported by grm serve.", param="echo")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise RequestError("`prompt` must be a string or a non-empty list of strings.", param="prompt")
    if len(prompts) > MAX_PROMPTS:
        raise RequestError(f"At most {MAX_PROMPTS} prompts per request, got {len(prompts)}.", param="prompt")

    def integer(name: str, default: int, lo: int, hi: int | None = None) -> int:
        value = body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise RequestError(f"`{name}` must be an integer {bound}, got {value!r}.", param=name)
        return value

    n = integer("n", 1, 1, MAX_N)
    max_tokens = integer("max_tokens", DEFAULT_MAX_TOKENS, 1)
    seed = integer("seed", 0, -(2**63), 2**63 - 1)
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if isinstance(temperature, bool) or not isinstance(temperature, int | float) or temperature < 0:
        raise RequestError(f"`temperature` must be a number >= 0, got {temperature!r}.", param="temperature")
    top_p = body.get("top_p")
    if top_p is not None and top_p != 1:
        raise RequestError(
            "`top_p` other than 1 is not supported by grm serve; configure it on the sampler.", param="top_p"
        )
    return {
        "prompts": prompts,
        "n": n,
        "temperature": float(temperature),
        "max_tokens": max_tokens,
        "seed": seed,
    }


class CompletionService:
    """Turns validated requests into OpenAI completion responses, one sampler call at a time."""

    def __init__(self, sampler: Sampler, model_name: str) -> None:
        """Wrap a sampler.

        Args:
            sampler: any ``Sampler``; if it has ``generate_with_details`` (``HFSampler``), usage and finish reasons
                are reported.
            model_name: the name clients put in ``model``.
        """
        self.sampler = sampler
        self.model_name = model_name
        self.created = int(time.time())
        self._lock = threading.Lock()

    def models(self) -> dict[str, Any]:
        """Return the ``/v1/models`` body."""
        card = {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "grm"}
        return {"object": "list", "data": [card]}

    def complete(self, body: Any) -> dict[str, Any]:
        """Answer one ``/v1/completions`` request.

        Args:
            body: the decoded JSON request.

        Returns:
            The OpenAI ``text_completion`` body.
        """
        req = parse_completion_request(body, self.model_name)
        prompts, n = req["prompts"], req["n"]
        args = (prompts, n, req["temperature"], req["max_tokens"], req["seed"])
        with self._lock:
            detailed = getattr(self.sampler, "generate_with_details", None)
            if callable(detailed):
                rows = detailed(*args)
                texts = [[c.text for c in row] for row in rows]
            else:
                rows = None
                texts = self.sampler.generate(*args)
        if len(texts) != len(prompts) or any(len(row) != n for row in texts):
            raise RuntimeError(f"Sampler returned a wrong shape for {len(prompts)} prompts x n={n}")
        choices: list[dict[str, Any]] = []
        usage: dict[str, int] | None = None
        if rows is not None:
            prompt_tokens = sum(row[0].prompt_tokens for row in rows)
            completion_tokens = sum(c.completion_tokens for row in rows for c in row)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        for i, row in enumerate(texts):
            for j, text in enumerate(row):
                finish = rows[i][j].finish_reason if rows is not None else None
                choices.append({"index": i * n + j, "text": text, "logprobs": None, "finish_reason": finish})
        out: dict[str, Any] = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out


def _error_body(message: str, status: HTTPStatus, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": int(status)}}


def make_handler(service: CompletionService) -> type[BaseHTTPRequestHandler]:
    """Build the request handler class bound to ``service``.

    Args:
        service: the completion service.

    Returns:
        A ``BaseHTTPRequestHandler`` subclass.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes
        server_version = "grm-serve/0.1"

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s - %s", self.address_string(), format % args)

        def _send(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            if path == "/v1/models":
                self._send(HTTPStatus.OK, service.models())
            elif path in ("/health", "/v1/health"):
                self._send(HTTPStatus.OK, {"status": "ok"})
            else:
                self._send(HTTPStatus.NOT_FOUND, _error_body(f"No route GET {path}", HTTPStatus.NOT_FOUND))

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self.close_connection = True
                self._send(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    _error_body(f"Body over {MAX_BODY_BYTES} bytes", HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
                )
                return
            raw = self.rfile.read(length) if length else b""
            if path != "/v1/completions":
                self._send(HTTPStatus.NOT_FOUND, _error_body(f"No route POST {path}", HTTPStatus.NOT_FOUND))
                return
            try:
                body = json.loads(raw or b"null")
            except json.JSONDecodeError as exc:
                self._send(HTTPStatus.BAD_REQUEST, _error_body(f"Invalid JSON body: {exc}", HTTPStatus.BAD_REQUEST))
                return
            try:
                result = service.complete(body)
            except RequestError as exc:
                self._send(exc.status, _error_body(str(exc), exc.status, exc.param))
            except ValueError as exc:  # the sampler rejected the input (e.g. a prompt it cannot read): not retryable
                status = HTTPStatus.BAD_REQUEST
                self._send(status, _error_body(f"{type(exc).__name__}: {exc}", status, "prompt"))
            except Exception as exc:  # the server must answer, whatever the sampler raised
                logger.exception("completion failed")
                status = HTTPStatus.INTERNAL_SERVER_ERROR
                self._send(status, _error_body(f"{type(exc).__name__}: {exc}", status))
            else:
                self._send(HTTPStatus.OK, result)

    return Handler


def make_server(
    sampler: Sampler, host: str = "127.0.0.1", port: int = 8000, model_name: str = "grm"
) -> ThreadingHTTPServer:
    """Create (but do not start) the HTTP server.

    Args:
        sampler: backend that produces the completions.
        host: bind address.
        port: TCP port (0 = pick a free one; read it back from ``server.server_address``).
        model_name: name reported by ``/v1/models`` and required in ``model`` (when given).

    Returns:
        The server; call ``serve_forever()`` (or use ``start_in_thread``), then ``shutdown()``.
    """
    service = CompletionService(sampler, model_name)
    server = ThreadingHTTPServer((host, port), make_handler(service))
    server.daemon_threads = True
    server.block_on_close = False  # shutdown must not wait for a long generation in flight
    return server


def start_in_thread(
    sampler: Sampler, host: str = "127.0.0.1", port: int = 0, model_name: str = "grm"
) -> tuple[ThreadingHTTPServer, threading.Thread]:
    """Start the server on a background daemon thread (tests, notebooks).

    Args:
        sampler: backend.
        host: bind address.
        port: TCP port (0 = a free one).
        model_name: served model name.

    Returns:
        ``(server, thread)``; ``server.server_address[1]`` is the port; stop with ``server.shutdown()``.
    """
    server = make_server(sampler, host, port, model_name)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="grm-serve", daemon=True
    )
    thread.start()
    return server, thread


def serve(sampler: Sampler, host: str = "127.0.0.1", port: int = 8000, model_name: str = "grm") -> None:
    """Serve ``sampler`` until interrupted (Ctrl-C).

    Args:
        sampler: backend.
        host: bind address (keep 127.0.0.1 unless the network is trusted: there is no authentication).
        port: TCP port.
        model_name: served model name.
    """
    server = make_server(sampler, host, port, model_name)
    bound_host, bound_port = server.server_address[:2]
    logger.info(
        "Serving %s at http://%s:%s/v1 (POST /v1/completions, GET /v1/models)", model_name, bound_host, bound_port
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("Interrupted; shutting down")
    finally:
        server.server_close()


def serve_command(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_model_name: str | None = None,
    device: str = "cpu",
    num_threads: int | None = None,
    batch_size: int = 16,
    chat_template: bool = False,
    trust_remote_code: bool = False,
    dtype: str = "float32",
) -> None:
    """Entry point for ``grm serve --model SPEC``: build a sampler with ``build_sampler`` and serve it.

    Args:
        model: a sampler spec (a local model directory, ``world-teacher[:RATE]``, ``vllm:PATH``, ...).
        host: bind address.
        port: TCP port.
        served_model_name: name exposed in ``/v1/models`` (default: the spec).
        device: torch device for local models.
        num_threads: torch CPU threads.
        batch_size: prompts per prefill batch.
        chat_template: wrap prompts in the tokenizer's chat template.
        trust_remote_code: allow custom modelling code.
        dtype: model dtype.
    """
    from grm.sampling import build_sampler

    sampler = build_sampler(
        model,
        device=device,
        num_threads=num_threads,
        batch_size=batch_size,
        chat_template=chat_template,
        trust_remote_code=trust_remote_code,
        dtype=dtype,
        progress=False,
    )
    serve(sampler, host=host, port=port, model_name=served_model_name or model)
