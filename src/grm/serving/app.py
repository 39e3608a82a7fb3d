"""The FastAPI application: ``/v1/score``, ``/get_reward`` (OpenRLHF), ``/v1/completions`` (OpenAI), ``/health``,
``/v1/models``, ``/metrics`` (Prometheus) and the OpenAPI docs at ``/docs``.

FastAPI (over Starlette) rather than Starlette alone: the request models below are the validation *and* the
OpenAPI schema at ``/docs``, and its error hook names the failing field; everything transport-related (body size,
body timeout, auth, metrics) is plain ASGI middleware here, independent of FastAPI. Import this module only to
serve (``import grm`` stays light).

Every error body is OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``, where ``param`` names the
field (``items[0].responses``, ``k``, ``temperature``, ``body``, ...).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from grm.sampling.base import Sampler
from grm.serving.completions import CompletionService, RequestError, error_body, parse_completion_request
from grm.serving.engine import Engine, EngineError, EngineSettings, member_view
from grm.serving.metrics import Metrics
from grm.serving.scoring import MetaScorer, ScoreSettings

log = logging.getLogger(__name__)

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ServerLimits:
    """Per-request limits; each violation is a 4xx naming the field."""

    max_body_bytes: int = 4 * 1024 * 1024
    max_items: int = 64  # items per /v1/score batch, samples per /get_reward request
    max_responses: int = 16  # responses per item (and group_size)
    max_k: int = 32
    max_text_chars: int = 32_000  # per query, response or message
    max_new_tokens: int = 4096
    max_temperature: float = 5.0
    body_timeout_s: float = 30.0  # the whole body must arrive within this (408 otherwise)
    max_header_bytes: int = 64 * 1024  # h11 bounds a head that arrives slowly; this bounds one that came at once


@dataclass(frozen=True)
class ScoringDefaults:
    """What a request gets for the settings it leaves out."""

    k: int = 4
    k_meta: int | None = None  # set (with a meta RM) to make MetaRM@k the default
    temperature: float = 0.5
    seed: int = 0
    max_new_tokens: int = 512


@dataclass
class AppConfig:
    """Everything ``create_app`` needs besides the sampler."""

    model_name: str = "grm"
    template: str = "deepseek-grm"
    api_key: str | None = None
    defaults: ScoringDefaults = field(default_factory=ScoringDefaults)
    limits: ServerLimits = field(default_factory=ServerLimits)
    engine: EngineSettings = field(default_factory=EngineSettings)


# ----- request models (validation + OpenAPI schema) -----


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: StrictStr


Query = StrictStr | list[Message]
Temperature = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]


class ScoreItem(BaseModel):
    """One query and the responses to judge together."""

    model_config = ConfigDict(extra="forbid")
    id: StrictStr | None = Field(None, description="echoed back")
    query: Query
    responses: list[StrictStr] = Field(min_length=1)


class ScoreRequest(BaseModel):
    """One item (``query`` + ``responses``), a batch (``items``) or one sample (``prompt`` + ``response``, slime
    style). Settings left out take the server's defaults."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    id: StrictStr | None = None
    query: Query | None = None
    responses: list[StrictStr] | None = None
    items: list[ScoreItem] | None = None
    prompt: Query | None = Field(None, description="per-sample form: the query (a string or chat messages)")
    response: StrictStr | None = Field(None, description="per-sample form: the one response")
    label: Any = Field(None, description="per-sample form: ignored (slime sends it)")
    group_id: StrictStr | None = Field(None, description="group mode: samples with this id are judged together")
    group_size: StrictInt | None = Field(None, ge=2, description="group mode: how many samples the group has")
    k: StrictInt | None = Field(None, ge=1, description="samples per item (Voting@k)")
    k_meta: StrictInt | None = Field(None, ge=1, description="MetaRM@k: samples the meta RM keeps")
    temperature: Temperature | None = None
    seed: StrictInt | None = Field(None, ge=0, le=MAX_SEED)
    max_new_tokens: StrictInt | None = Field(None, ge=1)
    return_samples: StrictBool = False


class GetRewardRequest(BaseModel):
    """OpenRLHF's remote reward request: ``query[i]`` = ``prompts[i]`` + the response."""

    model_config = ConfigDict(extra="allow")  # OpenRLHF may add fields (e.g. metas)
    query: list[StrictStr] = Field(min_length=1)
    prompts: list[StrictStr] | None = None
    labels: list[Any] | None = None


# ----- ASGI middleware -----


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: list | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": raw + (headers or [])})
    await send({"type": "http.response.body", "body": data})


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
                    raise StarletteHTTPException(413, f"The body is over {limit} bytes (--max-body-bytes).")
                complete[0] = not message.get("more_body", False)
            return message

        await self.app(scope, guarded_receive, send)


