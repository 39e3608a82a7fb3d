"""Benchmark and training-set registry: name -> how to read it (local benchdata and/or the HF hub) and score it.

Registering a name twice raises; a lookup miss raises ``Unknown benchmark 'x'. Available: ...``. Converter modules
register themselves on import (``grm.benchmarks`` imports them all).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm.benchmarks import bundled, scoring
from grm.benchmarks.rows import Row, RowConverter, Shard, collect_items, round_robin
from grm.schemas import Item

KINDS = ("benchmark", "training")
SCORERS = tuple(scoring.SCORERS)  # the registered official aggregations (grm.benchmarks.scoring)
# how a GRM is run on the items: "standard" (greedy + Voting@k over shuffled orders), "two_game" (each pair judged
# in both orders, JudgeBench's counter rule) or "style_matrix" (RM-Bench: the nine chosen_i-vs-rejected_j pairs of
# a prompt, the 3x3 matrix); the names of the registry grm.eval.protocols.PROTOCOLS (a test keeps them equal)
PROTOCOLS = ("standard", "two_game", "style_matrix")
BENCHDATA_ENV = "GRM_BENCHDATA"


@dataclass(frozen=True)
class HubSource:
    """One HF dataset to read through ``datasets.load_dataset`` (streamed)."""

    path: str  # e.g. "allenai/reward-bench"
    split: str
    config: str | None = None
    data_dir: str | None = None
    convert: RowConverter | None = None  # overrides the spec's converter (e.g. to bind a PPE subset)


@dataclass(frozen=True)
class BenchmarkSpec:
    """How to read and score one benchmark or training set."""

    name: str
    description: str
    convert: RowConverter  # row-level converter shared by the local and hub paths
    kind: str = "benchmark"  # "benchmark" (evaluated) or "training" (decontamination / training data)
    scorer: str = "accuracy"  # which official aggregation applies: a name in grm.benchmarks.scoring.SCORERS
    official_tie_policy: str = "strict"  # the tie rule of the benchmark's own code (SCORING.md)
    protocol: str = "standard"  # see PROTOCOLS
    local_shards: Callable[[Path], list[Shard]] | None = None  # benchdata root -> lazily opened shards
    hub: tuple[HubSource, ...] = field(default_factory=tuple)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.scorer not in SCORERS:
            raise ValueError(f"{self.name}: scorer {self.scorer!r} is not one of {SCORERS}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"{self.name}: protocol {self.protocol!r} is not one of {PROTOCOLS}")


_REGISTRY: dict[str, BenchmarkSpec] = {}


def register(spec: BenchmarkSpec) -> BenchmarkSpec:
    """Add ``spec`` to the registry. Raises ``ValueError`` if the name is taken."""
    if spec.name in _REGISTRY:
        raise ValueError(f"Benchmark {spec.name!r} is already registered; pick another name")
    _REGISTRY[spec.name] = spec
    return spec


def get_benchmark(name: str) -> BenchmarkSpec:
    """Look a spec up by name.

    Raises:
        KeyError: ``Unknown benchmark 'x'. Available: ...``.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"Unknown benchmark {name!r}. Available: {', '.join(sorted(_REGISTRY))}") from None


def available(kind: str | None = None, *, local: bool | None = None) -> list[str]:
    """Registered names, optionally only one ``kind`` and only those with (``local=True``) a local reader."""
    return sorted(
        n
        for n, s in _REGISTRY.items()
        if (kind is None or s.kind == kind) and (local is None or (s.local_shards is not None) == local)
    )


