"""The registry gate's decision (``grm.eval.gate``) and the comparison the flow feeds it (``tasks.champion``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from grm.eval.gate import Comparison, PairedGap, decide_alias, paired_gate_gap, parse_gate_metric
from tasks import gate_inputs, tracking
from tasks.engine.stages import StageResult


def rows(credits: list[float], cell: str = "voting_k4", ids: list[str] | None = None) -> list[dict]:
    return [
        {"id": i, "credit": {cell: c}}
        for i, c in zip(ids or [str(n) for n in range(len(credits))], credits, strict=True)
    ]


@pytest.mark.parametrize(
    ("gap", "margin", "alias"),
    [
        (PairedGap(0.10, 0.03, 0.17, 40), 0.0, "champion"),  # the whole interval above the margin
        (PairedGap(0.10, -0.01, 0.2, 40), 0.0, "challenger"),  # a positive gap inside the noise
        (PairedGap(0.10, 0.03, 0.17, 40), 0.05, "challenger"),  # clears 0 but not the margin
        (PairedGap(0.0, 0.0, 0.0, 40), 0.0, "challenger"),  # the same credits: a tie never promotes
        (PairedGap(float("nan"), float("nan"), float("nan"), 0), 0.0, "challenger"),  # no items
    ],
)
def test_a_paired_gate_promotes_only_when_the_intervals_lower_end_clears_the_margin(gap, margin, alias) -> None:
    assert decide_alias(0.5, 0.5, margin, "3", "m", paired=gap)[0] == alias


def test_a_higher_raw_score_than_the_stored_one_does_not_promote_a_model_worse_on_the_same_items() -> None:
    # raw 0.90 on its own (easy) split against a stored 0.20 from an old (hard) one: the paired gap decides
    alias, reason = decide_alias(0.90, 0.20, 0.0, "3", "m", paired=PairedGap(-0.25, -0.4, -0.1, 40))
    assert alias == "challenger"
    assert "does not beat champion v3 on the same 40 test items" in reason and "[-0.4000, -0.1000]" in reason


def test_without_a_paired_gap_the_stored_values_decide_as_before() -> None:
    assert decide_alias(0.5, None, 0.0)[0] == "champion"  # no champion yet
    assert decide_alias(0.71, 0.70, 0.0, "3")[0] == "champion"
    assert decide_alias(0.70, 0.70, 0.0, "3")[0] == "challenger"
    assert decide_alias(0.71, 0.70, 0.02, "3")[0] == "challenger"
    assert "has no value of eval/x" in decide_alias(0.99, None, 0.0, "3", "eval/x")[1]  # benchmark metrics only
    assert tracking.decide_alias is decide_alias  # re-exported where the tracker uses it


def test_the_paired_gap_needs_the_same_items_and_the_cell() -> None:
    g = paired_gate_gap(rows([1, 1, 0, 1]), rows([1, 0, 0, 0]), "voting_k4")
    assert (g.gap, g.n_items) == (0.5, 4) and g.ci_low <= g.gap <= g.ci_high
    with pytest.raises(ValueError, match="cover other items"):
        paired_gate_gap(rows([1, 1]), rows([1, 1], ids=["a", "b"]), "voting_k4")
    with pytest.raises(ValueError, match="no per-item credit of cell 'metarm_k4'"):
        paired_gate_gap(rows([1]), rows([1]), "metarm_k4")


def test_gate_metric_parts() -> None:
    gate = parse_gate_metric("eval/heldout/rl/metarm_k8/accuracy")
    assert gate is not None and (gate.benchmark, gate.model, gate.cell) == ("heldout", "rl", "metarm_k8")
    assert str(gate.for_model("champion")) == "eval/heldout/champion/metarm_k8/accuracy"
    assert parse_gate_metric("bench/x") is None


def eval_result(tmp: Path, name: str, credits: list[float], metrics: dict[str, float], info: dict | None = None):
    folder = tmp / name
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"per_item": rows(credits)}))
    return StageResult(f"eval.{name}", name, str(folder), {"report": "report.json"}, metrics, info or {})


def test_the_comparison_pairs_the_gate_cell_of_the_named_model_with_the_champion(tmp_path: Path) -> None:
    metric = "eval/world/rl/voting_k4/accuracy"
    cfg = SimpleNamespace(
        registry=SimpleNamespace(gate_metric=metric),
        eval=SimpleNamespace(seed=0, benchmarks=()),
        data=SimpleNamespace(source="world"),
    )
    ctx = SimpleNamespace(cfg=cfg, tracker=SimpleNamespace(enabled=True))
    rl = eval_result(tmp_path, "rl", [1, 1, 1, 1], {metric: 1.0})
    rft = eval_result(tmp_path, "rft", [0, 0, 0, 0], {})
    champ = eval_result(
        tmp_path, "champion", [1, 0, 1, 0], {"eval/world/champion/voting_k4/accuracy": 0.5}, {"champion_version": 2}
    )
    dv = SimpleNamespace(files={"test.jsonl": "t" * 32}, dvc_md5="d.dir")
    got = gate_inputs.comparison(ctx, [rft, rl], champ, dv)
    assert got is not None and got.paired is not None
    assert (got.champion_version, got.champion_value, got.test_md5) == ("2", 0.5, "t" * 32)
    assert got.paired.gap == 0.5 and got.paired.n_items == 4
    # evaluated and no champion found: the gate knows this run measured none (a champion another run registers
    # meanwhile is not beaten unmeasured); no data version (promote called by hand): the stored value decides
    assert gate_inputs.comparison(ctx, [rl], None, dv) == Comparison("", None, None, "t" * 32)
    assert gate_inputs.comparison(ctx, [rl], None, None) is None
    cfg.registry.gate_metric = "eval/world/rl/voting_k4/parse_fail_rate"  # no per-item credit: same split, unpaired
    unpaired = gate_inputs.comparison(ctx, [rl], champ, dv)
    assert unpaired is not None and unpaired.paired is None


def test_identity_holds_the_stage_keys_and_the_data_version() -> None:
    grm = StageResult("rl.train", "k1", "/x")
    meta = StageResult("meta_rm.train", "k2", "/y")
    dv = SimpleNamespace(files={"test.jsonl": "t1", "train.jsonl": "t0"}, dvc_md5="d.dir")
    assert gate_inputs.identity(grm, meta, dv) == {
        "grm.stage_key.grm": "k1",
        "grm.stage_key.meta_rm": "k2",
        "grm.data.dvc_md5": "d.dir",
        "grm.data.md5.test": "t1",
    }
    assert gate_inputs.identity(grm, None, None)["grm.stage_key.meta_rm"] == "none"


def test_gate_tags_say_the_gap_the_champion_and_the_split() -> None:
    facts = {"test_md5": "new", "champion_test_md5": "old", "test_split_changed": True}
    tags = tracking.gate_tags_of(PairedGap(0.1, 0.02, 0.2, 24), "3", facts)
    assert tags == {
        "grm.gate.gap": "0.1",
        "grm.gate.ci_low": "0.02",
        "grm.gate.ci_high": "0.2",
        "grm.gate.n_items": "24",
        "grm.gate.champion_version": "3",
        "grm.gate.test_md5": "new",
        "grm.gate.champion_test_md5": "old",
        "grm.gate.test_split_changed": "True",
    }
    assert tracking.gate_tags_of(None, "3", facts) == {}


def test_a_benchmark_gate_pairs_the_items_both_models_evaluated(tmp_path: Path) -> None:
    metric = "eval/realmistake/rl/greedy_k1/accuracy"
    cfg = SimpleNamespace(
        registry=SimpleNamespace(gate_metric=metric), eval=SimpleNamespace(seed=0, benchmarks=("realmistake",))
    )

    def bench(name: str, credits: dict[str, float], info: dict | None = None) -> StageResult:
        folder = tmp_path / name
        folder.mkdir()
        per_item = [{"id": i, "credit": {"greedy_k1": c}} for i, c in credits.items()]
        (folder / "report.json").write_text(json.dumps({"report": {"per_item": per_item}, "fit": {}}))
        return StageResult(f"bench.realmistake.{name}", name, str(folder), {"report": "report.json"}, {}, info or {})

    mine = bench("rl", {"a": 1, "b": 1, "c": 0})
    theirs = bench("champion", {"c": 1, "a": 0}, {"champion_version": "4"})  # b did not fit its context
    got = gate_inputs.comparison(SimpleNamespace(cfg=cfg), [mine], theirs, None)
    assert got is not None and got.paired is not None
    assert got.paired.n_items == 2 and got.paired.gap == 0.0  # a: +1, c: -1
    assert gate_inputs.gate_benchmark(cfg, parse_gate_metric(metric)) == "realmistake"
    assert gate_inputs.gate_benchmark(cfg, parse_gate_metric("eval/world/rl/greedy_k1/accuracy")) is None
