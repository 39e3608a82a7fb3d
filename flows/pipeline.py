"""``spct_pipeline``: prepare -> validate -> version -> base model -> rejective sampling -> RFT (+ variants) -> RL
-> meta RM -> evaluation (held-out split, then ``eval.benchmarks``; the champion on the same split) -> registry
gate. Composition only: each line is one task (adding a stage is a few lines here).

The critical path (``rft.train`` -> ``rl.train`` -> ``meta_rm.train`` -> evaluations) runs in the flow's thread;
what does not feed it is submitted (``.submit()``) and runs beside it: RFT's variants beside ``rl.train`` and
``meta_rm.train``, the evaluations and benchmark stages beside each other. How many builds run at once is
``runtime.parallel_stages`` (``tasks.engine.workers``); with 1 the same calls run one at a time. Which stage runs when never
changes a stage's key or result.
"""

from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from grm.ablations import model_name as ablation_model
from tasks import benchmarks, champion, evaluation, registry, summary, training
from tasks import data as data_stages  # ``data`` is the flow's parameter
from tasks.engine.runtime import pipeline_run


@flow(name="spct_pipeline", log_prints=False, task_runner=ThreadPoolTaskRunner(max_workers=32))  # see log_prints
def spct_pipeline(
    config_path: str | None = None,
    overrides: list[str] | None = None,
    project_dir: str = ".",
    data: str | None = None,
    window: str | None = None,
) -> dict:
    """The whole SPCT recipe on one config; completed stages are reused on a rerun (``tasks.engine.stages``).

    ``data`` is the data to train on (a landing folder of drops or a folder of splits, relative to ``project_dir``;
    None keeps the config's ``data.source``) and ``window`` which drops (``all``, ``last:N``, ``since:YYYY-MM-DD``;
    None keeps ``data.window``): the deployment's parameters, applied as the overrides ``data.source=``/``data.window=``
    (docs/data.md). (``log_prints=True`` would log dill/dis output that datasets prints while hashing.)

    Returns:
        ``{"run_id", "run_name", "stages": {stage: {"key", "cached"}}, "metrics", "gaps_table", "registry"}``.
    """
    overrides = [*(overrides or []), *data_stages.source_overrides(data, window)]
    with pipeline_run("spct_pipeline", config_path, overrides, project_dir) as ctx:
        prepared = data_stages.prepare(ctx)
        validated = data_stages.validate(ctx, prepared)  # a failing suite stops here, before any training
        dv = data_stages.version(ctx, prepared, validated)
        base = training.base_model(ctx)
        samples = training.rft_sample(ctx, dv)
        rft_model = training.rft_train(ctx, base, samples)  # first, alone: every other model stage waits for it
        unfiltered = training.sft_unfiltered_train.submit(ctx, base, samples)  # ours: SFT on unfiltered samples
        ablations = {
            ablation_model(a): training.rft_ablation_train.submit(ctx, a, base, samples) for a in ctx.cfg.rft.ablations
        }
        rl_model = training.rl_train(ctx, rft_model, dv)  # beside the variants
        final = rl_model or rft_model
        meta = training.meta_rm_train(ctx, samples, final, dv, base)
        trained = (("rft", rft_model), ("rl", rl_model))
        bench_runs = [benchmarks.benchmark_model.submit(ctx, b, name, m, meta) for b in ctx.cfg.eval.benchmarks
                      for name, m in trained if m]  # fmt: skip
        eval_runs = {name: evaluation.evaluate_model.submit(ctx, name, m, dv, meta)
                     for name, m in (("teacher", "teacher"), ("rft", rft_model), ("rl", rl_model)) if m}  # fmt: skip
        champ = champion.evaluate_champion.submit(ctx, final, meta, dv)  # the champion on this run's test items
        unfiltered, ablations = unfiltered.result(), {n: f.result() for n, f in ablations.items()}  # None: skipped
        variants = {"sft_unfiltered": unfiltered, **ablations}
        eval_runs |= {name: evaluation.evaluate_model.submit(ctx, name, m, dv, meta) for name, m in variants.items()
                      if m}  # fmt: skip
        order = ("teacher", *variants, "rft", "rl")  # the rows' order in the tables
        evals = {name: eval_runs[name].result() for name in order if name in eval_runs}
        gaps = evaluation.compare(ctx, evals)  # the paper's orderings as paired gaps with intervals
        benched = [r for r in (f.result() for f in bench_runs) if r is not None]
        champ = champ.result()  # None: no champion, a benchmark gate metric, or this run's model is the champion
        decision = registry.gate(ctx, final, meta, [*evals.values(), *benched], dv, champ)  # any metric can gate
        done = [prepared, validated, base, samples, rft_model, unfiltered, *ablations.values(), rl_model, meta,
                *evals.values(), *benched, champ]  # fmt: skip
        metrics = {k: v for s in done if s is not None for k, v in s.metrics.items()} | gaps["metrics"]
        summary.publish_results(ctx, metrics, gaps["table"], done, decision)  # MLflow description, Prefect artifact
    return {
        "run_id": ctx.parent_run_id,
        "run_name": ctx.run_name,
        "stages": {s.stage: {"key": s.key, "cached": s.cached} for s in done if s is not None},
        "metrics": metrics,
        "gaps_table": gaps["table"],
        "registry": decision,
    }