def resolve_benchdata(path: str | Path | None = None) -> Path:
    """The benchdata root: ``path``, else ``$GRM_BENCHDATA``, else the copy shipped in the repository
    (``grm.benchmarks.bundled``: ``benchdata/*.tar.gz``, unpacked once into the user cache)."""
    chosen = path if path is not None else os.environ.get(BENCHDATA_ENV) or None
    if chosen is None:
        return bundled.bundled_root()
    if not Path(chosen).is_dir():
        raise FileNotFoundError(
            f"benchdata folder {chosen} not found; pass --benchdata DIR or set {BENCHDATA_ENV}=DIR "
            "(the folder holding rewardbench/, rmb/, gsm8k/, realmistake/, judgebench/, rm-bench/), or leave both "
            "unset for the copy shipped in the repository (docs/benchdata.md)"
        )
    return Path(chosen)


def load_benchmark(
    name: str,
    benchdata: str | Path | None = None,
    *,
    limit: int | None = None,
    progress: bool = True,
    skipped: list[str] | None = None,
) -> list[Item]:
    """Read a benchmark from the local benchdata copy and convert it to canonical items.

    With ``limit`` the shards (subsets / files / zip members) are read round-robin, so a small run still covers
    every subset; without it they are read in order.

    Args:
        name: registered name with a local reader.
        benchdata: benchdata root (see ``resolve_benchdata``).
        limit: keep at most this many items.
        progress: show a progress bar.
        skipped: if given, bad source rows are skipped and listed here instead of raising ``DataError`` (the local
            RMB copy has 7 rows with an empty answer or turn).

    Returns:
        The items.
    """
    spec = get_benchmark(name)
    if spec.local_shards is None:
        raise ValueError(
            f"{name} has no local copy (hub only: {', '.join(h.path for h in spec.hub) or 'none'}); "
            f"use load_hub({name!r}) on a machine with hub access. Local ones: {', '.join(available(local=True))}"
        )
    root = resolve_benchdata(benchdata)
    shards = local_shards(spec, root)
    rows: Iterator[Row] = round_robin(shards) if limit is not None else (r for s in shards for r in s())
    return collect_items(
        rows, spec.convert, source=f"{root}/{name}", limit=limit, progress=progress, desc=name, skipped=skipped
    )


def local_shards(spec: BenchmarkSpec, root: Path) -> list[Shard]:
    """``spec``'s shards under ``root``; a benchmark the shipped copy lacks (RMB) fails naming why and the fix.

    Raises:
        FileNotFoundError: its files are not under ``root``.
    """
    assert spec.local_shards is not None
    try:
        return spec.local_shards(root)
    except FileNotFoundError as exc:
        hint = bundled.missing_hint(spec.name, root)
        if hint:
            raise FileNotFoundError(hint) from exc
        raise


def convert_rows(
    name: str, rows: Any, *, source: str | None = None, limit: int | None = None, convert: RowConverter | None = None
) -> list[Item]:
    """Convert in-memory rows (a ``datasets.Dataset``, a list of dicts) with ``name``'s row converter.

    Locations in errors read ``{source}:{row number (1-based)}``.
    """
    spec = get_benchmark(name)
    where = source or f"<{name} rows>"
    wrapped = (Row(f"{where}:{i + 1}", i, dict(r)) for i, r in enumerate(rows))
    return collect_items(wrapped, convert or spec.convert, source=where, limit=limit, desc=name)


def load_hub(name: str, *, limit: int | None = None, split: str | None = None) -> list[Item]:
    """Stream ``name`` from the HF hub (``datasets.load_dataset(..., streaming=True)``) and convert it.

    Needs hub access (not available on our machines; the row converters are tested on in-memory datasets).
    """
    spec = get_benchmark(name)
    if not spec.hub:
        raise ValueError(f"{name} has no hub source; read it locally with load_benchmark({name!r})")
    import datasets

    items: list[Item] = []
    for hub in spec.hub:
        left = None if limit is None else limit - len(items)
        if left is not None and left <= 0:
            break
        ds = datasets.load_dataset(
            hub.path, name=hub.config, data_dir=hub.data_dir, split=split or hub.split, streaming=True
        )
        items += convert_rows(name, ds, source=f"hf://{hub.path}", limit=left, convert=hub.convert)
    return items
