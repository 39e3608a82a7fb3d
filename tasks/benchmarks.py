"""Benchmark stages: ``bench.{benchmark}.{model}`` scores a trained GRM (``rft``, ``rl``; MetaRM@k with the run's
meta RM) on one registered real benchmark of ``eval.benchmarks``, read from its local copy under ``eval.benchdata``
(keyed by content), with the code ``grm eval`` runs: ``grm.benchmarks.load_benchmark`` (``eval.benchmark_limit``
items, spread over subsets) then ``grm.eval.run.evaluate``.

Before sampling, every item's prompt is fitted into the model's context (``grm.context_fit``: cut to fit, or
refused), counted in ``eval/{benchmark}/{model}/context/{n_fit,n_truncated,n_refused}``. On the embedded tiny model
(128 positions, a world vocabulary) English benchmark text is cut and mostly ``<unk>``: the numbers are a protocol
check (the path runs end to end), not a measure of quality. Metrics: ``eval/{benchmark}/{model}/{cell}/{metric}``
(what ``grm.plan.benchmark_metric_prefixes`` accepts as a gate); artifacts: ``eval/report.json`` and
``eval/report.md`` on the stage run, the markdown table on the pipeline run (``eval/benchmarks/``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm import context_fit
from grm.benchmarks import bundled, get_benchmark, load_benchmark
from grm.config import PipelineConfig
from grm.eval.metric_key import CONTEXT, MetricKey
from grm.eval.spec import EvalReport
from grm.files import write_json_atomic
from grm.training import spct
from tasks.engine.runtime import TASK_OPTIONS, RunContext, logger, run_stage
from tasks.engine.stages import BuildContext, FileInput, Skip, Stage, StageOutput, StageResult, register
from tasks.evaluation import Protocol, evaluate_with, select_protocol

BENCH_MODELS = ("rft", "rl")  # the trained GRMs evaluated on eval.benchmarks
LOCAL_CONSTANTS = ("LOCAL_FILE", "LOCAL_DIR", "LOCAL_ZIP")


def local_folder(benchmark: str) -> str | None:
    """The top folder of ``benchmark``'s local copy inside the benchdata root (``rmb`` for ``rmb/RMB_dataset``),
    read from its converter module's ``LOCAL_FILE``/``LOCAL_DIR``/``LOCAL_ZIP``; None: unknown (the whole root is
    then keyed, which is coarse but never stale).

    Example:
        >>> local_folder("rewardbench"), local_folder("gsm8k-pairs")
        ('rewardbench', 'gsm8k')
    """
    spec = get_benchmark(benchmark)
    module = sys.modules.get(getattr(spec.local_shards, "__module__", ""), None)
    for name in LOCAL_CONSTANTS:
        value = getattr(module, name, None)
        if value is not None:
            return Path(value).parts[0]
    return None


@dataclass(frozen=True)
class BenchSlice:
    """``bench.{benchmark}.{model}``: the benchmark, its item limit and local folder, the evaluated model's metric
    name, and the evaluation protocol the held-out evaluation also reads."""

    benchmark: str
    model_name: str
    limit: int | None
    local: str | None  # the benchmark's folder under eval.benchdata (None: the whole root)
    protocol: Protocol


def select_bench(cfg: PipelineConfig, benchmark: str, model: str) -> BenchSlice | Skip:
    if benchmark not in cfg.eval.benchmarks:
        return Skip(f"eval.benchmarks={list(cfg.eval.benchmarks)} does not list {benchmark!r}")
    if model not in (*BENCH_MODELS, "champion"):  # champion: the registered one, for the gate (tasks.champion)
        raise ValueError(f"bench.{benchmark}.{model}: benchmarks evaluate the trained GRMs {BENCH_MODELS} only")
    return BenchSlice(benchmark, model, cfg.eval.benchmark_limit, local_folder(benchmark), select_protocol(cfg))


def bench_files(cfg: PipelineConfig, benchmark: str, model: str) -> dict[str, FileInput]:
    if benchmark not in cfg.eval.benchmarks:
        return {}
    local = local_folder(benchmark)
    root = bundled.bundled_root() if cfg.eval.benchdata is None else Path(cfg.eval.benchdata)  # else: project-relative
    path = root / local if local else root
    fix = bundled.missing_hint(benchmark, root) or (
        f"copy the {benchmark} benchmark there (docs/benchdata.md) or drop it from eval.benchmarks"
    )
    return {"benchdata": FileInput(str(path), "eval.benchdata", required=True, fix=fix)}


def build_bench(s: BenchSlice, b: BuildContext) -> StageOutput:
    """Load the benchmark's items, fit them into the model's context (counted), evaluate like ``grm eval``."""
    root = b.files["benchdata"]
    assert root is not None
    if s.local is not None:
        root = root.parent
    skipped: list[str] = []
    items = load_benchmark(s.benchmark, root, limit=s.limit, progress=False, skipped=skipped)
    model_dir = str(b.inputs["model"].output("model"))
    n_tokens, context = context_fit.model_token_counter(model_dir, s.protocol.sampling.chat_template)
    budget = None if context is None else context - s.protocol.sampling.max_new_tokens
    fit = context_fit.fit_items(items, n_tokens, budget, s.protocol.sampling.template)
    counts = fit.counts() | {"n_loaded": float(len(items)), "n_skipped_rows": float(len(skipped))}
    metrics = {str(MetricKey.of(s.benchmark, s.model_name, CONTEXT, k)): v for k, v in counts.items()}
    prefix = str(MetricKey.of(s.benchmark, s.model_name, CONTEXT, "")).removesuffix("/context/")
    info: dict[str, Any] = {"truncated": fit.truncated, "refused": fit.refused, "skipped_rows": skipped[:20]}
    if fit.refused:
        logger().warning(
            "bench.%s.%s: %d of %d items do not fit the model's context (%s positions, %d new tokens) even cut to "
            "one word per text; refused (counted in %s/context/n_refused)",
            s.benchmark, s.model_name, len(fit.refused), len(items), context, s.protocol.sampling.max_new_tokens, prefix,
        )  # fmt: skip
    report = None
    if fit.items:
        sampler = spct.student_sampler(model_dir, s.protocol.sampling)
        report = evaluate_with(s.protocol, s.benchmark, s.model_name, fit.items, sampler, b.inputs["meta_rm"])
        metrics |= {k: float(v) for k, v in report.metrics().items() if v is not None}
        info |= {"cells": report.cells, "n_items": report.n_items}
    write_json_atomic(
        b.out / "report.json", {"report": dataclasses.asdict(report) if report else None, "fit": info} | fit.counts()
    )
    return StageOutput({"report": "report.json"}, metrics, info)


def report_markdown(result: StageResult) -> str:
    """The ``grm eval`` table of a bench stage's report, headed by its context-fit counts."""
    from grm.eval.report.benchmark import markdown_table

    data = json.loads(result.output("report").read_text(encoding="utf-8"))
    head = (
        f"context fit: {int(data['n_fit'])} items evaluated, {int(data['n_truncated'])} cut to fit, "
        f"{int(data['n_refused'])} refused (prompt budget {int(data['prompt_budget'])} tokens)\n\n"
    )
    if data["report"] is None:
        return head + "no item fits the model's context: nothing evaluated\n"
    return head + markdown_table(EvalReport(**data["report"])) + "\n"


