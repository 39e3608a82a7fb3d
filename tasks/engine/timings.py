"""Where a pipeline run's wall time goes: compute vs. orchestration, tracking, validation and versioning.

Stage code wraps its parts in ``LEDGER.measure(stage, category)``; the flow's wall time during which nothing was
measured is charged to ``orchestration`` (Prefect task/flow overhead and glue). ``report()`` gives the table
printed at the end of every pipeline run: seconds per stage and category, each stage's share of the summed stage
time, and, when stages ran at once (``runtime.parallel_stages``), how much wall time that saved. Time a build
spent waiting for a CPU slot (``LEDGER.add_wait``) is not charged to the stage. The target is overhead share
<= 10% on real workloads (on tiny test configs the fixed costs dominate and the share is large; the table says so
rather than hiding it).

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
from dataclasses import dataclass, field

CATEGORIES = ("compute", "tracking", "validation", "versioning", "orchestration")
OVERHEAD = ("tracking", "validation", "versioning", "orchestration")
TARGET_OVERHEAD_SHARE = 0.10


@dataclass
class BenchReport:
    """Per-stage seconds by category, the total wall time and the share spent outside compute.

    ``busy_seconds``: wall time during which at least one stage was measured (equal to the summed stage time when
    stages ran one at a time; less when they overlapped).
    """

    stages: dict[str, dict[str, float]]
    cached: dict[str, bool]
    total_seconds: float
    overhead_seconds: float
    busy_seconds: float = 0.0
    waits: dict[str, float] = field(default_factory=dict)

    @property
    def overhead_share(self) -> float:
        return self.overhead_seconds / self.total_seconds if self.total_seconds > 0 else 0.0

    @property
    def stage_seconds(self) -> float:
        """Summed stage time (every category, the flow's orchestration included)."""
        return sum(sum(c.values()) for c in self.stages.values())

    def metrics(self) -> dict[str, float]:
        """MLflow metrics: ``bench/{stage}/{category}_s``, ``bench/total_s``, ``bench/stage_s``,
        ``bench/overhead_share``."""
        out = {f"bench/{s}/{c}_s": v for s, cats in self.stages.items() for c, v in cats.items()}
        out.update({"bench/total_s": self.total_seconds, "bench/overhead_share": self.overhead_share})
        out["bench/stage_s"] = self.stage_seconds
        out.update({f"bench/{s}/wait_s": v for s, v in self.waits.items()})
        return out

    def table(self) -> str:
        """The text figure printed at the end of a run."""
        head = f"{'stage':<28}{'wall_s':>9}{'share':>7}" + "".join(f"{c:>14}" for c in CATEGORIES) + "  cached"
        lines = [head, "-" * len(head)]
        summed = self.stage_seconds
        for stage, cats in self.stages.items():
            wall = sum(cats.values())
            share = 100 * wall / summed if summed > 0 else 0.0
            row = f"{stage:<28}{wall:>9.2f}{share:>6.1f}%" + "".join(f"{cats.get(c, 0.0):>14.2f}" for c in CATEGORIES)
            lines.append(row + ("  yes" if self.cached.get(stage) else ""))
        lines.append("-" * len(head))
        if summed > self.total_seconds * 1.01:
            waited = sum(self.waits.values())
            lines.append(
                f"stages ran at once: {summed:.2f} s of stage time in {self.total_seconds:.2f} s of wall time "
                f"({summed / self.total_seconds:.2f}x; builds waited {waited:.2f} s for a CPU slot in all)"
            )
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


def union_seconds(intervals: list[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals.

    Example:
        >>> union_seconds([(0, 2), (1, 3), (5, 6)])
        4
    """
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


class Ledger:
    """Thread-safe accumulator of (stage, category) -> seconds for one pipeline run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._cached: dict[str, bool] = {}
        self._waits: dict[str, float] = defaultdict(float)
        self._intervals: list[tuple[float, float]] = []
        self._unplaced = 0.0  # seconds added without an interval (``add``): counted as busy, one after another
        self._start = time.perf_counter()

    def reset(self) -> None:
        """Start a new run: forget everything and restart the wall clock."""
        with self._lock:
            self._seconds.clear()
            self._cached.clear()
            self._waits.clear()
            self._intervals.clear()
            self._unplaced = 0.0
            self._start = time.perf_counter()

    def add(self, stage: str, category: str, seconds: float, interval: tuple[float, float] | None = None) -> None:
        if category not in CATEGORIES:
            raise ValueError(f"Unknown category {category!r}. Available: {', '.join(CATEGORIES)}")
        with self._lock:
            self._seconds[stage][category] += seconds
            if interval is None:
                self._unplaced += seconds
            else:
                self._intervals.append(interval)

    def add_wait(self, stage: str, seconds: float) -> None:
        """``seconds`` the stage's build waited for a CPU slot inside a measured block: taken off its compute."""
        with self._lock:
            self._waits[stage] += seconds

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
            end = time.perf_counter()
            self.add(stage, category, end - start, (start, end))

    def per_stage(self) -> dict[str, dict[str, float]]:
        with self._lock:
            stages = {s: dict(c) for s, c in self._seconds.items()}
            for stage, waited in self._waits.items():
                if stage in stages:
                    stages[stage]["compute"] = max(0.0, stages[stage].get("compute", 0.0) - waited)
            return stages

    def report(self, total_seconds: float | None = None) -> BenchReport:
        """Close the books: wall time when no stage was measured becomes ``orchestration`` of the pseudo-stage
        ``flow``."""
        total = time.perf_counter() - self._start if total_seconds is None else total_seconds
        stages = self.per_stage()
        with self._lock:
            busy = union_seconds(self._intervals) + self._unplaced
            cached, waits = dict(self._cached), dict(self._waits)
        stages.setdefault("flow", {})["orchestration"] = max(0.0, total - busy)
        overhead = sum(v for c in stages.values() for k, v in c.items() if k in OVERHEAD)
        return BenchReport(stages, cached, total, overhead, busy, waits)


LEDGER = Ledger()  # one pipeline run per process at a time (flows reset it when they start)
