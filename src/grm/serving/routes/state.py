"""What every route reads: the server's settings, engine, metrics, completion service and meta RM, held in one
``ServerState`` on the FastAPI app and handed to each route by ``Depends(server_state)`` (no closures)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from grm.serving.completions import CompletionService
from grm.serving.engine import Engine
from grm.serving.metrics import Metrics
from grm.serving.requests import AppConfig
from grm.serving.scoring import MetaScorer


@dataclass(frozen=True)
class ServerState:
    """The shared state of one app (built by ``grm.serving.app.create_app``)."""

    config: AppConfig
    engine: Engine
    metrics: Metrics
    completions: CompletionService
    meta: MetaScorer | None = None


def server_state(request: Request) -> ServerState:
    """The app's ``ServerState`` (a FastAPI dependency)."""
    return request.app.state.server


State = Annotated[ServerState, Depends(server_state)]


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


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
