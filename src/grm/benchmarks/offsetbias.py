"""OffsetBias (training set): ``NCSOFT/offsetbias``, split ``train``.

Row: ``{"instruction": str, "output_1": str, "output_2": str, "label": 1|2}`` (``label`` = the better output).
Converted: ``responses = [output_1, output_2]``, ``best = label - 1``, ``id = offsetbias/train/{row index}``.
"""

from __future__ import annotations

from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, build_item, make_id, need
from grm.schemas import Item

NAME = "offsetbias"


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One OffsetBias row -> one pairwise item.

    Args:
        row: an OffsetBias row.
        index: row position (the source has no id).

    Returns:
        ``[item]``.
    """
    label = need(row, "label", int)
    if label not in (1, 2):
        raise RowError("label", f"{label!r} is not 1 or 2 (the better of output_1 / output_2)")
    item = build_item(
        id=make_id(NAME, "train", index),
        query=need(row, "instruction"),
        responses=[need(row, "output_1"), need(row, "output_2")],
        best=label - 1,
        source=NAME,
        subset="train",
    )
    return [item]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="OffsetBias bias-targeted preference pairs (training)",
        convert=convert_row,
        kind="training",
        hub=(HubSource("NCSOFT/offsetbias", "train"),),
    )
)
