"""The results table printed at the end of a pipeline run (rows: models; columns: greedy, Voting@k, MetaRM@k)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

MODELS = ("teacher", "sft_unfiltered", "rft", "rl")
MODEL_LABELS = {"teacher": "teacher", "sft_unfiltered": "unfiltered-SFT", "rft": "RFT", "rl": "RL"}


def _cell(metrics: Mapping[str, float], prefix: str) -> str:
    acc = metrics.get(f"{prefix}/accuracy")
    if acc is None or math.isnan(acc):
        return "–"
    lo, hi = metrics.get(f"{prefix}/accuracy_ci_low"), metrics.get(f"{prefix}/accuracy_ci_high")
    ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
    return f"{100 * acc:.1f}{ci}"


def results_table(
    metrics: Mapping[str, float],
    benchmark: str,
    ks: Sequence[int],
    models: Sequence[str] = MODELS,
    show_ks: Sequence[int] | None = None,
) -> str:
    """A markdown table of accuracy (%) with 95% bootstrap intervals from flat ``eval/...`` metrics.

    Args:
        metrics: ``eval/{benchmark}/{model}/{method}_k{k}/{metric}`` values.
        benchmark: benchmark name (``world`` for the embedded world).
        ks: the evaluated k values.
        models: row order; models without metrics are left out.
        show_ks: k values to show as columns (default: every k > 1 of ``ks``).

    Example:
        >>> m = {"eval/world/rl/greedy_k1/accuracy": 0.5, "eval/world/rl/voting_k8/accuracy": 0.75}
        >>> print(results_table(m, "world", [1, 8]).splitlines()[2])
        | RL | 50.0 | 75.0 | – |
    """
    show = [k for k in (show_ks or ks) if k > 1]
    header = ["model", "greedy"] + [f"Voting@{k}" for k in show] + [f"MetaRM@{k}" for k in show]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in models:
        base = f"eval/{benchmark}/{model}"
        if not any(key.startswith(base + "/") for key in metrics):
            continue
        cells = [MODEL_LABELS.get(model, model), _cell(metrics, f"{base}/greedy_k1")]
        cells += [_cell(metrics, f"{base}/voting_k{k}") for k in show]
        cells += [_cell(metrics, f"{base}/metarm_k{k}") for k in show]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def single_sample_row(metrics: Mapping[str, float], benchmark: str, models: Sequence[str] = MODELS) -> str:
    """One line per model: single-sample accuracy at the voting temperature (Voting@1) and parse/tie rates."""
    out = []
    for model in models:
        base = f"eval/{benchmark}/{model}"
        v1 = metrics.get(f"{base}/voting_k1/accuracy")
        if v1 is None:
            continue
        pf = metrics.get(f"{base}/greedy_k1/parse_fail_rate", float("nan"))
        tie = metrics.get(f"{base}/greedy_k1/tie_rate", float("nan"))
        out.append(
            f"{MODEL_LABELS.get(model, model)}: Voting@1 (T>0) {100 * v1:.1f}%, greedy parse failures {100 * pf:.1f}%, "
            f"greedy top ties {100 * tie:.1f}%"
        )
    return "\n".join(out)
