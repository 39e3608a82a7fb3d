"""JudgeBench (Tan et al., 2024; ScalerLab/JudgeBench @ e2c52c2): objective-correctness pairs in four categories.

Local copy: ``judgebench/data/dataset=judgebench,response_model={gpt-4o-2024-05-13,claude-3-5-sonnet-20240620}.jsonl``
(the hub dataset ``ScalerLab/JudgeBench`` has the same rows as splits ``gpt`` and ``claude``). Row:
``{"pair_id": str, "original_id": str|int, "source": "mmlu-pro-law", "question": str, "response_model": str,
"response_A": str, "response_B": str, "label": "A>B"|"B>A"}``.

Converted item: ``id = judgebench/{split}/{pair_id}``, ``responses = [response_A, response_B]`` (the source order,
which the two-game protocol needs), ``best = 0`` for ``A>B`` else 1, ``subset`` = the category (``CATEGORIES``, by
source prefix as the official ``run_judge.py``), ``meta = {source, split, original_id, response_model}``.

Registered names: ``judgebench`` (the GPT-4o split, 350 pairs: the leaderboard's) and ``judgebench-claude`` (270).
Protocol ``two_game`` (``grm.eval.protocols.two_game``): each pair judged as (A, B) and (B, A); a pair counts iff ``counter > 0``.
Scoring: ``grm.benchmarks.scoring.judgebench_scores``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, Shard, build_item, iter_jsonl, make_id, need
from grm.schemas import Item

NAME = "judgebench"
SPLITS = {  # split -> local file (response model)
    "gpt": "dataset=judgebench,response_model=gpt-4o-2024-05-13.jsonl",
    "claude": "dataset=judgebench,response_model=claude-3-5-sonnet-20240620.jsonl",
}
LOCAL_DIR = Path("judgebench") / "data"
HUB_PATH = "ScalerLab/JudgeBench"
# source prefix -> category, in the official reporting order (run_judge.py: mmlu-pro, livebench-reasoning, ...)
CATEGORIES = {
    "mmlu-pro": "knowledge",
    "livebench-reasoning": "reasoning",
    "livebench-math": "math",
    "livecodebench": "coding",
}
LABELS = {"A>B": 0, "B>A": 1}


def category_of(source: str) -> str:
    """``mmlu-pro-law`` -> ``knowledge``; an unknown source raises ``RowError``.

    Example:
        >>> category_of("livebench-math"), category_of("mmlu-pro-computer science")
        ('math', 'knowledge')
    """
    for prefix, category in CATEGORIES.items():
        if source.startswith(prefix):
            return category
    raise RowError("source", f"{source!r} does not start with one of {list(CATEGORIES)}")


def convert_row(row: dict[str, Any], index: int, *, split: str) -> list[Item]:
    """One JudgeBench row -> one pairwise item in the source order (A first).

    Args:
        row: a source row (see the module docstring).
        index: row position (unused: rows carry their ``pair_id``).
        split: ``gpt`` or ``claude`` (part of the id).

    Returns:
        ``[item]``.
    """
    pair_id = need(row, "pair_id", (str, int))
    source = need(row, "source")
    category = category_of(source)
    label = need(row, "label")
    if label not in LABELS:
        raise RowError("label", f"{label!r} is not one of {list(LABELS)} (JudgeBench pairs have no ties)")
    meta: dict[str, Any] = {"source": source, "split": split}
    for key in ("original_id", "response_model"):
        if isinstance(row.get(key), str | int) and not isinstance(row.get(key), bool):
            meta[key] = row[key]
    item = build_item(
        id=make_id(NAME, split, pair_id),
        query=need(row, "question"),
        responses=[need(row, "response_A"), need(row, "response_B")],
        best=LABELS[label],
        source=NAME,
        subset=category,
        meta=meta,
    )
    return [item]


def local_shards(root: Path, split: str) -> list[Shard]:
    """One shard per category (file order inside), so ``--limit`` covers all four."""
    path = root / LOCAL_DIR / SPLITS[split]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {root} the benchdata folder (see its README)?")
    groups: dict[str, list[Any]] = {}
    for row in iter_jsonl(path):
        source = row.data.get("source") if isinstance(row.data, dict) else None
        key = next((c for p, c in CATEGORIES.items() if isinstance(source, str) and source.startswith(p)), "<other>")
        groups.setdefault(key, []).append(row)
    return [(lambda rows=rows: iter(rows)) for rows in groups.values()]


for _split, _name in (("gpt", NAME), ("claude", f"{NAME}-claude")):
    register(
        BenchmarkSpec(
            name=_name,
            description=f"JudgeBench {_split} split ({'350' if _split == 'gpt' else '270'} pairs; knowledge, reasoning, "
            "math, coding; both orders, counter > 0)",
            convert=functools.partial(convert_row, split=_split),
            scorer="judgebench",
            official_tie_policy="strict",  # a tied or unparsable game adds 0 to the counter; a pair needs > 0
            protocol="two_game",
            local_shards=functools.partial(local_shards, split=_split),
            hub=(HubSource(HUB_PATH, _split),),
            notes="the leaderboard uses the gpt split" if _split == "gpt" else "the paper's Claude-response split",
        )
    )
