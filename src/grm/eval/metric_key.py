"""Metric names: the only place one is built or parsed.

An evaluation cell is a method at a sample count, ``{method}_k{k}`` (``greedy_k1``, ``voting_k8``, ``metarm_k4``,
``greedy_swap_k1``, ``scalar_k1``); a metric is ``eval/{benchmark}/{model}/{cell}/{name}``, where ``name`` may itself
hold ``/`` (``subset/chat``, ``roc_auc/math``). Other groups under a (benchmark, model) use the same key with a group
instead of a cell (``context/n_fit``, ``gap_rl_vs_rft/value``); the cross-benchmark table is
``eval/table/{model}/{cell}/{benchmark}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GREEDY, VOTING, METARM, SCALAR = "greedy", "voting", "metarm", "scalar"
GREEDY_SWAP = "greedy_swap"  # greedy averaged over the shown order and its reverse
METHODS = (GREEDY, GREEDY_SWAP, VOTING, METARM, SCALAR)  # in table order
PREFIX = "eval"
TABLE = "table"  # the benchmark segment of the cross-benchmark table's names
CONTEXT = "context"  # the group of a bench stage's context-fit counts
FELL_BACK = "fell_back"  # in every MetaRM@k cell of an evaluation with meta_vote "fallback": the cell is Voting@k
HELDOUT = "heldout"  # the benchmark segment of a data folder's held-out metrics, whatever the folder is called
_NAME_RE = re.compile(r"[^A-Za-z0-9_.\-]+")
_CELL_RE = re.compile(r"^(?P<method>[a-z_]+)_k(?P<k>\d+)$")


def metric_name(text: str) -> str:
    """Make ``text`` safe as one metric-name segment (no ``/``).

    Example:
        >>> metric_name("runs/tiny model")
        'runs_tiny_model'
    """
    return _NAME_RE.sub("_", text).strip("_") or "unnamed"


def model_label(spec: str) -> str:
    """A short model name from a model dir or URL: the last path part (``/runs/grm-27b`` -> ``grm-27b``)."""
    return metric_name(spec.rstrip("/").split("/")[-1].removeprefix("vllm:"))


def heldout_benchmark(source: str) -> str:
    """The benchmark segment of the pipeline's held-out metrics: ``world`` for the embedded world (``data.source``),
    else the fixed name ``heldout`` for any data folder.

    Never the folder's name: a weekly drop in ``data/2026-w50/`` must log the same metric names as last week's
    ``data/2026-w49/``, or the registry gate finds no champion value to compare with. The dataset's identity is
    kept elsewhere: the parent run's dataset inputs (``tasks.tracking.Tracker.log_datasets``) and its ``grm.data.source``
    tag.

    Example:
        >>> heldout_benchmark("world"), heldout_benchmark("data/my prefs/"), heldout_benchmark("data/2026-w50")
        ('world', 'heldout', 'heldout')
    """
    return "world" if source == "world" else HELDOUT


@dataclass(frozen=True, order=True)
class Cell:
    """One evaluation cell: a method at a sample count.

    Example:
        >>> str(Cell(VOTING, 8)), Cell.parse("metarm_k4"), Cell.parse("context")
        ('voting_k8', Cell(method='metarm', k=4), None)
    """

    method: str
    k: int = 1

    def __str__(self) -> str:
        return f"{self.method}_k{self.k}"

    @classmethod
    def parse(cls, text: str) -> Cell | None:
        """The cell named ``text``; None when ``text`` is not ``{method}_k{k}`` with a method of ``METHODS``
        (``gap_greedy_k1`` is a gap group, not a cell)."""
        m = _CELL_RE.match(text)
        return cls(m["method"], int(m["k"])) if m and m["method"] in METHODS else None

    def sort_key(self) -> tuple[int, int]:
        """Table order: greedy, greedy_swap, voting, metarm, scalar (others last), then k."""
        return (METHODS.index(self.method) if self.method in METHODS else len(METHODS), self.k)


@dataclass(frozen=True)
class MetricKey:
    """``eval/{benchmark}/{model}/{cell}/{name}``: ``cell`` is an evaluation cell (``voting_k8``) or another group
    (``context``, ``gap_rl_vs_rft``); ``name`` may hold ``/``. Segments are made safe with ``metric_name`` when
    built (``of``), never when parsed.

    Example:
        >>> key = MetricKey.of("rewardbench", "runs/rl", Cell(VOTING, 8), "subset/chat")
        >>> str(key)
        'eval/rewardbench/runs_rl/voting_k8/subset/chat'
        >>> MetricKey.parse(str(key)) == key, key.parsed_cell
        (True, Cell(method='voting', k=8))
        >>> MetricKey.parse("loss/train") is None
        True
    """

    benchmark: str
    model: str
    cell: str
    name: str

    @classmethod
    def of(cls, benchmark: str, model: str, cell: Cell | str, name: str) -> MetricKey:
        """A key with ``benchmark`` and ``model`` made safe segments (``metric_name``)."""
        return cls(metric_name(benchmark), metric_name(model), str(cell), name)

    def __str__(self) -> str:
        return f"{PREFIX}/{self.benchmark}/{self.model}/{self.cell}/{self.name}"

    @property
    def parsed_cell(self) -> Cell | None:
        """``cell`` as a ``Cell``; None for other groups (``context``, gaps)."""
        return Cell.parse(self.cell)

    def for_model(self, model: str) -> MetricKey:
        """The same metric of another evaluated model (the gate's ``champion``)."""
        return MetricKey(self.benchmark, model, self.cell, self.name)

    @classmethod
    def parse(cls, metric: str, *, nested: bool = True) -> MetricKey | None:
        """Split ``eval/{benchmark}/{model}/{cell}/{name}``; None for any other shape (or an empty segment).
        ``nested=False`` also refuses a ``name`` holding ``/`` (a gate metric names one value of a cell)."""
        parts = metric.split("/", 4) if nested else metric.split("/")
        if len(parts) != 5 or parts[0] != PREFIX or not all(parts):
            return None
        return cls(*parts[1:])


def prefix(benchmark: str, model: str) -> str:
    """``eval/{benchmark}/{model}`` with both made safe segments: the start of every key of one evaluation."""
    return f"{PREFIX}/{metric_name(benchmark)}/{metric_name(model)}"


def table_key(model: str, cell: str, benchmark: str) -> str:
    """The cross-benchmark table's ``eval/table/{model}/{cell}/{benchmark}``."""
    return f"{PREFIX}/{TABLE}/{metric_name(model)}/{cell}/{metric_name(benchmark)}"
