"""verl custom reward function over a running ``grm serve`` (``custom_reward_function.path`` = this file).

verl calls ``compute_score(data_source, solution_str, ground_truth, extra_info)`` once per sample; the GRM needs
the query, so the dataset must carry it in ``extra_info`` (``prompt``, ``question`` or ``query``: a string or chat
messages). verl does not pass its group ``uid`` to the reward function, so groups are formed by the query itself:
set ``GRM_GROUP_SIZE`` to ``actor_rollout_ref.rollout.n`` (or put ``group_size`` in ``extra_info``) and start the
server with ``--group-window-ms`` to have the n responses of one prompt judged together (at most
``--max-responses`` per judgement; a larger group is judged in sub-groups). A ``group_id`` in ``extra_info``, if
your dataset has one, is used instead of the query.

Environment: ``GRM_URL`` (default ``http://127.0.0.1:8000``; a key-protected server also takes
``http://HOST:PORT/key/KEY``), ``GRM_API_KEY``, ``GRM_K`` (samples per judgement), ``GRM_GROUP_SIZE``.
``compute_score`` is synchronous; ``compute_score_async`` is for verl's async reward loop (set
``custom_reward_function.name=compute_score_async``).

The returned dict has ``score`` in [0, 1] (the mean voted score mapped from 1..10; 0.5 when no judgement parsed)
plus ``grm_score`` (1..10 or -1), ``grm_parse_failed`` and ``grm_grouped`` for logging.
"""

from __future__ import annotations

import os
from typing import Any

from grm.serving.client import ScoreClient

QUERY_KEYS = ("prompt", "question", "query")
_CLIENT: ScoreClient | None = None


def _client() -> ScoreClient:
    global _CLIENT
    if _CLIENT is None:
        _CLIENT = ScoreClient(os.environ.get("GRM_URL"), os.environ.get("GRM_API_KEY"))
    return _CLIENT


def _request(solution_str: str, extra_info: dict[str, Any] | None) -> dict[str, Any]:
    info = extra_info or {}
    query = next((info[k] for k in QUERY_KEYS if info.get(k)), None)
    if query is None:
        raise ValueError(
            "grm.integrations.verl needs the query: put it in the dataset's extra_info as 'prompt', 'question' or "
            f"'query' (got keys {sorted(info)})"
        )
    body: dict[str, Any] = {"prompt": query, "response": solution_str}
    if info.get("group_id") is not None:
        body["group_id"] = str(info["group_id"])
    size = info.get("group_size") or os.environ.get("GRM_GROUP_SIZE")
    if size:
        body["group_size"] = int(size)
    if os.environ.get("GRM_K"):
        body["k"] = int(os.environ["GRM_K"])
    return body


def _result(answer: dict[str, Any]) -> dict[str, Any]:
    reward = answer.get("reward")
    return {
        "score": 0.5 if reward is None else float(reward),  # the mask is grm_parse_failed
        "grm_score": -1.0 if answer.get("score") is None else float(answer["score"]),
        "grm_parse_failed": float(reward is None),
        "grm_grouped": float(answer.get("group", {}).get("mode") == "group"),
    }


def compute_score(
    data_source: Any, solution_str: str, ground_truth: Any = None, extra_info: dict[str, Any] | None = None, **_: Any
) -> dict[str, Any]:
    """Score one verl sample with the GRM server (blocking)."""
    return _result(_client().post("/v1/score", _request(solution_str, extra_info)))


async def compute_score_async(
    data_source: Any, solution_str: str, ground_truth: Any = None, extra_info: dict[str, Any] | None = None, **_: Any
) -> dict[str, Any]:
    """Score one verl sample with the GRM server (asyncio; concurrent samples are batched by the server)."""
    return _result(await _client().apost("/v1/score", _request(solution_str, extra_info)))
