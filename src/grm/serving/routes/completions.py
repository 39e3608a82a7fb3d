"""``/v1/completions``: OpenAI-compatible completions over the GRM's sampler, run in chunks between scoring cycles."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from grm.serving.completions import CompletionService, RequestError, parse_completion_request
from grm.serving.engine import Engine
from grm.serving.errors import EngineError
from grm.serving.routes.state import State, until_disconnect

router = APIRouter()


@router.post("/v1/completions", summary="OpenAI-compatible completions over the GRM's sampler")
async def complete(body: Annotated[dict[str, Any], Body()], request: Request, state: State) -> dict[str, Any]:
    req = parse_completion_request(body, state.config.model_name)
    if len(req["prompts"]) * req["n"] > state.config.engine.max_pending_samples:
        raise RequestError("Too many prompts x n for one request.", param="n")
    return await until_disconnect(request, complete_in_chunks(state.engine, state.completions, body, req))


async def complete_in_chunks(engine: Engine, completions: CompletionService, body: dict, req: dict) -> dict:
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
