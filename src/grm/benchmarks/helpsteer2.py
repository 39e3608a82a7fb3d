"""HelpSteer2-Preference (training set): ``nvidia/HelpSteer2`` with ``data_dir="preference"``, split ``train``.

Row: ``{"split": "train"|"val", "prompt": str, "response_1": str, "response_2": str, "preference_strength": int in
-3..3 (negative: response_1 is better, 0: tie), "preference_statement", "preference_elaboration", ...}``.
Multi-turn prompts join turns with ``<extra_id_1>User\\n`` / ``<extra_id_1>Assistant\\n`` markers; they are split back
into a chat transcript. Converted: ``responses = [response_1, response_2]``, ``best`` from the sign of the strength,
``id = helpsteer2-preference/{split}/{row index}``, ``meta.preference_strength``; ties give no item.
"""

from __future__ import annotations

from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, build_item, make_id, need, simplify_query
from grm.schemas import Item

NAME = "helpsteer2-preference"
TURN_MARK = "<extra_id_1>"


def split_turns(prompt: str) -> tuple[dict[str, str], ...]:
    """Split a HelpSteer2 prompt into chat messages.

    Example:
        >>> split_turns("Hi<extra_id_1>Assistant\\nHello!<extra_id_1>User\\nBye")[-1]
        {'role': 'user', 'content': 'Bye'}
    """
    parts = prompt.split(TURN_MARK)
    messages = [{"role": "user", "content": parts[0].strip()}]
    for part in parts[1:]:
        head, _, body = part.partition("\n")
        role = head.strip().lower()
        if role not in ("user", "assistant"):
            raise RowError("prompt", f"turn marker followed by {head.strip()!r}, expected User or Assistant")
        messages.append({"role": role, "content": body.strip()})
    return tuple(messages)


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One preference row -> one pairwise item; a 0 strength (tie) -> no item.

    Args:
        row: a HelpSteer2-Preference row.
        index: row position (the source has no id).

    Returns:
        ``[item]`` or ``[]``.
    """
    strength = need(row, "preference_strength", int)
    if strength == 0:
        return []
    split = row.get("split") if isinstance(row.get("split"), str) else "train"
    item = build_item(
        id=make_id(NAME, split, index),
        query=simplify_query(split_turns(need(row, "prompt"))),
        responses=[need(row, "response_1"), need(row, "response_2")],
        best=0 if strength < 0 else 1,
        source=NAME,
        subset=split,
        meta={"preference_strength": strength},
    )
    return [item]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="HelpSteer2-Preference pairs (training)",
        convert=convert_row,
        kind="training",
        hub=(HubSource("nvidia/HelpSteer2", "train", data_dir="preference"),),
    )
)
