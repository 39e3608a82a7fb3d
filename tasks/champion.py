"""The champion on the challenger's items: ``eval.champion`` and the paired comparison the registry gate decides on.

When a champion exists and the gate metric is a held-out one (``eval/{world|heldout}/...``), the registered
champion is downloaded (``registry.resolve``: ``artifacts/models/{name}-v{N}``) and evaluated on this run's test
split with this run's protocol, as the ordinary keyed stage ``eval.champion`` (``tasks.evaluation.EVAL``): its model
folder is a file input keyed by content, the split by its DVC md5, the champion's linked meta RM (only for a
MetaRM gate cell) by content, so an unchanged champion on unchanged data is reused from the stage store. Its
stored metric is never reused across data versions.

A benchmark gate metric (``eval/{benchmark}/...`` of a ``bench.*`` stage) gets the same treatment: the champion is
evaluated on the same benchmark items as stage ``bench.{benchmark}.champion`` and the gap is paired over the items
both evaluated (the context fit may refuse different items for another tokenizer).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.eval.gate import parse_gate_metric
from grm.eval.metric_key import METARM
from grm.plan import heldout_name
from tasks import benchmarks, evaluation, registry
from tasks.engine.runtime import TASK_OPTIONS, RunContext, logger
from tasks.engine.stages import StageResult, content_hash
from tasks.gate_inputs import CHAMPION_EVAL, gate_benchmark, identity
from tasks.tracking import CHAMPION
from tasks.versioning import DataVersion


def folder_result(stage: str, path: str | Path) -> StageResult:
    """A downloaded model folder as an upstream input keyed by its content (``tree_md5``), with output ``model``."""
    return StageResult(stage, content_hash(Path(path)).replace(":", "-"), str(path), {"model": "."}, cached=True)


@task(name="eval.champion", cache_policy=NO_CACHE, **TASK_OPTIONS)
def evaluate_champion(
    ctx: RunContext, grm_model: StageResult | None, meta_rm: StageResult | None, dv: DataVersion
) -> StageResult | None:
    """Evaluate the registered champion on this run's test split (stage ``eval.champion``), or for a benchmark gate
    metric on the same benchmark items (stage ``bench.{benchmark}.champion``).

    Returns:
        The stage result; None (logged) without tracking, a trained GRM or a champion, for a gate metric that is no
        evaluation cell, or when the champion is this run's own model (same stage keys and data: a no-op).
    """
    log = logger()
    reg = ctx.cfg.registry
    gate = parse_gate_metric(reg.gate_metric or "")
    if not ctx.tracker.enabled or grm_model is None:
        return None
    bench = gate_benchmark(ctx.cfg, gate)
    if gate is None or (gate.benchmark != heldout_name(ctx.cfg) and bench is None):
        log.info("eval.champion skipped: %s is no evaluation metric (compared with the stored value)", reg.gate_metric)
        return None
    with ctx.tracker.registry_lock():
        for repair in ctx.tracker.repair_promotions(reg):
            log.warning("registry repair: %s", repair)
        champ = ctx.tracker.alias_version(reg.model_name, CHAMPION)
    if champ is None:
        log.info("eval.champion skipped: no champion yet")
        return None
    mine = identity(grm_model, meta_rm, dv)
    if all((champ.tags or {}).get(k) == v for k, v in mine.items()):
        log.info("eval.champion skipped: the champion v%s is this run's own model (no-op)", champ.version)
        return None
    model_dir = registry.resolve_model.fn(ctx, CHAMPION)
    if Path(model_dir).name != f"{reg.model_name}-v{champ.version}":
        raise RuntimeError(f"the champion moved from v{champ.version} while downloading it ({model_dir}); rerun")
    champ_meta = None
    if (
        cell := gate.parsed_cell
    ) is not None and cell.method == METARM:  # a MetaRM cell: the champion with its own meta RM
        meta_dir = registry.resolve_model.fn(ctx, f"models:/{reg.meta_model_name}@{CHAMPION}")
        champ_meta = folder_result("registry.meta_rm", meta_dir)
    if bench is not None:  # the champion on the same benchmark items
        log.info("evaluating champion v%s (%s) on benchmark %s", champ.version, model_dir, bench)
        folder = folder_result("registry.grm", model_dir)
        result = benchmarks.benchmark_model.fn(ctx, bench, CHAMPION_EVAL, folder, champ_meta)
        assert result is not None  # bench is one of eval.benchmarks
    else:
        log.info("evaluating champion v%s (%s) on this run's test split", champ.version, model_dir)
        result = evaluation.evaluate_model.fn(ctx, CHAMPION_EVAL, model_dir, dv, champ_meta)
    return dataclasses.replace(result, info={**result.info, "champion_version": str(champ.version)})
