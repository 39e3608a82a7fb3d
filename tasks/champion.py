"""The champion on the challenger's items: ``eval.champion`` and the paired comparison the registry gate decides on.

When a champion exists and the gate metric is a held-out one (``eval/{world|heldout}/...``), the registered
champion is downloaded (``registry.resolve``: ``artifacts/models/{name}-v{N}``) and evaluated on this run's test
split with this run's protocol, as the ordinary keyed stage ``eval.champion`` (``tasks.evaluation.EVAL``): its model
folder is a file input keyed by content, the split by its DVC md5, the champion's linked meta RM (only for a
MetaRM gate cell) by content, so an unchanged champion on unchanged data is reused from the stage store. Its
stored metric is never reused across data versions.

Benchmark gate metrics (``eval/{benchmark}/...`` from ``bench.*`` stages) are not re-measured here: the benchmark
data is the same for every version, and the gate keeps comparing with the champion's stored value.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.gate import Comparison, paired_gate_gap, parse_gate_metric
from grm.pipeline_config import heldout_name
from tasks import evaluation, registry
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
    """Evaluate the registered champion on this run's test split (stage ``eval.champion``).

    Returns:
        The stage result; None (logged) without tracking, a trained GRM or a champion, for a benchmark gate metric,
        or when the champion is this run's own model (same stage keys and data: the gate records a no-op).
    """
    log = logger()
    reg = ctx.cfg.registry
    gate = parse_gate_metric(reg.gate_metric or "")
    if not ctx.tracker.enabled or grm_model is None:
        return None
    if gate is None or gate.benchmark != heldout_name(ctx.cfg):
        log.info(
            "eval.champion skipped: %s is not a held-out metric (compared with the stored value)", reg.gate_metric
        )
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
    if champion is None:
        return None
    gate = parse_gate_metric(ctx.cfg.registry.gate_metric or "")
    assert gate is not None  # evaluate_champion ran only for a held-out gate metric
    mine = next((e for e in evals if e.stage == f"eval.{gate.model}"), None)
    if mine is None:
        raise ValueError(f"registry.gate_metric={ctx.cfg.registry.gate_metric!r}: this run has no eval.{gate.model}")
    version = str(champion.info["champion_version"])
    test_md5 = dv.files.get("test.jsonl") if dv is not None else None
    champ_value = champion.metrics.get(gate.for_model(CHAMPION_EVAL))
    if gate.name != "accuracy":
        return Comparison(version, None, champ_value, test_md5)
    rows = [_rows(r) for r in (mine, champion)]
    paired = paired_gate_gap(rows[0], rows[1], gate.cell, seed=ctx.cfg.eval.seed)
    return Comparison(version, paired, champ_value, test_md5)


def _rows(result: StageResult) -> list[dict[str, Any]]:
    return json.loads(result.output("report").read_text(encoding="utf-8"))["per_item"]
