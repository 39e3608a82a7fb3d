"""``/health`` (liveness, queue depth), ``/v1/models`` (OpenAI format) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from grm.serving.routes.state import State

router = APIRouter()


@router.get("/health", summary="Liveness and queue depth")
async def health(state: State) -> dict[str, Any]:
    return {"status": "ok", "model": state.config.model_name, "queue_samples": state.engine.pending_samples}


@router.get("/v1/models", summary="The served model (OpenAI format)")
async def models(state: State) -> dict[str, Any]:
    body = state.completions.models()
    body["data"][0]["meta_rm"] = state.meta is not None
    return body


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def prometheus(state: State) -> PlainTextResponse:
    return PlainTextResponse(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
