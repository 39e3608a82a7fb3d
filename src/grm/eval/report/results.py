"""The results table printed at the end of a pipeline run (rows: models; columns: greedy, Voting@k, MetaRM@k)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from grm.ablations import ABLATIONS, UNFILTERED, UNFILTERED_LABEL, model_name
from grm.eval.metric_key import (
    CONTEXT,
    FELL_BACK,
    GREEDY,
    GREEDY_SWAP,
    METARM,
    VOTING,
    Cell,
    MetricKey,
    heldout_benchmark,
    metric_name,
)
from grm.eval.metrics import paired_gap

if TYPE_CHECKING:
    from grm.config import PipelineConfig

ABLATION_MODELS = tuple(model_name(a) for a in ABLATIONS)
MODELS = ("teacher", UNFILTERED, *ABLATION_MODELS, "rft", "rl")
MODEL_LABELS = {
    "teacher": "teacher",
    UNFILTERED: UNFILTERED_LABEL,
    **{model_name(a): label for a, label in ABLATIONS.items()},
    "rft": "RFT",
    "rl": "RL",
}


def shown_cells(show: Sequence[int]) -> list[str]:
    """The table's columns: ``greedy_k1``, then Voting@k and MetaRM@k for each k of ``show``."""
    return [str(Cell(GREEDY, 1)), *(str(Cell(VOTING, k)) for k in show), *(str(Cell(METARM, k)) for k in show)]


def _base(benchmark: str, model: str) -> str:
    """``eval/{benchmark}/{model}``: the start of every metric key of one evaluation."""
    return str(MetricKey(benchmark, model, "", "")).removesuffix("//")