# ----- helpers -----


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _field(loc: tuple) -> str:
    # drop "body" and pydantic's union-branch tags ("str", "list[Message]", "function-after[...]")
    parts = [p for p in loc if isinstance(p, int) or (p != "body" and p.isidentifier() and p not in _TYPE_TAGS)]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": ("body",), "msg": "invalid body", "type": ""}
    if first.get("type") == "json_invalid":
        detail = (first.get("ctx") or {}).get("error", "")
        msg = f"Invalid JSON body: {detail} (at character {first['loc'][-1]})."
        return JSONResponse(error_body(msg, HTTPStatus.BAD_REQUEST, "body"), status_code=400)
    shown = "; ".join(f"{_field(tuple(e['loc']))}: {e['msg']}" for e in errors[:10])
    more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
    return JSONResponse(
        error_body(f"Invalid request: {shown}{more}.", HTTPStatus.BAD_REQUEST, _field(tuple(first["loc"]))),
        status_code=400,
    )


def _http_error(exc: StarletteHTTPException) -> JSONResponse:
    status = HTTPStatus(exc.status_code)
    message = str(exc.detail)
    param = None
    if status == HTTPStatus.BAD_REQUEST and message == "There was an error parsing the body":
        message = "The body is not valid JSON (it must be UTF-8 JSON, nested less than ~1000 levels deep)."
        param = "body"
    elif status in (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.REQUEST_TIMEOUT):
        param = "body"
    headers = {"connection": "close"} if status in (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, 408) else None
    return JSONResponse(error_body(message, status, param), status_code=int(status), headers=headers)


def _engine_error(exc: EngineError) -> JSONResponse:
    headers = {"retry-after": str(exc.retry_after)} if exc.retry_after is not None else None
    return JSONResponse(
        error_body(str(exc), HTTPStatus(exc.status), exc.param), status_code=exc.status, headers=headers
    )


def _check_text(text: str, where: str, limits: ServerLimits) -> None:
    if len(text) > limits.max_text_chars:
        raise RequestError(
            f"`{where}` has {len(text)} characters; at most {limits.max_text_chars} (--max-text-chars).", param=where
        )


def _check_query(query: Any, where: str, limits: ServerLimits) -> Any:
    if isinstance(query, str):
        _check_text(query, where, limits)
        return query
    if not query:
        raise RequestError(f"`{where}` is an empty conversation; send a string or a list of messages.", param=where)
    if query[-1].role != "user":
        raise RequestError(f"`{where}` must end with a user turn.", param=where)
    for i, m in enumerate(query):
        _check_text(m.content, f"{where}[{i}].content", limits)
    return [m.model_dump() for m in query]


def _check_responses(responses: list[str], where: str, limits: ServerLimits) -> list[str]:
    if len(responses) > limits.max_responses:
        raise RequestError(
            f"`{where}` has {len(responses)} responses; at most {limits.max_responses} (--max-responses).", param=where
        )
    for i, r in enumerate(responses):
        _check_text(r, f"{where}[{i}]", limits)
    return list(responses)


def resolve_settings(req: ScoreRequest, config: AppConfig, has_meta: bool) -> ScoreSettings:
    """The request's settings with the server's defaults filled in, checked against the limits."""
    d, lim = config.defaults, config.limits
    k = req.k if req.k is not None else d.k
    if k > lim.max_k:
        raise RequestError(f"`k` is {k}; this server allows at most {lim.max_k} (--max-k).", param="k")
    k_meta = req.k_meta if req.k_meta is not None else (d.k_meta if has_meta else None)
    if k_meta is not None:
        if not has_meta:
            raise RequestError(
                "`k_meta` needs a meta RM; this server has none (start it with --meta-rm DIR).", param="k_meta"
            )
        if k_meta > k:
            raise RequestError(f"`k_meta` ({k_meta}) must be <= k ({k}).", param="k_meta")
    temperature = req.temperature if req.temperature is not None else d.temperature
    if temperature > lim.max_temperature:
        raise RequestError(f"`temperature` must be <= {lim.max_temperature}, got {temperature}.", param="temperature")
    max_new = req.max_new_tokens if req.max_new_tokens is not None else d.max_new_tokens
    if max_new > lim.max_new_tokens:
        raise RequestError(
            f"`max_new_tokens` is {max_new}; at most {lim.max_new_tokens} (--max-new-tokens-limit).",
            param="max_new_tokens",
        )
    seed = req.seed if req.seed is not None else d.seed
    return ScoreSettings(k, k_meta, float(temperature), seed, max_new, req.return_samples)


