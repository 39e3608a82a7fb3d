"""``/v1/score``: one item (``query`` + ``responses``), a batch (``items``) or one sample (``prompt`` + ``response``,
slime; joined to its group in group mode), judged by Voting@k or MetaRM@k."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from grm.serving.completions import RequestError
from grm.serving.requests import (
    AppConfig,
    ScoreRequest,
    ServerLimits,
    check_principle_mode,
    check_principles,
    check_query,
    check_responses,
    resolve_settings,
)
from grm.serving.routes.state import ServerState, State, until_disconnect

router = APIRouter()


@router.post("/v1/score", summary="Score one item, a batch of items or one sample (slime)")
async def score(req: ScoreRequest, request: Request, state: State) -> dict[str, Any]:
    return await until_disconnect(request, score_request(req, state))


async def score_request(req: ScoreRequest, state: ServerState) -> dict[str, Any]:
    """The answer to a checked ``ScoreRequest`` (every limit a 400 naming its field)."""
    config, engine = state.config, state.engine
    settings = resolve_settings(req, config, state.meta is not None)
    cuts: list[str] = []
    given, per_item = _principles(req, config.limits)
    _one_form(req)
    if req.items is not None:
        items = _batch(req, config, given, per_item, cuts)
        results = await engine.score(items, [it.id for it in req.items], settings)
        return {"model": config.model_name, "results": results, "truncated": cuts}
    query, responses = _single(req, config, cuts)
    if req.prompt is not None or (len(responses) == 1 and (req.group_id or req.group_size)):
        member = await engine.score_in_group(
            query, responses[0], req.id, settings, req.group_id, req.group_size, config.limits.max_responses, given
        )
        return {"model": config.model_name, **failed_policy(member, config.failed_reward), "truncated": cuts}
    (result,) = await engine.score([(query, responses, given)], [req.id], settings)
    return {"model": config.model_name, **result, "truncated": cuts}


def _principles(req: ScoreRequest, lim: ServerLimits) -> tuple[str | None, list[str | None]]:
    """The request's principles and each item's (checked), and the principle mode checked against them."""
    given = check_principles(req.principles, "principles", lim)
    per_item = [check_principles(it.principles, f"items[{i}].principles", lim) for i, it in enumerate(req.items or [])]
    check_principle_mode(req.principle_mode, given is not None or any(p is not None for p in per_item))
    return given, per_item


def _one_form(req: ScoreRequest) -> None:
    forms = [req.items is not None, req.query is not None or req.responses is not None, req.prompt is not None]
    if sum(forms) != 1:
        raise RequestError(
            "Send exactly one of: `items` (a batch), `query` + `responses` (one item), "
            "or `prompt` + `response` (one sample).",
            param="items" if req.items is not None else ("query" if req.query is None else "prompt"),
        )


def _batch(
    req: ScoreRequest, config: AppConfig, given: str | None, per_item: list[str | None], cuts: list[str]
) -> list[tuple[Any, list[str], str | None]]:
    lim = config.limits
    assert req.items is not None
    if not req.items:
        raise RequestError("`items` is empty; send at least one item.", param="items")
    if len(req.items) > lim.max_items:
        raise RequestError(
            f"`items` has {len(req.items)} items; at most {lim.max_items} per request (--max-items).", param="items"
        )
    return [
        (
            check_query(it.query, f"items[{i}].query", lim, cuts),
            check_responses(it.responses, f"items[{i}].responses", lim, cuts, config.stop_tokens),
            per_item[i] if per_item[i] is not None else given,
        )
        for i, it in enumerate(req.items)
    ]


def _single(req: ScoreRequest, config: AppConfig, cuts: list[str]) -> tuple[Any, list[str]]:
    """``prompt`` + ``response`` or ``query`` + ``responses``, checked."""
    lim, stops = config.limits, config.stop_tokens
    if req.prompt is not None:
        if req.response is None:
            raise RequestError("`prompt` needs `response` (one sample).", param="response")
        return check_query(req.prompt, "prompt", lim, cuts), check_responses(
            [req.response], "response", lim, cuts, stops
        )
    if req.query is None or req.responses is None:
        raise RequestError(
            "`query` and `responses` go together.", param="responses" if req.query is not None else "query"
        )
    if not req.responses:
        raise RequestError("`responses` is empty; send at least one response.", param="responses")
    return check_query(req.query, "query", lim, cuts), check_responses(req.responses, "responses", lim, cuts, stops)


def failed_policy(member: dict[str, Any], failed: str | float) -> dict[str, Any]:
    """A per-sample answer under ``--failed-reward``: ``reward`` stays null (``mid``/``null``) or gets the fixed
    value mapped to [0, 1]; ``reward_failed`` is the mask either way."""
    out = {**member, "reward_failed": member["reward"] is None}
    if member["reward"] is None and not isinstance(failed, str):
        out["reward"] = (float(failed) + 1) / 2
    return out
