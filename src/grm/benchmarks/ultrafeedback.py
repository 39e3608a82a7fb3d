"""UltraFeedback binarized (training set): ``HuggingFaceH4/ultrafeedback_binarized``, split ``train_prefs``.

Row: ``{"prompt": str, "prompt_id": str, "chosen": [{"role", "content"}, ...], "rejected": [...], "messages": [...],
"score_chosen": float, "score_rejected": float}``. Converted: ``query`` = the shared context, ``responses =
[chosen answer, rejected answer]``, ``best = 0``, ``ratings = [score_chosen, score_rejected]``,
``id = ultrafeedback-binarized/train_prefs/{prompt_id}``; equal scores (no preference) give no item.
"""

from __future__ import annotations

from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, build_item, make_id, need, split_conversation
from grm.schemas import Item

NAME = "ultrafeedback-binarized"
SPLIT = "train_prefs"


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One binarized row -> one pairwise item with ratings; a score tie -> no item.

    Args:
        row: an ultrafeedback_binarized row.
        index: row position (used if ``prompt_id`` is missing).

    Returns:
        ``[item]`` or ``[]``.
    """
    query, chosen = split_conversation(row.get("chosen"), "chosen")
    other, rejected = split_conversation(row.get("rejected"), "rejected")
    if other != query:
        raise RowError("rejected", "its context differs from the chosen conversation's; the pair must share a query")
    high, low = need(row, "score_chosen", (int, float)), need(row, "score_rejected", (int, float))
    if high == low:
        return []
    if high < low:
        raise RowError("score_chosen", f"{high} is below score_rejected {low}; the chosen answer must score higher")
    item = build_item(
        id=make_id(NAME, SPLIT, row.get("prompt_id") or index),
        query=query,
        responses=[chosen, rejected],
        best=0,
        ratings=[float(high), float(low)],
        source=NAME,
        subset=SPLIT,
    )
    return [item]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="UltraFeedback binarized preference pairs (training)",
        convert=convert_row,
        kind="training",
        hub=(HubSource("HuggingFaceH4/ultrafeedback_binarized", SPLIT),),
    )
)