def create_app(sampler: Sampler, config: AppConfig | None = None, meta: MetaScorer | None = None) -> Any:
    """Build the ASGI application (FastAPI inside the guard middleware).

    Args:
        sampler: the GRM's sampler (any ``grm.sampling`` backend).
        config: server settings (defaults, limits, engine knobs, API key).
        meta: a batch meta RM (``grm.meta_rm.load_meta_scorer``) for MetaRM@k; None = Voting@k only.

    Returns:
        The ASGI app (the guard middleware); ``app.api`` is the FastAPI app, ``app.api.state.engine`` the scoring
        engine (started and stopped by the lifespan).
    """
    from contextlib import asynccontextmanager

    config = config or AppConfig()
    metrics = Metrics()
    engine = Engine(sampler, template=config.template, meta=meta, settings=config.engine, metrics=metrics)
    completions = CompletionService(sampler, config.model_name)

    @asynccontextmanager
    async def lifespan(_: Any):
        await engine.start()
        try:
            yield
        finally:
            await engine.stop()

    api = FastAPI(
        title="grm serve",
        summary="A generative reward model (DeepSeek-GRM, SPCT) as a reward service: Voting@k and MetaRM@k.",
        version="1",
        lifespan=lifespan,
    )
    api.state.engine = engine
    api.state.metrics = metrics
    api.add_exception_handler(RequestValidationError, lambda r, e: _validation_response(e))
    api.add_exception_handler(StarletteHTTPException, lambda r, e: _http_error(e))
    api.add_exception_handler(EngineError, lambda r, e: _engine_error(e))
    api.add_exception_handler(
        RequestError, lambda r, e: JSONResponse(error_body(str(e), e.status, e.param), status_code=int(e.status))
    )

    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request failed", exc_info=exc)
        status = HTTPStatus.INTERNAL_SERVER_ERROR
        return JSONResponse(error_body(f"{type(exc).__name__}: {exc}", status), status_code=500)

    api.add_exception_handler(Exception, _internal)

    @api.get("/health", summary="Liveness and queue depth")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": config.model_name, "queue_samples": engine.pending_samples}

    @api.get("/v1/models", summary="The served model (OpenAI format)")
    async def models() -> dict[str, Any]:
        body = completions.models()
        body["data"][0]["meta_rm"] = meta is not None
        return body

    @api.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @api.post("/v1/completions", summary="OpenAI-compatible completions over the GRM's sampler")
    async def complete(body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        req = parse_completion_request(body, config.model_name)
        if len(req["prompts"]) * req["n"] > config.engine.max_pending_samples:
            raise RequestError("Too many prompts x n for one request.", param="n")
        try:
            return await engine.run_sync(completions.complete, body)
        except (RequestError, EngineError):
            raise
        except ValueError as exc:  # the sampler rejected the input (e.g. a prompt it cannot read): not retryable
            raise RequestError(f"{type(exc).__name__}: {exc}", param="prompt") from exc

    @api.post("/v1/score", summary="Score one item, a batch of items or one sample (slime)")
    async def score(req: ScoreRequest) -> dict[str, Any]:
        settings = resolve_settings(req, config, meta is not None)
        lim = config.limits
        forms = [req.items is not None, req.query is not None or req.responses is not None, req.prompt is not None]
        if sum(forms) != 1:
            raise RequestError(
                "Send exactly one of: `items` (a batch), `query` + `responses` (one item), "
                "or `prompt` + `response` (one sample).",
                param="items" if req.items is not None else ("query" if req.query is None else "prompt"),
            )
        if req.items is not None:
            if not req.items:
                raise RequestError("`items` is empty; send at least one item.", param="items")
            if len(req.items) > lim.max_items:
                raise RequestError(
                    f"`items` has {len(req.items)} items; at most {lim.max_items} per request (--max-items).",
                    param="items",
                )
            items = [
                (
                    _check_query(it.query, f"items[{i}].query", lim),
                    _check_responses(it.responses, f"items[{i}].responses", lim),
                )
                for i, it in enumerate(req.items)
            ]
            results = await engine.score(items, [it.id for it in req.items], settings)
            return {"model": config.model_name, "results": results}
        if req.prompt is not None:
            if req.response is None:
                raise RequestError("`prompt` needs `response` (one sample).", param="response")
            query, responses = (
                _check_query(req.prompt, "prompt", lim),
                _check_responses([req.response], "response", lim),
            )
        else:
            if req.query is None or req.responses is None:
                raise RequestError(
                    "`query` and `responses` go together.", param="responses" if req.query is not None else "query"
                )
            if not req.responses:
                raise RequestError("`responses` is empty; send at least one response.", param="responses")
            query, responses = _check_query(req.query, "query", lim), _check_responses(req.responses, "responses", lim)
        if req.group_size is not None and req.group_size > lim.max_responses:
            raise RequestError(f"`group_size` must be <= {lim.max_responses} (--max-responses).", param="group_size")
        if req.prompt is not None or (len(responses) == 1 and (req.group_id or req.group_size)):
            member = await engine.score_in_group(query, responses[0], req.id, settings, req.group_id, req.group_size)
            return {"model": config.model_name, **member}
        (result,) = await engine.score([(query, responses)], [req.id], settings)
        return {"model": config.model_name, **result}

    @api.post("/get_reward", summary="OpenRLHF remote reward (--reward.remote_url / --remote_rm_url)")
    async def get_reward(req: GetRewardRequest) -> dict[str, Any]:
        lim = config.limits
        if len(req.query) > lim.max_items:
            raise RequestError(
                f"`query` has {len(req.query)} samples; at most {lim.max_items} (--max-items).", param="query"
            )
        if req.prompts is None:
            raise RequestError("`prompts` is required: it splits each query (prompt + response).", param="prompts")
        if len(req.prompts) != len(req.query):
            raise RequestError(
                f"`prompts` has {len(req.prompts)} entries for {len(req.query)} queries; send one per query.",
                param="prompts",
            )
        pairs = []
        for i, (q, p) in enumerate(zip(req.query, req.prompts, strict=True)):
            if not q.startswith(p):
                raise RequestError(
                    f"`query[{i}]` does not start with `prompts[{i}]`; query = prompt + response.", param=f"query[{i}]"
                )
            prompt, response = p.strip(), q[len(p) :].strip()  # chat-template whitespace is not content
            pairs.append(
                (_check_query(prompt, f"prompts[{i}]", lim), _check_responses([response], f"query[{i}]", lim)[0])
            )
        settings = resolve_settings(ScoreRequest(), config, meta is not None)
        members = await _score_samples(engine, pairs, settings)
        return openrlhf_response(members)

    guard = GuardMiddleware(api, config, metrics, {r.path for r in api.routes})
    guard.api = api
    return guard


async def _score_samples(
    engine: Engine, pairs: list[tuple[Any, str]], settings: ScoreSettings
) -> list[dict[str, Any]]:
    """Per-sample results for ``(prompt, response)`` pairs: with group mode, the samples of one prompt in this
    request are one item (no waiting), lone ones join the cross-request window; otherwise one pointwise job."""
    if engine.settings.group_window_ms <= 0:
        results = await engine.score([(p, [r]) for p, r in pairs], [None] * len(pairs), settings)
        return [member_view(res, 0, None, "pointwise") for res in results]
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for i, (p, _) in enumerate(pairs):
        by_prompt[json.dumps(p)].append(i)
    out: list[dict[str, Any] | None] = [None] * len(pairs)

    async def run(idxs: list[int]) -> None:
        prompt = pairs[idxs[0]][0]
        if len(idxs) == 1:
            out[idxs[0]] = await engine.score_in_group(prompt, pairs[idxs[0]][1], None, settings)
            return
        (res,) = await engine.score([(prompt, [pairs[i][1] for i in idxs])], [None], settings)
        for pos, i in enumerate(idxs):
            out[i] = member_view(res, pos, None, "group")

    await asyncio.gather(*(run(idxs) for idxs in by_prompt.values()))
    return [o for o in out if o is not None]


FAILED_SCORE = 0.5  # /get_reward: a sample whose every judgement failed to parse gets the middle of the range


def openrlhf_response(members: list[dict[str, Any]]) -> dict[str, Any]:
    """OpenRLHF's response: ``scores`` in [0, 1] (the mean 1..10 score mapped linearly), ``rewards`` = 2 * score - 1
    in [-1, 1]; a sample with no parsed judgement gets score 0.5 / reward 0 and ``grm_parse_failed`` = 1."""
    scores = [FAILED_SCORE if m["reward"] is None else float(m["reward"]) for m in members]
    return {
        "rewards": [2 * s - 1 for s in scores],
        "scores": scores,
        "extra_logs": {
            "grm_parse_failed": [float(m["reward"] is None) for m in members],
            "grm_parse_failure_rate": [m["parse_failures"]["count"] / m["k"] for m in members],
            "grm_n_voted": [float(m["n_voted"]) for m in members],
            "grm_grouped": [float(m["group"]["mode"] == "group") for m in members],
            "grm_raw_score": [0.0 if m["score"] is None else float(m["score"]) for m in members],
        },
    }
