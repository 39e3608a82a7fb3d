"""What the registry gate decides on, read from a run's stage results: the final model's identity (no-op runs) and
the paired comparison challenger - champion over the same items (``tasks.champion`` evaluates the champion;
``tasks.registry.gate`` reads both from here, so neither imports the other)."""

from __future__ import annotations

import json
from typing import Any

from grm.config import PipelineConfig
from grm.eval.gate import Comparison, paired_gate_gap, parse_gate_metric
from grm.eval.metric_key import MetricKey, metric_name
from grm.plan import heldout_name
from tasks.engine.runtime import RunContext
from tasks.engine.stages import StageResult
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
    champ_value = champion.metrics.get(str(gate.for_model(CHAMPION_EVAL)))
    if gate.name != "accuracy":
        return Comparison(version, None, champ_value, test_md5)
    rows = [_rows(r) for r in (mine, champion)]
    if bench is not None:  # the items both fitted into their context, in the challenger's order
        common = {r["id"] for r in rows[1]}
        theirs = {r["id"]: r for r in rows[1]}
        rows = [[r for r in rows[0] if r["id"] in common], [theirs[r["id"]] for r in rows[0] if r["id"] in common]]
    paired = paired_gate_gap(rows[0], rows[1], gate.cell, seed=ctx.cfg.eval.seed)
    return Comparison(version, paired, champ_value, test_md5)


def gate_benchmark(cfg: PipelineConfig, gate: MetricKey | None) -> str | None:
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
