"""Report writers: ``metrics.json`` (flat metric name -> value), ``report.md`` (one table per benchmark) and
``items_{benchmark}.jsonl`` (per-item predictions), all written atomically."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grm.evaluation import EvalReport, metric_name
from grm.files import write_json_atomic, write_jsonl_atomic, write_text_atomic

HEADLINE = (
    "accuracy",
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
    "roc_auc",
)
HYGIENE = ("parse_fail_rate", "tie_rate", "position_flip_rate", "seed_agreement")


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def markdown_table(report: EvalReport) -> str:
    """One markdown table: a row per ``{method}_k{k}`` cell, headline metrics then hygiene metrics.

    Args:
        report: an evaluation report.

    Returns:
        The table with a heading line stating the benchmark, model, item count and tie policy.
    """
    present = [m for m in HEADLINE if any(m in c for c in report.cells.values())]
    hygiene = [m for m in HYGIENE if any(m in c for c in report.cells.values())]
    cols = present + hygiene
    lines = [
        f"### {report.benchmark} - {report.model_name} (n={report.n_items}, tie policy: {report.tie_policy}"
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
        ``{"metrics": metrics.json, "report": report.md, "params": params.json, "items/<bench>": ...}``.
    """
    out = Path(out_dir)
    metrics: dict[str, float | None] = {}
    for r in reports:
        metrics.update(r.metrics())
    paths = {"metrics": write_json_atomic(out / "metrics.json", metrics)}
    header = ["# grm eval report", ""]
    if params:
        header += [f"- {k}: `{v}`" for k, v in sorted(params.items())] + [""]
    body = "\n".join(markdown_table(r) for r in reports)
    paths["report"] = write_text_atomic(out / "report.md", "\n".join(header) + "\n" + body)
    paths["params"] = write_json_atomic(out / "params.json", params or {})
    for r in reports:
        name = metric_name(r.benchmark)
        paths[f"items/{name}"] = write_jsonl_atomic(out / f"items_{name}.jsonl", r.per_item)
    return paths
