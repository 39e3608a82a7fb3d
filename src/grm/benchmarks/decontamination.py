"""Decontamination: queries shared between training sets and benchmarks, exact and after normalisation.

The query text compared is ``Item.query_text()`` (the user's last turn). Normalisation: Unicode NFKC, lower case,
punctuation (Unicode category P*), symbols (S*), invisible and control characters (C*: a zero-width space inside
a leaked query must not hide it) and all whitespace removed, so "2+2" matches "2 + 2". Pure functions over items, so the
result can back a data-validation expectation ("no training query appears in an evaluation benchmark").
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from grm.schemas import Item

EXACT = "exact"
NORMALIZED = "normalized"
_SPACE_RE = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form of a query.

    Example:
        >>> normalize_query("  What's 2+2?\\n")
        'whats22'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    kept = "".join(ch for ch in text if not unicodedata.category(ch).startswith(("P", "S", "C")))
    return _SPACE_RE.sub("", kept)


@dataclass(frozen=True)
class Overlap:
    """One training item whose query also appears in a benchmark."""

    train_set: str
    train_id: str
    benchmark: str
    benchmark_id: str
    match: str  # "exact" (identical text) or "normalized" (identical after normalize_query only)
    query: str  # the training query, first 200 characters


def find_overlaps(
    training: Mapping[str, Iterable[Item]], benchmarks: Mapping[str, Iterable[Item]], *, min_chars: int = 1
) -> list[Overlap]:
    """Every (training item, benchmark item) pair with the same query, exact or after normalisation.

    Args:
        training: training-set name -> items.
        benchmarks: benchmark name -> items.
        min_chars: ignore normalised queries shorter than this (e.g. "hi" is shared by accident, not leakage).

    Returns:
        Overlaps sorted by (train_set, train_id, benchmark, benchmark_id); an exact match is not repeated as a
        normalised one.

    Example:
        >>> a = Item("t/0", "What is 2+2?", ("4", "5"), best=0)
        >>> b = Item("b/0", "what is 2 + 2", ("4", "3"), best=0)
        >>> [o.match for o in find_overlaps({"train": [a]}, {"bench": [b]})]
        ['normalized']
    """
    exact: dict[str, list[tuple[str, str]]] = defaultdict(list)
    normal: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for bench, items in benchmarks.items():
        for it in items:
            text = it.query_text()
            key = normalize_query(text)
            if len(key) < min_chars:
                continue
            exact[text].append((bench, it.id))
            normal[key].append((bench, it.id))
    found: list[Overlap] = []
    for train_set, items in training.items():
        for it in items:
            text = it.query_text()
            key = normalize_query(text)
            if len(key) < min_chars:
                continue
            exact_hits = set(exact.get(text, ()))
            for bench, bench_id in normal.get(key, ()):
                match = EXACT if (bench, bench_id) in exact_hits else NORMALIZED
                found.append(Overlap(train_set, it.id, bench, bench_id, match, text[:200]))
    return sorted(found, key=lambda o: (o.train_set, o.train_id, o.benchmark, o.benchmark_id))


def summarize_overlaps(overlaps: Iterable[Overlap]) -> dict[str, dict[str, int]]:
    """Counts per ``"{train_set} x {benchmark}"``: overlapping training items, benchmark items, exact pairs.

    Returns:
        ``{"ultrafeedback x rewardbench": {"train_items": 3, "benchmark_items": 2, "exact_pairs": 1, "pairs": 3}}``.
    """
    train: dict[str, set[str]] = defaultdict(set)
    bench: dict[str, set[str]] = defaultdict(set)
    pairs: dict[str, int] = defaultdict(int)
    exact_pairs: dict[str, int] = defaultdict(int)
    for o in overlaps:
        key = f"{o.train_set} x {o.benchmark}"
        train[key].add(o.train_id)
        bench[key].add(o.benchmark_id)
        pairs[key] += 1
        exact_pairs[key] += o.match == EXACT
    return {
        k: {
            "train_items": len(train[k]),
            "benchmark_items": len(bench[k]),
            "pairs": pairs[k],
            "exact_pairs": exact_pairs[k],
        }
        for k in sorted(pairs)
    }
