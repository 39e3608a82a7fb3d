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
import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.evaluation import metric_name
from grm.gate import Comparison, GateMetric, paired_gate_gap, parse_gate_metric
from grm.pipeline_config import PipelineConfig, heldout_name
from tasks import benchmarks, evaluation, registry
from tasks.runtime import TASK_OPTIONS, RunContext, logger
from tasks.stages import StageResult, content_hash
from tasks.tracking import CHAMPION
from tasks.versioning import DataVersion

CHAMPION_EVAL = "champion"  # eval.champion; metrics eval/{benchmark}/champion/...


def identity(grm_model: StageResult, meta_rm: StageResult | None, dv: DataVersion | None) -> dict[str, str]:
    """What makes a run's final model what it is: its stage keys and data version (tags of its registry version).

    Equal identities mean the same data version, config and code (every stage key hashes its config slice, its
    inputs' keys and the code version), hence the same weights: a run with a registered identity is a no-op.
    """
    out = {"grm.stage_key.grm": grm_model.key, "grm.stage_key.meta_rm": meta_rm.key if meta_rm else "none"}
    if dv is not None:
        out["grm.data.dvc_md5"] = dv.dvc_md5
        if "test.jsonl" in dv.files:
            out["grm.data.md5.test"] = dv.files["test.jsonl"]
    return out


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
    if gate.cell.startswith("metarm_"):  # a MetaRM cell: the champion with its own meta RM
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


def comparison(
    ctx: RunContext, evals: list[StageResult], champion: StageResult | None, dv: DataVersion | None
) -> Comparison | None:
    """The paired gap challenger - champion on the gate metric's cell over the same items (None: no champion eval).

    The challenger is the evaluated model the gate metric names (``eval.{model}``); per-item credits come from each
    eval stage's ``report.json`` (``per_item[*].credit``), as ``eval.compare`` reads them. A gate metric without
    per-item credit (not ``accuracy``) is compared by the champion's value on the same split, unpaired.
    """
    gate = parse_gate_metric(ctx.cfg.registry.gate_metric or "")
    bench = gate_benchmark(ctx.cfg, gate) if gate is not None else None
    if champion is None:
        measurable = gate is not None and (gate.benchmark == heldout_name(ctx.cfg) or bench is not None)
        if measurable and dv is not None and ctx.tracker.enabled:  # measured: no champion (or this very model)
            return Comparison("", None, None, dv.files.get("test.jsonl"))
        return None
    assert gate is not None  # evaluate_champion ran only for an evaluation metric
    stage = f"bench.{bench}.{gate.model}" if bench is not None else f"eval.{gate.model}"
    mine = next((e for e in evals if e.stage == stage), None)
    if mine is None:
        raise ValueError(f"registry.gate_metric={ctx.cfg.registry.gate_metric!r}: this run has no stage {stage}")
    version = str(champion.info["champion_version"])
    test_md5 = dv.files.get("test.jsonl") if dv is not None else None
    champ_value = champion.metrics.get(gate.for_model(CHAMPION_EVAL))
    if gate.name != "accuracy":
        return Comparison(version, None, champ_value, test_md5)
    rows = [_rows(r) for r in (mine, champion)]
    if bench is not None:  # the items both fitted into their context, in the challenger's order
        common = {r["id"] for r in rows[1]}
        theirs = {r["id"]: r for r in rows[1]}
        rows = [[r for r in rows[0] if r["id"] in common], [theirs[r["id"]] for r in rows[0] if r["id"] in common]]
    paired = paired_gate_gap(rows[0], rows[1], gate.cell, seed=ctx.cfg.eval.seed)
    return Comparison(version, paired, champ_value, test_md5)


def gate_benchmark(cfg: PipelineConfig, gate: GateMetric | None) -> str | None:
    """The ``eval.benchmarks`` entry a gate metric names (its metric segment), or None."""
    if gate is None:
        return None
    return next((b for b in cfg.eval.benchmarks if metric_name(b) == gate.benchmark), None)


def _rows(result: StageResult) -> list[dict[str, Any]]:
    """An eval or bench stage's per-item rows (a bench report nests the eval report; None: nothing fitted)."""
    data = json.loads(result.output("report").read_text(encoding="utf-8"))
    if "per_item" in data:
        return data["per_item"]
    return (data.get("report") or {}).get("per_item", [])
