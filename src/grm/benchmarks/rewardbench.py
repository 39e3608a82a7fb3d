"""RewardBench v1 (allenai/reward-bench, ``filtered`` split, 2,985 pairs in 23 subsets).

Source schema (local ``rewardbench/rewardbench_filtered.jsonl`` and the HF dataset ``allenai/reward-bench`` split
``filtered`` share it): ``{"prompt": str, "chosen": str, "chosen_model": str, "rejected": str,
"rejected_model": str, "subset": str, "id": int}``. ``id`` is unique only within a subset.

Converted item: ``id = rewardbench/{subset}/{id}``, ``query = prompt``, ``responses = [chosen, rejected]``,
``best = 0``, ``subset = subset``, ``meta = {chosen_model, rejected_model}``. The stored order always puts the chosen
response first; the evaluation randomises the order it shows a judge (see ``grm.eval.protocols.standard``).
Scoring: ``grm.benchmarks.scoring.rewardbench_sections``.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import BadJson, Row, Shard, build_item, iter_jsonl, make_id, need
from grm.schemas import Item

NAME = "rewardbench"
LOCAL_FILE = Path("rewardbench") / "rewardbench_filtered.jsonl"
HUB_PATH = "allenai/reward-bench"
HUB_SPLIT = "filtered"


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One RewardBench row -> one pairwise item (chosen first, ``best = 0``).

    Args:
        row: a source row (see the module docstring).
        index: row position (unused: rows carry their own id).

    Returns:
        ``[item]``.
    """
    subset = need(row, "subset")
    original = need(row, "id", (int, str))
    prompt, chosen, rejected = need(row, "prompt"), need(row, "chosen"), need(row, "rejected")
    meta = {k: row[k] for k in ("chosen_model", "rejected_model") if isinstance(row.get(k), str)}
    item = build_item(
        id=make_id(NAME, subset, original),
        query=prompt,
        responses=[chosen, rejected],
        best=0,
        source=NAME,
        subset=subset,
        meta=meta or None,
    )
    return [item]


def local_shards(root: Path) -> list[Shard]:
    """One shard per subset (file order); the 5 MB file is read once to group it."""
    path = root / LOCAL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {root} the benchdata folder (see its README)?")
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in iter_jsonl(path):
        key = row.data.get("subset") if isinstance(row.data, dict) else None
        groups[key if isinstance(key, str) and not isinstance(row.data, BadJson) else "<bad>"].append(row)
    return [(lambda rows=rows: iter(rows)) for rows in groups.values()]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="RewardBench v1 filtered (2,985 pairs, 23 subsets; sections Chat/Chat Hard/Safety/Reasoning)",
        convert=convert_row,
        scorer="rewardbench",
        official_tie_policy="half",  # run_generative.py ratings mode: a tie scores 0.5 (SCORING.md §1)
        local_shards=local_shards,
        hub=(HubSource(HUB_PATH, HUB_SPLIT),),
    )
)
