"""The FastAPI application: the routers of ``grm.serving.routes`` (``/v1/score``, ``/get_reward`` (OpenRLHF),
``/v1/completions`` (OpenAI), ``/invocations`` (MLflow), ``/health``, ``/v1/models``, ``/metrics`` (Prometheus)) and
the OpenAPI docs at ``/docs``, with one error shape for all of them.

FastAPI (over Starlette) rather than Starlette alone: the pydantic request models (``grm.serving.requests``) are the
validation *and* the OpenAPI schema at ``/docs``, and its validation hook gives every error's location, which names
the failing field; everything transport-related (head and body size, body deadline, auth, metrics) is plain ASGI
middleware (``grm.serving.guard``), independent of FastAPI. Import this module only to serve (``import grm`` and
``import grm.serving`` stay light).

Every error body is OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``, where ``param`` names the
field (``items[0].responses``, ``k``, ``temperature``, ``body``, ...).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from grm.sampling.base import Sampler
from grm.serving.assemble import as_app_config
from grm.serving.completions import CompletionService, RequestError, error_body
from grm.serving.engine import Engine
from grm.serving.errors import EngineError
from grm.serving.guard import GuardMiddleware
from grm.serving.metrics import Metrics
from grm.serving.requests import AppConfig, ScoringDefaults, ServerLimits
from grm.serving.routes import ROUTERS
from grm.serving.routes.state import ClientGone, ServerState
from grm.serving.scoring import MetaScorer
from grm.serving.serve_config import ServeConfig

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


def create_app(sampler: Sampler, config: AppConfig | ServeConfig | None = None, meta: MetaScorer | None = None) -> Any:
    """Build the ASGI application (FastAPI inside the guard middleware) with every router of ``grm.serving.routes``.

    Args:
        sampler: the GRM's sampler (any ``grm.sampling`` backend).
        config: server settings: an ``AppConfig``, or a ``ServeConfig`` (its key as given, the model's stop tokens
            added); None = the defaults.
        meta: a batch meta RM (``grm.meta_rm.load_meta_scorer``) for MetaRM@k; None = Voting@k only.

    Returns:
        The ASGI app (the guard middleware); ``app.api`` is the FastAPI app, ``app.api.state.engine`` the scoring
        engine (started and stopped by the lifespan), ``app.api.state.server`` the routes' ``ServerState``.
    """
    config = as_app_config(config, sampler)
    metrics = Metrics()
    engine = Engine(sampler, template=config.template, meta=meta, settings=config.engine, metrics=metrics)
    state = ServerState(config, engine, metrics, CompletionService(sampler, config.model_name), meta)

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
    api.state.server = state
    api.state.engine = engine
    api.state.metrics = metrics
    for exc_type, handler in ERROR_HANDLERS.items():
        api.add_exception_handler(exc_type, handler)
    for router in ROUTERS:
        api.include_router(router)
    paths = {r.path for r in api.routes if hasattr(r, "path")} | {r.path for router in ROUTERS for r in router.routes}
    guard = GuardMiddleware(api, config, metrics, paths)
    guard.api = api
    return guard


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request failed", exc_info=exc)
    status = HTTPStatus.INTERNAL_SERVER_ERROR
    return JSONResponse(error_body(f"{type(exc).__name__}: {exc}", status), status_code=500)


def _request_error(exc: RequestError) -> JSONResponse:
    return JSONResponse(error_body(str(exc), exc.status, exc.param), status_code=int(exc.status))


def _client_gone(exc: ClientGone) -> JSONResponse:
    return JSONResponse(error_body("The client left.", HTTPStatus.BAD_REQUEST), status_code=499)


ERROR_HANDLERS: dict[type, Any] = {
    RequestValidationError: lambda r, e: _validation_response(e),
    StarletteHTTPException: lambda r, e: _http_error(e),
    EngineError: lambda r, e: _engine_error(e),
    RequestError: lambda r, e: _request_error(e),
    Exception: _internal,
    ClientGone: lambda r, e: _client_gone(e),
}
