"""The cross-benchmark table of one ``grm eval`` run: a row per method cell (greedy / Voting@k / MetaRM@k), a column
per benchmark's headline score, and the paper's Overall; as markdown, flat metrics and a PNG of score vs k.

Headline per scorer (``grm.benchmarks.scoring.Scorer.headline``): RewardBench = the mean of its four sections, RMB = the mean of its
four sections, JudgeBench = the official micro accuracy over both orders, RM-Bench = the mean of its domains,
RewardBench 2 = the mean of its subsets, PPE-Correctness = the mean of its five sources, ReaLMistake = ROC-AUC,
anything else = accuracy. The seed paper's Overall (DeepSeek-GRM, Table 2) is the mean of RewardBench,
PPE-Preference, PPE-Correctness and RMB (``PAPER_OVERALL``): ``paper_overall`` when all four are in the run; with
only some, ``paper_overall_partial`` over those present, the missing ones named in the table (never silently).
Metric names: ``eval/table/{model}/{cell}/{benchmark}`` and ``.../paper_overall[_partial]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grm.benchmarks import scoring
from grm.eval.metric_key import METARM, VOTING, Cell, table_key
from grm.eval.spec import EvalReport

PAPER_OVERALL = ("rewardbench", "ppe-preference", "ppe-correctness", "rmb")


@dataclass
class CrossTable:
    """Headline scores: ``values[cell][benchmark]``; the paper's Overall per cell when any of its parts is present."""

    model_name: str
    benchmarks: list[str]
    headline: dict[str, str]  # benchmark -> metric used
    cells: list[str]
    values: dict[str, dict[str, float]]
    paper_overall: dict[str, float] = field(default_factory=dict)
    paper_missing: list[str] = field(default_factory=list)

    @property
    def paper_key(self) -> str:
        return "paper_overall" if not self.paper_missing else "paper_overall_partial"


def _cell_key(cell: str) -> tuple[int, int, str]:
    parsed = Cell.parse(cell)
    return (9, 0, cell) if parsed is None else (*parsed.sort_key(), cell)


def headline_metric(report: EvalReport) -> str:
    """The metric a report's benchmark is summarised by (``accuracy`` when its scorer has no entry)."""
    scorer = scoring.SCORERS.get(str(report.settings.get("scorer", "accuracy")))
    return scorer.headline if scorer is not None else "accuracy"


def cross_table(reports: Sequence[EvalReport]) -> CrossTable:
    """Build the table from the run's reports (one model; benchmarks in run order).

    Raises:
        ValueError: no reports, or reports of several models.
    """
    if not reports:
        raise ValueError("cross_table needs at least one report")
    models = sorted({r.model_name for r in reports})
    if len(models) > 1:
        raise ValueError(f"one cross-benchmark table per model; got {models}")
    headline = {r.benchmark: headline_metric(r) for r in reports}
    cells = sorted({c for r in reports for c in r.cells}, key=_cell_key)
    values: dict[str, dict[str, float]] = {c: {} for c in cells}
    for r in reports:
        for c, m in r.cells.items():
            if headline[r.benchmark] in m:
                values[c][r.benchmark] = float(m[headline[r.benchmark]])
    present = [b for b in PAPER_OVERALL if b in headline]
    missing = [b for b in PAPER_OVERALL if b not in headline]
    paper: dict[str, float] = {}
    if present:
        for c in cells:
            parts = [values[c].get(b) for b in present]
            if all(p is not None and not np.isnan(p) for p in parts):
                paper[c] = float(np.mean(parts))  # type: ignore[arg-type]
    return CrossTable(models[0], [r.benchmark for r in reports], headline, cells, values, paper, missing)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or np.isnan(value) else f"{value:.3f}"


def cross_markdown(table: CrossTable) -> str:
    """The table as markdown, with a line naming each column's metric and what the paper's Overall lacks."""
    show_paper = bool(table.paper_overall) or any(b in table.benchmarks for b in PAPER_OVERALL)
    cols = table.benchmarks + ([table.paper_key] if show_paper else [])
    lines = [
        f"### Cross-benchmark table - {table.model_name}",
        "",
        "| method | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for c in table.cells:
        vals = [_fmt(table.values[c].get(b)) for b in table.benchmarks]
        if show_paper:
            vals.append(_fmt(table.paper_overall.get(c)))
        lines.append(f"| {c} | " + " | ".join(vals) + " |")
    lines += ["", "Columns: " + "; ".join(f"{b} = {table.headline[b]}" for b in table.benchmarks) + "."]
    paper = "the paper's Overall = mean of " + ", ".join(PAPER_OVERALL)
    if not table.paper_missing:
        lines.append(f"paper_overall: {paper}.")
    elif show_paper:
        lines.append(
            f"paper_overall_partial: {paper}; missing here: {', '.join(table.paper_missing)} (mean of the rest)."
        )
    else:
        lines.append(f"No paper Overall: {paper}; none of them is in this run.")
    return "\n".join(lines) + "\n"


def cross_metrics(table: CrossTable) -> dict[str, float]:
    """Flat metrics ``eval/table/{model}/{cell}/{benchmark}`` (+ ``paper_overall`` or ``paper_overall_partial``)."""
    out = {
        table_key(table.model_name, c, b): v
        for c in table.cells
        for b, v in table.values[c].items()
        if not np.isnan(v)
    }
    out.update({table_key(table.model_name, c, table.paper_key): v for c, v in table.paper_overall.items()})
    return out


def k_curves(table: CrossTable) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """``{benchmark: {method: [(k, score), ...]}}`` for the methods sampled at two or more k (voting, metarm)."""
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for b in table.benchmarks:
        per_method: dict[str, list[tuple[int, float]]] = {}
        for c in table.cells:
            cell = Cell.parse(c)
            if cell and cell.method in (VOTING, METARM) and b in table.values[c]:
                per_method.setdefault(cell.method, []).append((cell.k, table.values[c][b]))
        per_method = {meth: sorted(pts) for meth, pts in per_method.items() if len(pts) >= 2}
        if per_method:
            curves[b] = per_method
    return curves


def plot_k_curves(table: CrossTable, path: str | Path) -> Path | None:
    """Write a PNG of each benchmark's headline score vs k (Voting@k, MetaRM@k; greedy as a dashed line).

    Returns:
        The path, or None when no method was sampled at two or more k (nothing to plot).
    """
    curves = k_curves(table)
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(4 * len(curves), 3.2), squeeze=False)
    for ax, (bench, per_method) in zip(axes[0], curves.items(), strict=True):
        for method, pts in per_method.items():
            ax.plot([k for k, _ in pts], [v for _, v in pts], marker="o", label=f"{method}@k")
        greedy = table.values.get("greedy_k1", {}).get(bench)
        if greedy is not None and not np.isnan(greedy):
            ax.axhline(greedy, linestyle="--", color="grey", label="greedy")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("k")
        ax.set_ylabel(table.headline[bench])
        ax.set_title(bench)
        ax.legend(fontsize=8)
    fig.suptitle(f"{table.model_name}: headline score vs k")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(out)
    return out
