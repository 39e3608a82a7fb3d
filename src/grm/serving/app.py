"""The FastAPI application: ``/v1/score``, ``/get_reward`` (OpenRLHF), ``/v1/completions`` (OpenAI), ``/health``,
``/v1/models``, ``/metrics`` (Prometheus) and the OpenAPI docs at ``/docs``.

FastAPI (over Starlette) rather than Starlette alone: the pydantic request models (``grm.serving.requests``) are the
validation *and* the OpenAPI schema at ``/docs``, and its validation hook gives every error's location, which names
the failing field; everything transport-related (head and body size, body deadline, auth, metrics) is plain ASGI
middleware (``grm.serving.guard``), independent of FastAPI. Import this module only to serve (``import grm`` and
``import grm.serving`` stay light).

Every error body is OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``, where ``param`` names the
field (``items[0].responses``, ``k``, ``temperature``, ``body``, ...).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from collections import defaultdict
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from grm.sampling.base import Sampler
from grm.serving.completions import CompletionService, RequestError, error_body, parse_completion_request
from grm.serving.engine import Engine, EngineError, member_view
from grm.serving.guard import GuardMiddleware
from grm.serving.metrics import Metrics
from grm.serving.requests import (
    AppConfig,
    GetRewardRequest,
    ScoreRequest,
    ScoringDefaults,
    ServerLimits,
    check_principle_mode,
    check_principles,
    check_query,
    check_responses,
    openrlhf_response,
    resolve_settings,
)
from grm.serving.scoring import MetaScorer, ScoreSettings
from grm.serving.texts import SPLIT_CODES, split_query, strip_stop_tokens

__all__ = ["AppConfig", "ScoringDefaults", "ServerLimits", "create_app"]

log = logging.getLogger(__name__)


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
    api.add_exception_handler(
        ClientGone, lambda r, e: JSONResponse(error_body("The client left.", HTTPStatus.BAD_REQUEST), status_code=499)
    )

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
    async def complete(body: Annotated[dict[str, Any], Body()], request: Request) -> dict[str, Any]:
        req = parse_completion_request(body, config.model_name)
        if len(req["prompts"]) * req["n"] > config.engine.max_pending_samples:
            raise RequestError("Too many prompts x n for one request.", param="n")
        return await until_disconnect(request, _complete_in_chunks(engine, completions, body, req))

    @api.post("/v1/score", summary="Score one item, a batch of items or one sample (slime)")
    async def score(req: ScoreRequest, request: Request) -> dict[str, Any]:
        return await until_disconnect(request, _score(req))

    async def _score(req: ScoreRequest) -> dict[str, Any]:
        settings = resolve_settings(req, config, meta is not None)
        lim = config.limits
        stops = config.stop_tokens
        cuts: list[str] = []
        given = check_principles(req.principles, "principles", lim)
        per_item = [
            check_principles(it.principles, f"items[{i}].principles", lim) for i, it in enumerate(req.items or [])
        ]
        check_principle_mode(req.principle_mode, given is not None or any(p is not None for p in per_item))
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
                    check_query(it.query, f"items[{i}].query", lim, cuts),
                    check_responses(it.responses, f"items[{i}].responses", lim, cuts, stops),
                    per_item[i] if per_item[i] is not None else given,
                )
                for i, it in enumerate(req.items)
            ]
            results = await engine.score(items, [it.id for it in req.items], settings)
            return {"model": config.model_name, "results": results, "truncated": cuts}
        if req.prompt is not None:
            if req.response is None:
                raise RequestError("`prompt` needs `response` (one sample).", param="response")
            query, responses = (
                check_query(req.prompt, "prompt", lim, cuts),
                check_responses([req.response], "response", lim, cuts, stops),
            )
        else:
            if req.query is None or req.responses is None:
                raise RequestError(
                    "`query` and `responses` go together.", param="responses" if req.query is not None else "query"
                )
            if not req.responses:
                raise RequestError("`responses` is empty; send at least one response.", param="responses")
            query = check_query(req.query, "query", lim, cuts)
            responses = check_responses(req.responses, "responses", lim, cuts, stops)
        if req.prompt is not None or (len(responses) == 1 and (req.group_id or req.group_size)):
            member = await engine.score_in_group(
                query, responses[0], req.id, settings, req.group_id, req.group_size, lim.max_responses, given
            )
            return {"model": config.model_name, **failed_policy(member, config.failed_reward), "truncated": cuts}
        (result,) = await engine.score([(query, responses, given)], [req.id], settings)
        return {"model": config.model_name, **result, "truncated": cuts}

    @api.post("/get_reward", summary="OpenRLHF remote reward (--reward.remote_url / --remote_rm_url)")
    async def get_reward(req: GetRewardRequest, request: Request) -> dict[str, Any]:
        return await until_disconnect(request, _get_reward(req))

    async def _get_reward(req: GetRewardRequest) -> dict[str, Any]:
        lim = config.limits
        if len(req.query) > lim.max_reward_batch:
            raise RequestError(
                f"`query` has {len(req.query)} samples; at most {lim.max_reward_batch} (--max-reward-batch).",
                param="query",
            )
        if req.prompts is None:
            raise RequestError("`prompts` is required: it splits each query (prompt + response).", param="prompts")
        if len(req.prompts) != len(req.query):
            raise RequestError(
                f"`prompts` has {len(req.prompts)} entries for {len(req.query)} queries; send one per query.",
                param="prompts",
            )
        if req.principles is not None and len(req.principles) != len(req.query):
            raise RequestError(
                f"`principles` has {len(req.principles)} entries for {len(req.query)} queries; send one per query "
                "(null where the GRM writes its own).",
                param="principles",
            )
        given = [check_principles(p, f"principles[{i}]", lim) for i, p in enumerate(req.principles or [])]
        mode = check_principle_mode(req.principle_mode, any(p is not None for p in given))
        pairs = []
        notes: dict[str, list[float]] = {"grm_split": [], "grm_stop_stripped": [], "grm_truncated": []}
        for i, (q, p) in enumerate(zip(req.query, req.prompts, strict=True)):
            split = split_query(q, p)
            if split is None:
                raise RequestError(
                    f"`query[{i}]` does not contain `prompts[{i}]` (not even with whitespace ignored or the prompt "
                    "cut short); query = prompt + response.",
                    param=f"query[{i}]",
                )
            response, stripped = strip_stop_tokens(split.response, config.stop_tokens)
            cuts: list[str] = []
            prompt = check_query(strip_stop_tokens(split.prompt, config.stop_tokens)[0], f"prompts[{i}]", lim, cuts)
            pairs.append(
                (prompt, check_responses([response], f"query[{i}]", lim, cuts)[0], given[i] if given else None)
            )
            notes["grm_split"].append(SPLIT_CODES[split.how])
            notes["grm_stop_stripped"].append(float(stripped))
            notes["grm_truncated"].append(float(bool(cuts)))
        settings = resolve_settings(ScoreRequest(principle_mode=mode), config, meta is not None)
        members = await _score_samples(engine, pairs, settings, lim.max_items, lim.max_responses)
        if given or mode != "default":
            notes["grm_principles_given"] = [float(m.get("principles", {}).get("text") is not None) for m in members]
        notes["grm_group_size"] = [float(m["group"]["size"]) for m in members]
        return openrlhf_response(members, notes, config.failed_reward)

    guard = GuardMiddleware(api, config, metrics, {r.path for r in api.routes})
    guard.api = api
    return guard


async def until_disconnect(request: Request, work: Any) -> Any:
    """Await ``work`` unless the client leaves first: then it is cancelled (the engine drops the request's queued
    units, a completion stops between chunks) and nothing is answered (status 499 in the metrics)."""
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        watcher.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    raise ClientGone()


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def _complete_in_chunks(engine: Engine, completions: CompletionService, body: dict, req: dict) -> dict:
    """A completion request in chunks of at most ``max_batch_size`` samples (at least one prompt each) on the sampler
    thread: scoring cycles queued meanwhile run between the chunks (a 32-prompt x n = 256 request does not hold the
    sampler for its whole length), and a cancelled request stops at the next chunk. The answer is the same as one
    call on backends whose samples depend only on (seed, prompt, index)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + engine.settings.request_timeout_s
    step = max(1, engine.settings.max_batch_size // req["n"])
    parts = []
    for at in range(0, len(req["prompts"]), step):
        prompt = req["prompts"][at : at + step]
        if loop.time() > deadline:
            engine.metrics.count("rejected", "504")
            raise EngineError(
                f"The completion took longer than the request timeout ({engine.settings.request_timeout_s:g} s).", 504
            )
        try:
            parts.append(await engine.run_sync(completions.complete, {**body, "prompt": prompt}))
        except (RequestError, EngineError):
            raise
        except ValueError as exc:  # the sampler rejected the input (e.g. a prompt it cannot read): not retryable
            raise RequestError(f"{type(exc).__name__}: {exc}", param="prompt") from exc
    out = parts[0]
    if len(parts) > 1:
        n = req["n"]
        out["choices"] = [{**c, "index": i * n + c["index"]} for i, part in enumerate(parts) for c in part["choices"]]
        if "usage" in out:
            out["usage"] = {k: sum(part["usage"][k] for part in parts) for k in out["usage"]}
    return out


def failed_policy(member: dict[str, Any], failed: str | float) -> dict[str, Any]:
    """A per-sample answer under ``--failed-reward``: ``reward`` stays null (``mid``/``null``) or gets the fixed
    value mapped to [0, 1]; ``reward_failed`` is the mask either way."""
    out = {**member, "reward_failed": member["reward"] is None}
    if member["reward"] is None and not isinstance(failed, str):
        out["reward"] = (float(failed) + 1) / 2
    return out


async def _score_samples(
    engine: Engine,
    pairs: list[tuple[Any, str, str | None]],
    settings: ScoreSettings,
    max_items: int,
    max_responses: int,
) -> list[dict[str, Any]]:
    """Per-sample results for ``(prompt, response)`` pairs, split server-side into jobs the engine schedules fairly:
    pointwise, jobs of ``max_items`` samples; with group mode, the samples of one prompt in this request are judged
    together in items of at most ``max_responses`` (no waiting), lone ones join the cross-request window. A pair's
    third element: its caller-given principles (samples are grouped only with the same principles)."""
    if engine.settings.group_window_ms <= 0:
        chunks = [pairs[i : i + max_items] for i in range(0, len(pairs), max_items)]
        done = await asyncio.gather(
            *(engine.score([(p, [r], g) for p, r, g in chunk], [None] * len(chunk), settings) for chunk in chunks)
        )
        return [member_view(res, 0, None, "pointwise") for results in done for res in results]
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for i, (p, _, g) in enumerate(pairs):
        by_prompt[json.dumps([p, g])].append(i)
    out: list[dict[str, Any] | None] = [None] * len(pairs)

    async def run(idxs: list[int]) -> None:
        prompt, _, given = pairs[idxs[0]]
        if len(idxs) == 1:
            out[idxs[0]] = await engine.score_in_group(prompt, pairs[idxs[0]][1], None, settings, principles=given)
            return
        (res,) = await engine.score([(prompt, [pairs[i][1] for i in idxs], given)], [None], settings)
        for pos, i in enumerate(idxs):
            out[i] = member_view(res, pos, None, "group")

    groups = []
    for idxs in by_prompt.values():
        size = math.ceil(len(idxs) / math.ceil(len(idxs) / max_responses))  # even chunks: 20 -> 10 + 10, not 16 + 4
        groups += [idxs[j : j + size] for j in range(0, len(idxs), size)]
    await asyncio.gather(*(run(idxs) for idxs in groups))
    return [o for o in out if o is not None]
