"""Evaluation stages: ``eval.{model}`` scores one GRM on the held-out test split (benchmark ``world`` or the data
source's name) with greedy + Voting@k (+ MetaRM@k when a meta RM is given) via ``grm.evaluation.evaluate``.

Metrics: ``eval/{benchmark}/{model}/{method}_k{k}/{metric}``; artifacts: ``eval/report.json``, the judgement table
``tables/judgements.json`` (``mlflow.log_table``) and ``figures/accuracy_vs_k.png``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm import evaluation, spct
from grm.files import write_json_atomic
from grm.schemas import read_items
from tasks.data import split_inputs, split_path
from tasks.runtime import TASK_OPTIONS, RunContext, logger, run_stage
from tasks.stages import StageResult, tree_md5
from tasks.versioning import DataVersion

TEACHER = "teacher"


def benchmark_name(ctx: RunContext) -> str:
    """``world`` for the embedded world, else the data folder's name."""
    return evaluation.heldout_benchmark(ctx.cfg.data.source)


def accuracy_figure(cells: dict[str, dict[str, float]], title: str):  # -> matplotlib Figure
    """Accuracy vs k for each method (greedy as a horizontal line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for method in ("voting", "metarm"):
        pts = sorted((int(c.split("_k")[1]), v["accuracy"]) for c, v in cells.items() if c.startswith(f"{method}_k"))
        if pts:
            ax.plot([k for k, _ in pts], [a for _, a in pts], marker="o", label=method)
    if "greedy_k1" in cells:
        ax.axhline(cells["greedy_k1"]["accuracy"], linestyle="--", color="grey", label="greedy")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@task(name="eval.model", task_run_name="eval.{name}", cache_policy=NO_CACHE, **TASK_OPTIONS)
def evaluate_model(
    ctx: RunContext,
    name: str,
    model: str | StageResult,
    dv: DataVersion,
    meta_rm: StageResult | None = None,
) -> StageResult:
    """Evaluate one GRM on the test split.

    Args:
        ctx: run context.
        name: model name in metric names (``teacher``, ``base``, ``rft``, ``rl``, ``champion``).
        model: ``"teacher"`` (the configured teacher), a stage result with a ``model`` output, or a local model dir.
        dv: the data version (test split hash is part of the key).
        meta_rm: a stage result with a ``model`` output: adds MetaRM@k cells.
    """
    ev = ctx.cfg.eval
    if isinstance(model, StageResult):
        model_dir: str | None = str(model.output("model"))
        model_key: Any = model
    elif model == TEACHER:
        model_dir, model_key = None, {"teacher": ctx.cfg.model.teacher, "world": ctx.cfg.world}
    else:
        model_dir, model_key = str(ctx.path(model)), tree_md5(ctx.path(model))
    bench_name = benchmark_name(ctx)

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        items = read_items(split_path(ctx, "test"))[: ev.limit] if ev.limit else read_items(split_path(ctx, "test"))
        if model_dir is None:
            sampler = spct.teacher_sampler(ctx.cfg.model, ctx.cfg.world, ctx.cfg.sampling, ctx.cfg.seed)
        else:
            sampler = spct.student_sampler(model_dir, ctx.cfg.sampling)
        meta_scorer = None
        if meta_rm is not None:
            from grm.meta_rm import load_meta_scorer

            meta_scorer = load_meta_scorer(meta_rm.output("model"))
        report = evaluation.evaluate(
            items,
            sampler,
            benchmark=bench_name,
            model_name=name,
            ks=ev.ks,
            methods=("voting", "metarm") if meta_scorer is not None else ("voting",),
            meta_scorer=meta_scorer,
            k_meta=ev.k_meta,
            temperature=ev.temperature,
            max_new_tokens=ctx.cfg.sampling.max_new_tokens,
            seed=ev.seed,
            template=ctx.cfg.sampling.template,
            tie_policy=ev.tie_policy,
            hygiene=ev.hygiene,
            seed_agreement=ev.seed_agreement,
        )
        write_json_atomic(out / "report.json", dataclasses.asdict(report))
        metrics = {k: float(v) for k, v in report.metrics().items() if v is not None}
        return {"report": "report.json"}, metrics, {"cells": report.cells, "n_items": report.n_items}

    def after(run_id: str, result: StageResult) -> None:
        import json

        report = json.loads(result.output("report").read_text(encoding="utf-8"))
        ctx.tracker.log_artifact(run_id, result.output("report"), "eval")
        rows = report["per_item"]
        if rows:
            columns = {
                c: [json.dumps(r.get(c)) if isinstance(r.get(c), list | dict) else r.get(c) for r in rows]
                for c in rows[0]
            }
            ctx.tracker.log_table(run_id, columns, "tables/judgements.json")
        if ctx.tracker.enabled:
            ctx.tracker.log_figure(
                run_id, accuracy_figure(report["cells"], f"{bench_name} / {name}"), "figures/accuracy_vs_k.png"
            )

    logger().info("evaluating %s on %s (limit %s, ks %s)", name, bench_name, ev.limit, ev.ks)
    return run_stage(
        ctx,
        f"eval.{name}",
        config={"eval": ev, "sampling": ctx.cfg.sampling, "seed": ctx.cfg.seed},
        inputs={"model": model_key, "meta_rm": meta_rm, **split_inputs(ctx, dv, "test")},
        build=build,
        after=after,
    )


@task(name="eval.compare", cache_policy=NO_CACHE, **TASK_OPTIONS)
def compare(ctx: RunContext, evals: dict[str, StageResult]) -> dict[str, Any]:
    """The paper's orderings as paired gaps over the same test items (``grm.report.claim_gaps``), logged on the
    pipeline run as ``eval/{benchmark}/{model}/gap_{a}_vs_{b}/{value,ci_low,ci_high}`` and
    ``eval/{benchmark}/{model_a}_vs_{model_b}/gap_{cell}/...`` plus ``eval/gaps.md``.

    Returns:
        ``{"metrics": {...}, "table": markdown}``.
    """
    import json

    from grm.report import claim_gaps, gap_metrics, gaps_table

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
