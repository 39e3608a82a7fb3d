"""Evaluation stages: ``eval.{model}`` scores one GRM on the held-out test split (benchmark ``world``, or
``heldout`` for a data folder) with greedy + Voting@k (+ MetaRM@k when a meta RM is given) via
``grm.eval.run.evaluate``.

Metrics: ``eval/{benchmark}/{model}/{method}_k{k}/{metric}``; artifacts: ``eval/report.json``, the judgement table
``tables/judgements.json`` (``mlflow.log_table``) and ``figures/accuracy_vs_k.png``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.config import PipelineConfig, SamplingConfig
from grm.eval.metric_key import GREEDY, METARM, VOTING, Cell, heldout_benchmark
from grm.eval.run import evaluate
from grm.eval.spec import STANDARD, EvalReport, EvalSpec, resolve_protocol
from grm.files import write_json_atomic
from grm.schemas import read_items
from grm.training import spct
from tasks.data import split
from tasks.engine.runtime import TASK_OPTIONS, RunContext, logger, run_stage
from tasks.engine.stages import BuildContext, FileInput, Stage, StageOutput, StageResult, register
from tasks.slices import TeacherSlice, make_teacher, select_teacher, teacher_files
from tasks.tracking import FIGURE_LOCK
from tasks.versioning import DataVersion

TEACHER = "teacher"


def benchmark_of(source: str) -> str:
    """``world`` for the embedded world, else ``heldout`` (never the folder's name: ``grm.eval.metric_key.HELDOUT``)."""
    return heldout_benchmark(source)


def benchmark_name(ctx: RunContext) -> str:
    """``world`` for the embedded world, else ``heldout``."""
    return benchmark_of(ctx.cfg.data.source)


def accuracy_figure(cells: dict[str, dict[str, float]], title: str):  # -> matplotlib Figure
    """Accuracy vs k for each method (greedy as a horizontal line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    parsed = {c: cell for c in cells if (cell := Cell.parse(c)) is not None}
    for method in (VOTING, METARM):
        pts = sorted((cell.k, cells[c]["accuracy"]) for c, cell in parsed.items() if cell.method == method)
        if pts:
            ax.plot([k for k, _ in pts], [a for _, a in pts], marker="o", label=method)
    greedy = str(Cell(GREEDY, 1))
    if greedy in cells:
        ax.axhline(cells[greedy]["accuracy"], linestyle="--", color="grey", label=GREEDY)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@dataclass(frozen=True)
class Protocol:
    """The ``eval`` protocol fields and sampler settings every evaluation reads (``eval.{model}`` on the held-out
    split and ``bench.{benchmark}.{model}`` alike; not ``benchmarks``/``benchmark_limit``/``benchdata``/``limit``:
    those say *what* is evaluated, per stage)."""

    sampling: SamplingConfig
    ks: tuple[int, ...]
    temperature: float
    k_meta: int | None
    tie_policy: str
    seed: int
    hygiene: bool
    seed_agreement: bool
    meta_vote: str = "top"  # eval.meta_vote
    meta_min_auc: float | None = None  # eval.meta_min_auc: below it MetaRM@k falls back to Voting@k


def select_protocol(cfg: PipelineConfig) -> Protocol:
    ev = cfg.eval
    return Protocol(
        cfg.sampling, ev.ks, ev.temperature, ev.k_meta, ev.tie_policy, ev.seed, ev.hygiene, ev.seed_agreement,
        ev.meta_vote, ev.meta_min_auc,
    )  # fmt: skip


@dataclass(frozen=True)
class EvalSlice:
    """``eval.{name}``: the evaluation protocol, the test-split limit, the benchmark name that every metric name
    holds, and the teacher when the evaluated model is the configured teacher. A trained model is an upstream input
    (by key); a given model folder is a file input (by content)."""

    model_name: str
    benchmark: str
    teacher: TeacherSlice | None
    protocol: Protocol
    limit: int | None


TARGETS = ("stage", "teacher", "folder")  # the evaluated model: a stage's output, the teacher, a given folder


def select_eval(cfg: PipelineConfig, name: str, target: str, model_dir: str | None = None) -> EvalSlice:
    if target not in TARGETS:
        raise ValueError(f"eval target {target!r}: use one of {TARGETS}")
    teacher_seed = cfg.eval.seed  # the world teacher's sampling seed at evaluation
    teacher = select_teacher(cfg, teacher_seed) if target == TEACHER else None
    return EvalSlice(name, benchmark_of(cfg.data.source), teacher, select_protocol(cfg), cfg.eval.limit)


def eval_files(cfg: PipelineConfig, name: str, target: str, model_dir: str | None = None) -> dict[str, FileInput]:
    if target == "folder":
        if model_dir is None:
            raise ValueError("eval target 'folder' needs model_dir")
        return {"model": FileInput(model_dir, "model", fix="pass a local model folder, a registry alias or teacher")}
    return teacher_files(cfg) if target == TEACHER else {}


def evaluate_with(
    p: Protocol, benchmark: str, model_name: str, items: list, sampler: Any, meta_rm: StageResult | None
) -> EvalReport:
    """``grm.eval.run.evaluate`` under protocol ``p``: greedy + Voting@k, and MetaRM@k when ``meta_rm`` (a stage
    result with a ``model`` output) is given. Shared by ``eval.{model}`` and ``bench.{benchmark}.{model}``."""
    meta_scorer, meta_vote = None, p.meta_vote
    if meta_rm is not None:
        from grm.meta_rm import load_meta_scorer
        from grm.method.verdicts import meta_vote_for

        meta_scorer = load_meta_scorer(meta_rm.output("model"), template=p.sampling.template)
        meta_vote, why = meta_vote_for(p.meta_vote, meta_scorer.info.get("val_within_item_auc"), p.meta_min_auc)
        if why:
            logger().warning("%s/%s: %s", benchmark, model_name, why)
        if meta_vote != "top" and resolve_protocol(benchmark, None) != STANDARD:
            # the two-game and style-matrix protocols only know the top-k_meta filter: no cell may claim otherwise
            logger().warning(
                "%s/%s: its protocol keeps the top-k_meta filter only; %s", benchmark, model_name,
                "no MetaRM@k cells (fell back to voting)" if meta_vote == "fallback" else "MetaRM@k uses 'top'",
            )  # fmt: skip
            meta_scorer = None if meta_vote == "fallback" else meta_scorer
            meta_vote = "top"
    spec = eval_spec(p, benchmark, model_name, meta_scorer is not None, meta_vote)
    return evaluate(items, sampler, spec, meta_scorer)


def eval_spec(p: Protocol, benchmark: str, model_name: str, meta: bool, meta_vote: str | None = None) -> EvalSpec:
    """The ``EvalSpec`` of one pipeline evaluation: protocol ``p`` on ``benchmark`` for ``model_name``, with
    MetaRM@k when ``meta``; the spec ``grm.eval.expected.expected_metrics`` names the metrics of. ``meta_vote``:
    the one ``evaluate_with`` settled on (``grm.method.verdicts.meta_vote_for``); None = ``p.meta_vote``."""
    return EvalSpec(
        benchmark=benchmark,
        model_name=model_name,
        ks=p.ks,
        methods=(VOTING, METARM) if meta else (VOTING,),
        k_meta=p.k_meta,
        temperature=p.temperature,
        max_new_tokens=p.sampling.max_new_tokens,
        seed=p.seed,
        template=p.sampling.template,
        tie_policy=p.tie_policy,
        hygiene=p.hygiene,
        seed_agreement=p.seed_agreement,
        meta_vote=p.meta_vote if meta_vote is None else meta_vote,
    )


def expected_eval_metrics(cfg: PipelineConfig) -> set[str]:
    """The metric names the held-out evaluations of the enabled stages log, from their ``EvalSpec``s alone (no
    probe evaluation): the same set as ``grm.plan.expected_metrics`` (a test compares them), for the
    plan step that checks a gate metric before any compute."""
    from grm.config import evaluated_models
    from grm.eval.expected import expected_metrics

    p, benchmark = select_protocol(cfg), benchmark_of(cfg.data.source)
    specs = [eval_spec(p, benchmark, model, cfg.meta_rm.enabled) for model in evaluated_models(cfg)]
    return set().union(*(expected_metrics(spec) for spec in specs))


def build_eval(s: EvalSlice, b: BuildContext) -> StageOutput:
    """Score one GRM on the test split with greedy + Voting@k (+ MetaRM@k when a meta RM is given)."""
    items = read_items(b.inputs["test"].path)
    items = items[: s.limit] if s.limit else items
    if s.teacher is not None:
        sampler = make_teacher(s.teacher, b.files)
    else:
        model = b.inputs["model"]
        sampler = spct.student_sampler(
            model.output("model") if model is not None else b.files["model"], s.protocol.sampling
        )
    report = evaluate_with(s.protocol, s.benchmark, s.model_name, items, sampler, b.inputs["meta_rm"])
    write_json_atomic(b.out / "report.json", dataclasses.asdict(report))
    metrics = {k: float(v) for k, v in report.metrics().items() if v is not None}
    return StageOutput({"report": "report.json"}, metrics, {"cells": report.cells, "n_items": report.n_items})


def after_eval(s: EvalSlice, tracker: Any, run_id: str, result: StageResult) -> None:
    import json

    report = json.loads(result.output("report").read_text(encoding="utf-8"))
    tracker.log_artifact(run_id, result.output("report"), "eval")
    rows = report["per_item"]
    if rows:
        columns = {
            c: [json.dumps(r.get(c)) if isinstance(r.get(c), list | dict) else r.get(c) for r in rows] for c in rows[0]
        }
        tracker.log_table(run_id, columns, "tables/judgements.json")
    if tracker.enabled:
        title = f"{s.benchmark} / {s.model_name}"
        with FIGURE_LOCK:  # matplotlib is not thread-safe; parallel stages track from several threads
            tracker.log_figure(run_id, accuracy_figure(report["cells"], title), "figures/accuracy_vs_k.png")


def _eval_examples(tmp: Path) -> list[dict[str, Any]]:
    """Parameter sets of the generated key test: a trained model, the teacher, a given folder."""
    folder = tmp / "eval_model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    return [
        {"name": "rft", "target": "stage"},
        {"name": TEACHER, "target": TEACHER},
        {"name": "model", "target": "folder", "model_dir": str(folder)},
    ]


EVAL = register(
    Stage(
        "eval.{name}", select_eval, build_eval, inputs=("model", "meta_rm", "test"), files=eval_files,
        after=after_eval, examples=_eval_examples, process=True,
    )
)  # fmt: skip


@task(name="eval.model", task_run_name="eval.{name}", cache_policy=NO_CACHE, **TASK_OPTIONS)
def evaluate_model(
    ctx: RunContext,
    name: str,
    model: str | StageResult,
    dv: DataVersion,
    meta_rm: StageResult | None = None,
) -> StageResult:
    """Evaluate one GRM on the test split (stage ``eval.{name}``, ``build_eval``).

    Args:
        ctx: run context.
        name: model name in metric names (``teacher``, ``base``, ``rft``, ``rl``, ``champion``).
        model: ``"teacher"`` (the configured teacher), a stage result with a ``model`` output, or a local model dir.
        dv: the data version (the test split's md5 is part of the key).
        meta_rm: a stage result with a ``model`` output: adds MetaRM@k cells.
    """
    params: dict[str, Any]
    if isinstance(model, StageResult):
        params, upstream = {"target": "stage"}, model
    elif model == TEACHER:
        params, upstream = {"target": TEACHER}, None
    else:
        params, upstream = {"target": "folder", "model_dir": str(ctx.path(model))}, None
    ev = ctx.cfg.eval
    logger().info("evaluating %s on %s (limit %s, ks %s)", name, benchmark_name(ctx), ev.limit, ev.ks)
    inputs = {"model": upstream, "meta_rm": meta_rm, "test": split(ctx, dv, "test")}
    result = run_stage(ctx, EVAL, inputs, name=name, **params)
    assert result is not None
    return result


@task(name="eval.compare", cache_policy=NO_CACHE, **TASK_OPTIONS)
def compare(ctx: RunContext, evals: dict[str, StageResult]) -> dict[str, Any]:
    """The paper's orderings as paired gaps over the same test items (``grm.eval.report.results.claim_gaps``), logged on the
    pipeline run as ``eval/{benchmark}/{model}/gap_{a}_vs_{b}/{value,ci_low,ci_high}`` and
    ``eval/{benchmark}/{model_a}_vs_{model_b}/gap_{cell}/...`` plus ``eval/gaps.md``.

    Returns:
        ``{"metrics": {...}, "table": markdown}``.
    """
    import json

    from grm.eval.report.results import claim_gaps, gap_metrics, gaps_table

    credits: dict[str, dict[str, list[float]]] = {}
    ids: list[str] | None = None
    for name, result in evals.items():
        report = json.loads(result.output("report").read_text(encoding="utf-8"))
        rows = report["per_item"]
        item_ids = [r["id"] for r in rows]
        if ids is not None and item_ids != ids:
            raise ValueError(f"eval.{name}: its report covers other items than the first model's; rerun the evals")
        ids = item_ids
        cells = sorted({c for r in rows for c in r.get("credit", {})})
        credits[name] = {c: [r["credit"][c] for r in rows] for c in cells}
    gaps = claim_gaps(credits, ctx.cfg.eval.ks, seed=ctx.cfg.eval.seed)
    metrics = gap_metrics(gaps, benchmark_name(ctx))
    table = gaps_table(gaps)
    if ctx.parent_run_id:
        ctx.tracker.log_metrics(ctx.parent_run_id, metrics)
        ctx.tracker.log_text(ctx.parent_run_id, table + "\n", "eval/gaps.md")
    return {"metrics": metrics, "table": table}
