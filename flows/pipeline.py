"""``spct_pipeline``: prepare -> validate -> version -> base model -> rejective sampling -> RFT (+ variants) -> RL
-> meta RM -> evaluation (held-out split, then ``eval.benchmarks``) -> registry gate. Composition only: each line is
one task (adding a stage is a few lines here)."""

from __future__ import annotations

from prefect import flow

from grm.ablations import model_name as ablation_model
from tasks import benchmarks, data, evaluation, registry, training
from tasks.runtime import pipeline_run


@flow(name="spct_pipeline", log_prints=False)  # True would log dill/dis output that datasets prints while hashing
def spct_pipeline(config_path: str | None = None, overrides: list[str] | None = None, project_dir: str = ".") -> dict:
    """The whole SPCT recipe on one config; completed stages are reused on a rerun (``tasks.stages``).

    Returns:
        ``{"run_id", "stages": {stage: {"key", "cached"}}, "metrics", "gaps_table", "registry"}``.
    """
    with pipeline_run("spct_pipeline", config_path, overrides, project_dir) as ctx:
        prepared = data.prepare(ctx)
        validated = data.validate(ctx, prepared)  # a failing suite stops here, before any training
        dv = data.version(ctx, prepared, validated)
        base = training.base_model(ctx)
        samples = training.rft_sample(ctx, dv)
        rft_model = training.rft_train(ctx, base, samples)
        unfiltered = training.sft_unfiltered_train(ctx, base, samples)  # ours: SFT on unfiltered teacher samples
        ablations = {
            ablation_model(a): training.rft_ablation_train(ctx, a, base, samples) for a in ctx.cfg.rft.ablations
        }
        rl_model = training.rl_train(ctx, rft_model, dv)
        final = rl_model or rft_model
        meta = training.meta_rm_train(ctx, samples, final, dv)
        models = (("teacher", "teacher"), ("sft_unfiltered", unfiltered), *ablations.items(), ("rft", rft_model),
                  ("rl", rl_model))  # fmt: skip
        evals = {name: evaluation.evaluate_model(ctx, name, m, dv, meta) for name, m in models if m}
        gaps = evaluation.compare(ctx, evals)  # the paper's orderings as paired gaps with intervals
        trained = (("rft", rft_model), ("rl", rl_model))
        benched = [benchmarks.benchmark_model(ctx, b, name, m, meta) for b in ctx.cfg.eval.benchmarks
                   for name, m in trained if m]  # fmt: skip
        benched = [r for r in benched if r is not None]
        decision = registry.gate(ctx, final, meta, [*evals.values(), *benched])  # any of their metrics can gate
        done = [prepared, validated, base, samples, rft_model, unfiltered, *ablations.values(), rl_model, meta,
                *evals.values(), *benched]  # fmt: skip
    return {
        "run_id": ctx.parent_run_id,
        "stages": {s.stage: {"key": s.key, "cached": s.cached} for s in done if s is not None},
        "metrics": {k: v for s in done if s is not None for k, v in s.metrics.items()} | gaps["metrics"],
        "gaps_table": gaps["table"],
        "registry": decision,
    }
