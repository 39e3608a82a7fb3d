"""Report writers: ``metrics.json`` (flat metric name -> value), ``report.md`` (the cross-benchmark table, then one
table per benchmark), ``accuracy_vs_k.png`` and ``items_{benchmark}.jsonl`` (per-item predictions), all written
atomically."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grm.benchmarks.scoring import subset_key
from grm.eval.metric_key import metric_name
from grm.eval.report.cross_table import cross_markdown, cross_metrics, cross_table, plot_k_curves
from grm.eval.spec import EvalReport
from grm.files import write_json_atomic, write_jsonl_atomic, write_text_atomic

HEADLINE = (
    "accuracy",
    "macro_accuracy",
    "overall",
    "chat",
    "chat_hard",
    "safety",
    "reasoning",
    *(
        "pairwise_helpfulness",
        "pairwise_harmlessness",
        "bon_helpfulness",
        "bon_harmlessness",
    ),
    *("knowledge", "math", "coding", "code", "single_game_accuracy"),  # JudgeBench categories, RM-Bench domains
    *("hard", "normal", "easy"),  # RM-Bench difficulty levels
    "ties",  # RewardBench 2's Ties subset
    "roc_auc",
)
HYGIENE = ("parse_fail_rate", "tie_rate", "position_flip_rate", "counter_zero_rate", "style_bias", "seed_agreement")
_DOMAIN_LEVEL_RE = re.compile(r"^(?P<domain>[a-z]+)/(?P<level>hard|normal|easy|style_bias)$")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(report: EvalReport) -> str:
    """One markdown table: a row per ``{method}_k{k}`` cell, headline metrics then hygiene metrics; then, when the
    cells carry ``subset/*`` accuracies, the per-subset table (``subset_table``).

    Args:
        report: an evaluation report.

    Returns:
        The table(s) with a heading line stating the benchmark, model, item count and tie policy.
    """
    present = [m for m in HEADLINE if any(m in c for c in report.cells.values())]
    hygiene = [m for m in HYGIENE if any(m in c for c in report.cells.values())]
    cols = present + hygiene
    lines = [
        f"### {report.benchmark} - {report.model_name} (n={report.n_items}"
        + (f" comparisons of {report.settings['n_prompts']} prompts" if "n_prompts" in report.settings else "")
        + f", tie policy: {report.tie_policy}"
        + (f"; official: {report.official_tie_policy})" if report.official_tie_policy else ")"),
        "",
        "| method | " + " | ".join(c if c != "accuracy" else "accuracy [95% CI]" for c in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for cell, m in report.cells.items():
        values = []
        for c in cols:
            if c == "accuracy":
                values.append(f"{_fmt(m['accuracy'])} [{_fmt(m['accuracy_ci_low'])}, {_fmt(m['accuracy_ci_high'])}]")
            else:
                values.append(_fmt(m.get(c)))
        lines.append(f"| {cell} | " + " | ".join(values) + " |")
    if report.settings.get("note"):
        lines += ["", f"Note: {report.settings['note']}."]
    table = "\n".join(lines) + "\n"
    extra = [t for t in (subset_table(report), domain_table(report)) if t]
    return table + "".join("\n" + t for t in extra)


def domain_table(report: EvalReport) -> str:
    """RM-Bench's hard / normal / easy / style bias per domain (rows) and cell (columns); ``""`` for others."""
    keys = sorted(
        {k for c in report.cells.values() for k in c if _DOMAIN_LEVEL_RE.match(k)},
        key=lambda k: (k.split("/")[0], ("hard", "normal", "easy", "style_bias").index(k.split("/")[1])),
    )
    if not keys:
        return ""
    cells = list(report.cells)
    lines = [
        f"Style levels per domain ({report.benchmark} - {report.model_name}; style_bias = easy - hard):",
        "",
        "| domain / level | " + " | ".join(cells) + " |",
        "|---|" + "---:|" * len(cells),
    ]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(_fmt(report.cells[c].get(key)) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def all_metrics(reports: Sequence[EvalReport]) -> dict[str, float | None]:
    """Every report's flat metrics, plus the cross-benchmark table's (``eval/table/...``) when there are two or more
    benchmarks: what ``metrics.json`` holds and what ``--track`` logs."""
    metrics: dict[str, float | None] = {}
    for r in reports:
        metrics.update(r.metrics())
    if len(reports) >= 2:
        metrics.update(cross_metrics(cross_table(reports)))
    return metrics


def subset_table(report: EvalReport) -> str:
    """Accuracy per subset (rows) and cell (columns), with the item count of each subset, then the labelled
    ``macro mean`` (unweighted over subsets) and ``micro mean`` (over items) rows when the cells carry them.

    Returns:
        The markdown table, or ``""`` when no cell has ``subset/*`` metrics.
    """
    names = sorted({k.removeprefix("subset/") for c in report.cells.values() for k in c if k.startswith("subset/")})
    if not names:
        return ""
    counts: dict[str, int] = {}
    for row in report.per_item:
        key = subset_key(row.get("subset"))
        counts[key] = counts.get(key, 0) + 1
    cells = list(report.cells)
    lines = [
        f"Accuracy per subset ({report.benchmark} - {report.model_name}):",
        "",
        "| subset | n | " + " | ".join(cells) + " |",
        "|---|---:|" + "---:|" * len(cells),
    ]
    for name in names:
        values = [_fmt(report.cells[c].get(f"subset/{name}")) for c in cells]
        lines.append(f"| {name} | {counts.get(name, 'n/a')} | " + " | ".join(values) + " |")
    if any("macro_accuracy" in report.cells[c] for c in cells):
        n_subsets, n_items = len(names), sum(counts.values())
        macro = [_fmt(report.cells[c].get("macro_accuracy")) for c in cells]
        micro = [_fmt(report.cells[c].get("micro_accuracy")) for c in cells]
        lines.append(f"| macro mean (unweighted over {n_subsets} subsets) | {n_items} | " + " | ".join(macro) + " |")
        lines.append(f"| micro mean (over {n_items} items) | {n_items} | " + " | ".join(micro) + " |")
    return "\n".join(lines) + "\n"


def write_reports(
    reports: Sequence[EvalReport], out_dir: str | Path, *, params: dict[str, Any] | None = None
) -> dict[str, Path]:
    """Write every report under ``out_dir``.

    Args:
        reports: the evaluation reports (one per benchmark).
        out_dir: target folder (created).
        params: run parameters stored in ``params.json`` (and shown at the top of ``report.md``).

    Returns:
        ``{"metrics": metrics.json, "report": report.md, "params": params.json, "items/<bench>": ...}`` and
        ``"plot": accuracy_vs_k.png`` when some method was sampled at two or more k. With two or more benchmarks
        ``report.md`` opens with the cross-benchmark table and ``metrics.json`` holds its ``eval/table/...`` metrics.
    """
    out = Path(out_dir)
    paths = {"metrics": write_json_atomic(out / "metrics.json", all_metrics(reports))}
    header = ["# grm eval report", ""]
    if params:
        header += [f"- {k}: `{v}`" for k, v in sorted(params.items())] + [""]
    body = "\n".join(markdown_table(r) for r in reports)
    table = cross_table(reports)
    if len(reports) >= 2:
        body = cross_markdown(table) + "\n" + body
    png = plot_k_curves(table, out / "accuracy_vs_k.png")
    if png is not None:
        paths["plot"] = png
    paths["report"] = write_text_atomic(out / "report.md", "\n".join(header) + "\n" + body)
    paths["params"] = write_json_atomic(out / "params.json", params or {})
    for r in reports:
        name = metric_name(r.benchmark)
        paths[f"items/{name}"] = write_jsonl_atomic(out / f"items_{name}.jsonl", r.per_item)
    return paths