def _cell(metrics: Mapping[str, float], key: MetricKey) -> str:
    def get(name: str) -> float | None:
        return metrics.get(str(dataclasses.replace(key, name=name)))

    acc = get("accuracy")
    if acc is None or math.isnan(acc):
        return "–"
    lo, hi = get("accuracy_ci_low"), get("accuracy_ci_high")
    ci = f" [{100 * lo:.1f}, {100 * hi:.1f}]" if lo is not None and hi is not None else ""
    marker = " (fell back: Voting)" if get(FELL_BACK) else ""  # eval.meta_min_auc
    return f"{100 * acc:.1f}{ci}{marker}"


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
        if not any(key.startswith(_base(benchmark, model) + "/") for key in metrics):
            continue
        row = [MODEL_LABELS.get(model, model)]
        row += [_cell(metrics, MetricKey(benchmark, model, cell, "")) for cell in shown_cells(show)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def single_sample_row(metrics: Mapping[str, float], benchmark: str, models: Sequence[str] = MODELS) -> str:
    """One line per model: single-sample accuracy at the voting temperature (Voting@1) and parse/tie rates."""
    out = []
    greedy, swap_cell, voting1 = str(Cell(GREEDY, 1)), str(Cell(GREEDY_SWAP, 1)), str(Cell(VOTING, 1))
    for model in models:

        def get(cell: str, name: str, model: str = model) -> float | None:
            return metrics.get(str(MetricKey(benchmark, model, cell, name)))

        v1 = get(voting1, "accuracy")
        if v1 is None:
            continue
        pf, tie = get(greedy, "parse_fail_rate"), get(greedy, "tie_rate")
        pf, tie = float("nan") if pf is None else pf, float("nan") if tie is None else tie
        line = (
            f"{MODEL_LABELS.get(model, model)}: Voting@1 (T>0) {100 * v1:.1f}%, greedy parse failures {100 * pf:.1f}%, "
            f"greedy top ties {100 * tie:.1f}%"
        )
        flip, swap = get(greedy, "position_flip_rate"), get(swap_cell, "accuracy")
        if flip is not None and swap is not None:
            line += f", greedy pick flips with the order {100 * flip:.1f}%, greedy over both orders {100 * swap:.1f}%"
        out.append(line)
    return "\n".join(out)


@dataclass(frozen=True)
class Gap:
    """One claimed ordering measured on the same items: ``a - b`` with a paired bootstrap interval."""

    a: tuple[str, str]  # (model, cell), e.g. ("rft", "greedy_k1")
    b: tuple[str, str]
    gap: float
    low: float
    high: float

    def key(self, benchmark: str, name: str) -> MetricKey:
        """``eval/{benchmark}/{model}/gap_{cell_a}_vs_{cell_b}/{name}`` (same model) or
        ``eval/{benchmark}/{model_a}_vs_{model_b}/gap_{cell}/{name}`` (or ``.../gap_{cell_a}_vs_{cell_b}/...``)."""
        if self.a[0] == self.b[0]:
            return MetricKey(benchmark, self.a[0], f"gap_{self.a[1]}_vs_{self.b[1]}", name)
        model = f"{self.a[0]}_vs_{self.b[0]}"
        if self.a[1] == self.b[1]:
            return MetricKey(benchmark, model, f"gap_{self.a[1]}", name)
        return MetricKey(benchmark, model, f"gap_{self.a[1]}_vs_{self.b[1]}", name)

    @property
    def resolved(self) -> bool:
        """Whether the interval excludes 0 (the gap is larger than its 95% interval)."""
        return self.low > 0 or self.high < 0


def claim_pairs(models: Sequence[str], ks: Sequence[int]) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The paper's orderings as (a, b) pairs, "a beats b": rejective sampling (RFT > SFT on unfiltered samples,
    greedy), RFT > each of its ablations (Table 4, greedy), RL > RFT (greedy), and per trained model Voting@k > Voting@1, MetaRM@k >= Voting@k, Voting@k / MetaRM@k >
    greedy, with k the largest evaluated k."""
    k = max(ks)
    greedy, swap = str(Cell(GREEDY, 1)), str(Cell(GREEDY_SWAP, 1))
    pairs: list[tuple[tuple[str, str], tuple[str, str]]] = []
    ablations = [("rft", m) for m in ABLATION_MODELS]
    for a, b in (("rft", UNFILTERED), *ablations, ("rl", "rft")):
        if a in models and b in models:
            # single-order greedy (the paper's protocol), then averaged over the shown order and its reverse
            pairs.append(((a, greedy), (b, greedy)))
            pairs.append(((a, swap), (b, swap)))
    if k > 1:
        vote_k, meta_k, vote_1 = str(Cell(VOTING, k)), str(Cell(METARM, k)), str(Cell(VOTING, 1))
        for m in models:
            pairs += [((m, vote_k), (m, vote_1)), ((m, meta_k), (m, vote_k))]
            pairs += [((m, vote_k), (m, greedy)), ((m, meta_k), (m, greedy))]
    return pairs


def claim_gaps(credits: Mapping[str, Mapping[str, Sequence[float]]], ks: Sequence[int], seed: int = 0) -> list[Gap]:
    """Paired gaps of ``claim_pairs`` from per-item credits (``model -> cell -> credit per item``, same items in
    the same order for every model); pairs whose cells were not evaluated are left out."""
    out = []
    for a, b in claim_pairs(list(credits), ks):
        ca, cb = credits[a[0]].get(a[1]), credits[b[0]].get(b[1])
        if ca is None or cb is None:
            continue
        gap, low, high = paired_gap(ca, cb, seed=seed)
        out.append(Gap(a, b, gap, low, high))
    return out


def gap_metrics(gaps: Sequence[Gap], benchmark: str) -> dict[str, float]:
    """Flat metrics ``eval/{benchmark}/{prefix}/{value,ci_low,ci_high}`` of ``gaps``."""
    out = {}
    for g in gaps:
        out.update(
            {str(g.key(benchmark, n)): v for n, v in (("value", g.gap), ("ci_low", g.low), ("ci_high", g.high))}
        )
    return out


def gaps_table(gaps: Sequence[Gap]) -> str:
    """A markdown table of the claimed orderings: gap in points with its paired 95% interval."""

    def name(side: tuple[str, str]) -> str:
        model, cell = side
        parsed = Cell.parse(cell)
        labels = {GREEDY: "greedy", GREEDY_SWAP: "greedy (both orders)", VOTING: "Voting@{k}", METARM: "MetaRM@{k}"}
        label = labels[parsed.method].format(k=parsed.k) if parsed and parsed.method in labels else cell
        return f"{MODEL_LABELS.get(model, model)} {label}"

    lines = ["| claim (a > b) | a - b (points) | paired 95% interval | interval excludes 0 |", "|---|---|---|---|"]
    for g in gaps:
        lines.append(
            f"| {name(g.a)} > {name(g.b)} | {100 * g.gap:+.1f} | [{100 * g.low:+.1f}, {100 * g.high:+.1f}] | "
            f"{'yes' if g.resolved else 'no'} |"
        )
    return "\n".join(lines)


BENCH_HEADLINES = ("roc_auc", "overall", "accuracy")  # the first a benchmark's cells have is its official number


def benchmark_table(
    metrics: Mapping[str, float],
    benchmarks: Sequence[str],
    ks: Sequence[int],
    models: Sequence[str] = ("rft", "rl"),
) -> str:
    """A markdown table of the ``eval.benchmarks`` results: one row per (benchmark, model), the benchmark's
    official headline (ReaLMistake ROC-AUC, RewardBench/RMB overall, else accuracy; %) per method, and how many
    items were evaluated, cut to fit the context and refused (``eval/{b}/{m}/context/*``).

    Example:
        >>> m = {"eval/rmb/rl/greedy_k1/overall": 0.5, "eval/rmb/rl/voting_k4/overall": 0.25,
        ...      "eval/rmb/rl/context/n_fit": 20.0, "eval/rmb/rl/context/n_truncated": 18.0,
        ...      "eval/rmb/rl/context/n_refused": 0.0}
        >>> print(benchmark_table(m, ["rmb"], [1, 4]).splitlines()[2])
        | rmb | RL | overall | 50.0 | 25.0 | – | 20 (18 cut, 0 refused) |
    """
    show = [k for k in ks if k > 1]
    header = ["benchmark", "model", "metric", "greedy"] + [f"Voting@{k}" for k in show]
    header += [f"MetaRM@{k}" for k in show] + ["items"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for bench in benchmarks:
        for model in models:
            base = _base(metric_name(bench), model)
            if not any(key.startswith(base + "/") for key in metrics):
                continue
            headline = next(
                (h for h in BENCH_HEADLINES if any(k.startswith(base) and k.endswith(f"/{h}") for k in metrics)),
                "accuracy",
            )
            values = []
            for cell in shown_cells(show):
                v = metrics.get(str(MetricKey(metric_name(bench), model, cell, headline)))
                values.append("–" if v is None or math.isnan(v) else f"{100 * v:.1f}")
            fit = {
                n: int(metrics.get(str(MetricKey(metric_name(bench), model, CONTEXT, n)), 0))
                for n in ("n_fit", "n_truncated", "n_refused")
            }
            items = f"{fit['n_fit']} ({fit['n_truncated']} cut, {fit['n_refused']} refused)"
            lines.append("| " + " | ".join([bench, MODEL_LABELS.get(model, model), headline, *values, items]) + " |")
    return "\n".join(lines)


HEADLINE_PREFIX = "accuracy"  # sorts before every other metric name on MLflow's compare page (alphabetical)


def headline_metrics(
    metrics: Mapping[str, float], benchmark: str, ks: Sequence[int], models: Sequence[str] = MODELS
) -> dict[str, float]:
    """The results table's cells as ``accuracy/{model}/{cell}`` metrics (copies of
    ``eval/{benchmark}/{model}/{cell}/accuracy``).

    MLflow's compare page lists a run's metrics in alphabetical order; under this prefix the cells a user compares
    come first, ahead of the per-cell details (intervals, parse failures, subsets) and the stage metrics.

    Example:
        >>> headline_metrics({"eval/world/rl/greedy_k1/accuracy": 0.5, "eval/world/rl/n": 3.0}, "world", [1])
        {'accuracy/rl/greedy_k1': 0.5}
    """
    show = [k for k in ks if k > 1]
    out = {}
    for model in models:
        for cell in shown_cells(show):
            value = metrics.get(str(MetricKey(benchmark, model, cell, "accuracy")))
            if value is not None and not math.isnan(value):
                out[f"{HEADLINE_PREFIX}/{model}/{cell}"] = value
    return out


def results_report(
    metrics: Mapping[str, float],
    cfg: PipelineConfig,
    gaps: str | None = None,
    models: Sequence[str] = MODELS,
) -> str:
    """The markdown ``grm run`` prints at the end of a run, also the parent MLflow run's description and
    ``results.md`` and the Prefect flow run's ``grm-results`` artifact: the results table, single-sample rates, the
    ``eval.benchmarks`` table and the paired gaps.

    Args:
        metrics: the run's flat metrics (``eval/...``).
        cfg: the resolved config (benchmark, ks, temperature, benchmarks).
        gaps: ``gaps_table`` of the run (None/empty: left out).
        models: the table's rows (``evaluate`` passes the model it evaluated).
    """
    bench = heldout_benchmark(cfg.data.source)
    parts = [
        f"Accuracy on the {bench} test split (%, 95% bootstrap interval), T={cfg.eval.temperature}:",
        "",
        results_table(metrics, bench, cfg.eval.ks, models),
    ]
    single = single_sample_row(metrics, bench, models)
    if single:
        parts += ["", *(f"- {line}" for line in single.splitlines())]
    if cfg.eval.benchmarks:
        limit = cfg.eval.benchmark_limit or "all"
        parts += ["", f"Real benchmarks (eval.benchmarks, {limit} items each; %, official metric):"]
        if cfg.model.base == "embedded":
            parts.append(
                "protocol check only: the embedded tiny model reads English benchmark text as <unk> tokens and has "
                f"{cfg.model.tiny.max_position_embeddings} positions (items cut to fit, counted); not a quality measure"
            )
        parts += ["", benchmark_table(metrics, cfg.eval.benchmarks, cfg.eval.ks)]
    if gaps:
        parts += ["", "The paper's orderings, paired over the same test items (gap in points, 95% bootstrap):", ""]
        parts.append(gaps)
    return "\n".join(parts)


def report_html(text: str, title: str = "results") -> str:
    """A standalone HTML page of ``results_report``'s markdown (pipe tables, ``- `` lists, paragraphs), for the
    MLflow artifact viewer, which renders ``.html`` but shows ``.md`` as plain text.

    Example:
        >>> "<td>1</td>" in report_html("| a |\\n|---|\\n| 1 |")
        True
    """
    from html import escape

    def cells(line: str) -> list[str]:
        return [escape(c.strip()) for c in line.strip().strip("|").split("|")]

    body: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].replace("|", "")) <= set("-: "):
            rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in cells(line)) + "</tr>"]
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells(lines[i])) + "</tr>")
                i += 1
            body.append("<table>" + "".join(rows) + "</table>")
            continue
        if line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{escape(lines[i][2:])}</li>")
                i += 1
            body.append("<ul>" + "".join(items) + "</ul>")
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            body.append(f"<h{level}>{escape(line.lstrip('#').strip())}</h{level}>")
        elif line.strip():
            body.append(f"<p>{escape(line)}</p>")
        i += 1
    style = (
        "body{font-family:sans-serif;font-size:14px}table{border-collapse:collapse;margin:8px 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{style}</style>"
        f"</head><body>{''.join(body)}</body></html>\n"
    )