def after_bench(s: BenchSlice, tracker: Any, run_id: str, result: StageResult) -> None:
    tracker.log_artifact(run_id, result.output("report"), "eval")
    tracker.log_text(run_id, report_markdown(result), "eval/report.md")


def _bench_examples(tmp: Path) -> list[dict[str, Any]]:
    """Parameter sets of the generated key test: each default benchmark (read from the shipped copy, the default
    ``eval.benchdata``) with each trained GRM."""
    names = PipelineConfig().eval.benchmarks
    return [{"benchmark": name, "model": model} for name in names[:2] for model in BENCH_MODELS]


BENCH = register(
    Stage(
        "bench.{benchmark}.{model}", select_bench, build_bench, inputs=("model", "meta_rm"), files=bench_files,
        after=after_bench, examples=_bench_examples, process=True,
    )
)  # fmt: skip


@task(name="bench.model", task_run_name="bench.{benchmark}.{model_name}", cache_policy=NO_CACHE, **TASK_OPTIONS)
def benchmark_model(
    ctx: RunContext, benchmark: str, model_name: str, model: StageResult, meta_rm: StageResult | None = None
) -> StageResult | None:
    """Evaluate one trained GRM on one benchmark of ``eval.benchmarks`` (stage ``bench.{benchmark}.{model}``); its
    report table goes on the pipeline run too (``eval/benchmarks/{benchmark}_{model}.md``)."""
    ev = ctx.cfg.eval
    logger().info("benchmark %s: %s (limit %s, ks %s)", benchmark, model_name, ev.benchmark_limit, ev.ks)
    result = run_stage(ctx, BENCH, {"model": model, "meta_rm": meta_rm}, benchmark=benchmark, model=model_name)
    if result is not None and ctx.parent_run_id:
        ctx.tracker.log_text(
            ctx.parent_run_id, report_markdown(result), f"eval/benchmarks/{benchmark}_{model_name}.md"
        )
    return result
