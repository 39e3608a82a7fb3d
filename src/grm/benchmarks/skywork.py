"""Skywork-Reward-Preference-80K-v0.2 (training set): ``Skywork/Skywork-Reward-Preference-80K-v0.2``, split ``train``.

Row: ``{"chosen": [{"role", "content"}, ...], "rejected": [...], "source": str}``: two full conversations that share
every turn but the final assistant answer. Converted: ``query`` = the shared turns, ``responses = [chosen answer,
rejected answer]``, ``best = 0``, ``id = skywork-preference/{source}/{row index}``.
"""

from __future__ import annotations

from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, build_item, make_id, split_conversation
from grm.schemas import Item

NAME = "skywork-preference"


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One (chosen, rejected) conversation pair -> one pairwise item.

    Args:
        row: a Skywork preference row.
        index: row position (the source has no id).

    Returns:
        ``[item]``.
    """
    query, chosen = split_conversation(row.get("chosen"), "chosen")
    other, rejected = split_conversation(row.get("rejected"), "rejected")
    if other != query:
        raise RowError("rejected", "its context differs from the chosen conversation's; the pair must share a query")
    source = row.get("source") if isinstance(row.get("source"), str) and row["source"] else "default"
    item = build_item(
        id=make_id(NAME, source, index),
        query=query,
        responses=[chosen, rejected],
        best=0,
        source=NAME,
        subset=source,
    )
    return [item]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="Skywork-Reward-Preference-80K-v0.2 pairs (training)",
        convert=convert_row,
        kind="training",
        hub=(HubSource("Skywork/Skywork-Reward-Preference-80K-v0.2", "train"),),
    )
)
