"""MATH preference pairs (training set): Step-DPO's ``xinlai/Math-Step-DPO-10K``, split ``train``.

Row: ``{"dataset": str, "prompt": str, "initial_reason_steps": str, "chosen": str, "rejected": str,
"full_chosen": str, "full_rejected": str, "answer": str}``: ``full_*`` are complete solutions that share the
initial steps and diverge at the first wrong step. Converted: ``query = prompt``, ``responses = [full_chosen,
full_rejected]``, ``best = 0``, ``id = math-pairs/{dataset}/{row index}``, ``meta.answer``.
"""

from __future__ import annotations

from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import build_item, make_id, need
from grm.schemas import Item

NAME = "math-pairs"


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One Step-DPO row -> one (correct, incorrect) solution pair.

    Args:
        row: a Math-Step-DPO-10K row.
        index: row position (the source has no id).

    Returns:
        ``[item]``.
    """
    dataset = row.get("dataset") if isinstance(row.get("dataset"), str) and row["dataset"] else "default"
    answer = row.get("answer")
    item = build_item(
        id=make_id(NAME, dataset, index),
        query=need(row, "prompt"),
        responses=[need(row, "full_chosen"), need(row, "full_rejected")],
        best=0,
        source=NAME,
        subset=dataset,
        meta={"answer": answer} if isinstance(answer, str) else None,
    )
    return [item]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="MATH step-level preference pairs from Step-DPO (training)",
        convert=convert_row,
        kind="training",
        hub=(HubSource("xinlai/Math-Step-DPO-10K", "train"),),
    )
)
