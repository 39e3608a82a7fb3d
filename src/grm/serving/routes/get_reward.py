"""``/get_reward``: OpenRLHF's remote reward (``--reward.remote_url`` / ``--remote_rm_url``): ``query[i]`` =
``prompts[i]`` + the response, split tolerantly, control tokens stripped, the whole rollout split server-side."""

from __future__ import annotations

import asyncio
import json
import math
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request

from grm.serving.completions import RequestError
from grm.serving.engine import Engine
from grm.serving.groups import member_view
from grm.serving.requests import (
    AppConfig,
    GetRewardRequest,
    ScoreRequest,
    check_principle_mode,
    check_principles,
    check_query,
    check_responses,
    openrlhf_response,
    resolve_settings,
)
from grm.serving.routes.state import ServerState, State, until_disconnect
from grm.serving.scoring import ScoreSettings
from grm.serving.texts import SPLIT_CODES, split_query, strip_stop_tokens

router = APIRouter()


@router.post("/get_reward", summary="OpenRLHF remote reward (--reward.remote_url / --remote_rm_url)")
async def get_reward(req: GetRewardRequest, request: Request, state: State) -> dict[str, Any]:
    return await until_disconnect(request, reward_request(req, state))


async def reward_request(req: GetRewardRequest, state: ServerState) -> dict[str, Any]:
    """OpenRLHF's answer (``openrlhf_response``) to a checked request."""
    config = state.config
    lim = config.limits
    _check_lengths(req, config)
    given = [check_principles(p, f"principles[{i}]", lim) for i, p in enumerate(req.principles or [])]
    mode = check_principle_mode(req.principle_mode, any(p is not None for p in given))
    pairs = []
    notes: dict[str, list[float]] = {"grm_split": [], "grm_stop_stripped": [], "grm_truncated": []}
    for i, (q, p) in enumerate(zip(req.query, req.prompts or [], strict=True)):
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
        pairs.append((prompt, check_responses([response], f"query[{i}]", lim, cuts)[0], given[i] if given else None))
        notes["grm_split"].append(SPLIT_CODES[split.how])
        notes["grm_stop_stripped"].append(float(stripped))
        notes["grm_truncated"].append(float(bool(cuts)))
    settings = resolve_settings(ScoreRequest(principle_mode=mode), config, state.meta is not None)
    members = await score_samples(state.engine, pairs, settings, lim.max_items, lim.max_responses)
    if given or mode != "default":
        notes["grm_principles_given"] = [float(m.get("principles", {}).get("text") is not None) for m in members]
    notes["grm_group_size"] = [float(m["group"]["size"]) for m in members]
    return openrlhf_response(members, notes, config.failed_reward)


def _check_lengths(req: GetRewardRequest, config: AppConfig) -> None:
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


async def score_samples(
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
