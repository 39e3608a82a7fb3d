"""Where a pipeline run's wall time goes: compute vs. orchestration, tracking, validation and versioning.

Stage code wraps its parts in ``LEDGER.measure(stage, category)``; the flow's total wall time minus everything
measured is charged to ``orchestration`` (Prefect task/flow overhead and glue). ``report()`` gives the table
printed at the end of every pipeline run; the target is overhead share <= 10% on real workloads (on tiny test
configs the fixed costs dominate and the share is large; the table says so rather than hiding it).

Example:
    >>> led = Ledger()
    >>> with led.measure("rft.sample", "compute"):
    ...     pass
    >>> sorted(led.per_stage())
    ['rft.sample']
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CATEGORIES = ("compute", "tracking", "validation", "versioning", "orchestration")
OVERHEAD = ("tracking", "validation", "versioning", "orchestration")
TARGET_OVERHEAD_SHARE = 0.10


@dataclass
class BenchReport:
    """Per-stage seconds by category, the total wall time and the share spent outside compute."""

    stages: dict[str, dict[str, float]]
    cached: dict[str, bool]
    total_seconds: float
    overhead_seconds: float

    @property
    def overhead_share(self) -> float:
        return self.overhead_seconds / self.total_seconds if self.total_seconds > 0 else 0.0

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: ``bench/{stage}/{category}_s``, ``bench/total_s``, ``bench/overhead_share``."""
        out = {f"bench/{s}/{c}_s": v for s, cats in self.stages.items() for c, v in cats.items()}
        out.update({"bench/total_s": self.total_seconds, "bench/overhead_share": self.overhead_share})
        return out

    def table(self) -> str:
        """The text figure printed at the end of a run."""
        head = f"{'stage':<22}{'wall_s':>9}" + "".join(f"{c:>14}" for c in CATEGORIES) + "  cached"
        lines = [head, "-" * len(head)]
        for stage, cats in self.stages.items():
            wall = sum(cats.values())
            row = f"{stage:<22}{wall:>9.2f}" + "".join(f"{cats.get(c, 0.0):>14.2f}" for c in CATEGORIES)
            lines.append(row + ("  yes" if self.cached.get(stage) else ""))
        lines.append("-" * len(head))
        ok = "within" if self.overhead_share <= TARGET_OVERHEAD_SHARE else "ABOVE"
        lines.append(
            f"total {self.total_seconds:.2f} s; outside compute {self.overhead_seconds:.2f} s = "
            f"{100 * self.overhead_share:.1f}% ({ok} the {100 * TARGET_OVERHEAD_SHARE:.0f}% target)"
        )
        return "\n".join(lines)

    def figure(self):  # -> matplotlib.figure.Figure
        """A stacked bar chart (seconds per stage by category) for the MLflow run."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        stages = list(self.stages)
        fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(stages)), 3.5))
        bottom = [0.0] * len(stages)
        for cat in CATEGORIES:
            vals = [self.stages[s].get(cat, 0.0) for s in stages]
            ax.bar(stages, vals, bottom=bottom, label=cat)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_ylabel("seconds")
        ax.set_title(f"wall time per stage; {100 * self.overhead_share:.1f}% outside compute")
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=7)
        fig.tight_layout()
        return fig


class Ledger:
    """Thread-safe accumulator of (stage, category) -> seconds for one pipeline run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._cached: dict[str, bool] = {}
        self._start = time.perf_counter()

    def reset(self) -> None:
        """Start a new run: forget everything and restart the wall clock."""
        with self._lock:
            self._seconds.clear()
            self._cached.clear()
            self._start = time.perf_counter()

    def add(self, stage: str, category: str, seconds: float) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"Unknown category {category!r}. Available: {', '.join(CATEGORIES)}")
        with self._lock:
            self._seconds[stage][category] += seconds

    def mark_cached(self, stage: str, cached: bool) -> None:
        with self._lock:
            self._cached[stage] = cached

    @contextmanager
    def measure(self, stage: str, category: str) -> Iterator[None]:
        """Charge the time spent inside the block to (stage, category)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, category, time.perf_counter() - start)

    def per_stage(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return {s: dict(c) for s, c in self._seconds.items()}

    def report(self, total_seconds: float | None = None) -> BenchReport:
        """Close the books: unmeasured wall time becomes ``orchestration`` of the pseudo-stage ``flow``."""
        total = time.perf_counter() - self._start if total_seconds is None else total_seconds
        stages = self.per_stage()
        measured = sum(sum(c.values()) for c in stages.values())
        stages.setdefault("flow", {})["orchestration"] = max(0.0, total - measured)
        overhead = sum(v for c in stages.values() for k, v in c.items() if k in OVERHEAD)
        with self._lock:
            cached = dict(self._cached)
        return BenchReport(stages, cached, total, overhead)


LEDGER = Ledger()  # one pipeline run per process at a time (flows reset it when they start)
