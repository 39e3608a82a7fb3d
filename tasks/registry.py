"""Registry stages: ``registry.gate`` (register + champion gate) and ``registry.resolve`` (a model spec -> dir)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.sampling.spec import REGISTRY, parse_model_spec, spec_kind
from tasks import model_fetch
from tasks.engine import timings
from tasks.engine.runtime import TASK_OPTIONS, RunContext, logger
from tasks.engine.stages import StageResult


@task(name="registry.gate", cache_policy=NO_CACHE, **TASK_OPTIONS)
def gate(
    ctx: RunContext,
    grm_model: StageResult | None,
    meta_rm: StageResult | None,
    evals: list[StageResult],
    dv: Any = None,
    champion: StageResult | None = None,
) -> dict[str, Any] | None:
    """Register the final GRM (and meta RM) and decide its alias (``grm.eval.gate.decide_alias``).

    The gate metric is decided on the paired gap over the same items against ``champion`` (the champion evaluated
    on this run's test split or benchmark items: ``tasks.champion.evaluate_champion``): ``champion`` moves only when
    the gap's 95% interval lower end is above ``registry.margin``. A run whose final GRM/meta-RM stage keys and
    data version (``dv``, a ``DataVersion``) equal a registered version's registers nothing (decision ``noop``, the
    earlier run linked). A promotion a killed run left half done is completed or rolled back first. Skipped without a trained GRM."""
    from tasks import gate_inputs

    log = logger()
    if grm_model is None:
        log.warning("registry.gate skipped: no trained GRM in this run (training slots not wired)")
        return None
    metrics = {k: v for e in evals for k, v in e.metrics.items()}
    compared = gate_inputs.comparison(ctx, evals, champion, dv)
    same = gate_inputs.identity(grm_model, meta_rm, dv)
    with ctx.tracker.registry_lock():  # two runs of one project gate one after the other
        return _gate(ctx, grm_model, meta_rm, metrics, compared, same)


def _gate(
    ctx: RunContext,
    grm_model: StageResult,
    meta_rm: StageResult | None,
    metrics: dict[str, float],
    compared: Any = None,
    same: dict[str, str] | None = None,
) -> dict[str, Any]:
    log = logger()
    with timings.LEDGER.measure("registry.gate", "tracking"):
        decision = ctx.tracker.promote(
            ctx.parent_run_id,
            grm_model.output("model"),
            metrics,
            ctx.cfg.registry,
            meta_rm_dir=meta_rm.output("model") if meta_rm is not None else None,
            comparison=compared,
            identity=same,
        )
    if decision.get("noop"):
        log.info("registry: %s", decision["reason"])
        return decision
    if ctx.cfg.registry.pyfunc_model_name:
        with timings.LEDGER.measure("registry.gate", "tracking"):
            from grm.integrations.mlflow import log_grm_model

            log_grm_model(
                grm_model.output("model"),
                meta_rm_dir=meta_rm.output("model") if meta_rm is not None else None,
                run_id=ctx.parent_run_id,
                template=ctx.cfg.sampling.template,
                registered_model_name=ctx.cfg.registry.pyfunc_model_name,
                alias=decision["alias"],
                tracking_uri=ctx.tracker.uri,
            )
        decision["pyfunc"] = f"models:/{ctx.cfg.registry.pyfunc_model_name}@{decision['alias']}"
    for repair in decision.get("repairs", []):
        log.warning("registry repair: %s", repair)
    log.info(
        "registry: %s v%s -> %s (%s)", decision["model"], decision["version"], decision["alias"], decision["reason"]
    )
    return decision


@task(name="registry.resolve", cache_policy=NO_CACHE, **TASK_OPTIONS)
def resolve_model(ctx: RunContext, model: str) -> str:
    """``teacher`` stays as is; ``champion``/``challenger`` or ``models:/name@alias`` are downloaded from the
    registry into ``artifacts/models/`` (read after ``repair_promotions``, under the registry lock:
    ``tasks.model_fetch``, the path ``grm serve/score/eval`` take too); anything else is a local model folder."""
    if model == "teacher":
        return model
    if spec_kind(model) != REGISTRY:
        return model
    spec = parse_model_spec(model, field_name="model")
    with timings.LEDGER.measure("registry.resolve", "tracking"):
        dest = Path(ctx.store_root).parent / "models"
        fetched = model_fetch.fetch_registered(ctx.tracker, ctx.cfg.registry, spec, dest, warn=logger().warning)
    if fetched is None:
        raise LookupError(
            f"{model}: no such registered model/alias in {ctx.tracker.uri}; run spct_pipeline first or pass a "
            "model folder (model=PATH) or model=teacher"
        )
    logger().info("model %s -> %s", model, fetched[0])
    return fetched[0]
