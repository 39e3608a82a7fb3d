"""The one shape of evaluation: MetricKey/Cell round trips, EvalSpec checks, the protocol and scorer registries,
and ``expected_metrics`` against the names real evaluations log."""

from __future__ import annotations

import itertools

import pytest

from grm.benchmarks import registry, scoring
from grm.eval import protocols
from grm.eval.expected import expected_metrics
from grm.eval.metric_key import METARM, VOTING, Cell, MetricKey, metric_name, table_key
from grm.eval.protocols.base import EvalProtocol
from grm.eval.report.cross_table import headline_metric
from grm.eval.run import evaluate, evaluate_scores
from grm.eval.spec import EvalReport, EvalSpec
from grm.schemas import Item
from tests.unit.test_benchmarks_evaluation import QualitySampler, SeededRandomSampler, pairs


@pytest.mark.parametrize(
    ("benchmark", "model", "cell", "name"),
    [
        ("world", "rl", Cell(VOTING, 8), "accuracy"),
        ("rewardbench", "runs/grm 27b", Cell("greedy_swap", 1), "subset/alpacaeval-easy"),
        ("realmistake", "vllm:x", Cell(METARM, 16), "roc_auc/math_word_problem_generation"),
        ("heldout", "champion", "context", "n_fit"),
        ("world", "rl_vs_rft", "gap_greedy_k1", "ci_low"),
    ],
)
def test_a_built_metric_key_parses_back_to_itself(benchmark, model, cell, name):
    key = MetricKey.of(benchmark, model, cell, name)
    text = str(key)
    assert text == f"eval/{metric_name(benchmark)}/{metric_name(model)}/{cell}/{name}"
    assert MetricKey.parse(text) == key
    assert key.parsed_cell == (cell if isinstance(cell, Cell) else None)
    assert MetricKey.parse(str(key.for_model("champion"))).model == "champion"


@pytest.mark.parametrize(
    "text", ["loss/train", "eval/world/rl/voting_k8", "eval//rl/voting_k8/accuracy", "bench/world/rl/x/y", ""]
)
def test_other_shapes_do_not_parse_as_a_metric_key(text):
    assert MetricKey.parse(text) is None


def test_a_gate_metric_names_one_value_so_a_nested_name_is_refused_there():
    nested = "eval/rewardbench/rl/voting_k8/subset/chat"
    assert MetricKey.parse(nested).name == "subset/chat"
    assert MetricKey.parse(nested, nested=False) is None


def test_cells_round_trip_and_sort_in_table_order():
    cells = [Cell(m, k) for m in ("metarm", "voting", "greedy_swap", "greedy", "scalar") for k in (8, 1)]
    assert all(Cell.parse(str(c)) == c for c in cells)
    ordered = [str(c) for c in sorted(cells, key=Cell.sort_key)]
    assert ordered[:4] == ["greedy_k1", "greedy_k8", "greedy_swap_k1", "greedy_swap_k8"]
    assert ordered[4:6] == ["voting_k1", "voting_k8"] and ordered[-1] == "scalar_k8"
    assert Cell.parse("voting_kx") is None and Cell.parse("context") is None


def test_report_metrics_and_the_table_are_named_by_the_key():
    report = EvalReport("toy bench", "runs/m", "random", None, {}, {"voting_k4": {"accuracy": 0.5}}, 1)
    assert list(report.metrics()) == [str(MetricKey("toy_bench", "runs_m", "voting_k4", "accuracy"))]
    assert table_key("runs/m", "voting_k4", "toy bench") == "eval/table/runs_m/voting_k4/toy_bench"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ks": (0, 4)}, "ks must be positive"),
        ({"ks": ()}, "ks must be positive"),
        ({"methods": ("voting", "best_of")}, "Unknown method"),
        ({"greedy_order": "reversed"}, "Unknown greedy_order"),
        ({"tie_policy": "coin"}, "Unknown tie_policy"),
    ],
)
def test_a_bad_eval_spec_is_refused_when_built(changes, message):
    with pytest.raises(ValueError, match=message):
        EvalSpec("toy", "m", **changes)


def test_eval_spec_keeps_ks_sorted_and_unique_and_is_frozen():
    spec = EvalSpec("toy", "m", ks=[8, 1, 8], methods=["voting"])
    assert spec.ks == (1, 8) and spec.k_max == 8 and spec.methods == ("voting",)
    with pytest.raises(AttributeError):
        spec.seed = 3  # type: ignore[misc]
    assert spec.replace(seed=3).seed == 3


def test_the_protocol_registry_covers_every_name_a_benchmark_may_declare():
    assert set(protocols.PROTOCOLS) == set(registry.PROTOCOLS)
    for spec in registry._REGISTRY.values():
        assert protocols.get_protocol(spec.protocol).name == spec.protocol
    with pytest.raises(ValueError, match="Available: standard, two_game, style_matrix"):
        protocols.get_protocol("three_game")


def test_evaluate_runs_the_registered_protocol_of_the_spec(monkeypatch):
    calls = []

    def run(items, sampler, spec, meta_scorer):
        calls.append(("grm", spec.benchmark))
        return EvalReport(spec.benchmark, spec.model_name, "strict", None, {}, {}, len(items))

    def score(items, scores, spec, source):
        calls.append(("scores", source))
        return EvalReport(spec.benchmark, spec.model_name, "strict", None, {}, {}, len(items))

    fake = EvalProtocol("standard", run, score, swap_cell=False, description="a fake standard")
    monkeypatch.setitem(protocols.PROTOCOLS, "standard", fake)
    evaluate(pairs(2), QualitySampler(), EvalSpec("toy", "m"))
    evaluate_scores(pairs(2), {}, EvalSpec("toy", "m"), source="s.jsonl")
    assert calls == [("grm", "toy"), ("scores", "s.jsonl")]


def test_every_benchmark_names_a_registered_scorer_and_its_headline_is_the_scorers():
    for spec in registry._REGISTRY.values():
        assert scoring.get_scorer(spec.scorer).name == spec.scorer
    assert set(registry.SCORERS) == set(scoring.SCORERS)
    for name, scorer in scoring.SCORERS.items():
        report = EvalReport("b", "m", "strict", None, {"scorer": name}, {}, 0)
        assert headline_metric(report) == scorer.headline
    assert scoring.get_scorer("realmistake").needs_scores and not scoring.get_scorer("rewardbench").needs_scores
    with pytest.raises(ValueError, match="Unknown scorer 'bleu'. Available: accuracy, "):
        scoring.score_benchmark("bleu", [], [])


def test_score_benchmark_dispatches_to_the_named_scorer():
    items = [Item(f"rb/{s}/{i}", "q", ("a", "b"), best=0, subset=s) for i, s in enumerate(["hep-go", "xstest"])]
    out = scoring.score_benchmark("rewardbench", items, [1.0, 0.0])
    assert out["subset/hep-go"] == 1.0 and out["subset/xstest"] == 0.0 and out["n_subsets"] == 2.0
    assert scoring.score_benchmark("accuracy", items, [1.0, 0.0])["macro_accuracy"] == 0.5


GRID = list(
    itertools.product(
        ((1,), (1, 4), (2, 8)),  # ks
        (True, False),  # hygiene
        (None, False, True),  # seed_agreement
        (False, True),  # a meta RM
    )
)


@pytest.mark.parametrize(("ks", "hygiene", "seed_agreement", "meta"), GRID)
def test_expected_metrics_are_the_names_a_real_evaluation_logs(ks, hygiene, seed_agreement, meta):
    methods = (VOTING, METARM) if meta else (VOTING,)
    spec = EvalSpec("world", "rl", ks=ks, methods=methods, hygiene=hygiene, seed_agreement=seed_agreement)
    items = [Item(f"w/{i}", f"q {i}", (f"good {i}", f"bad {i}"), best=0) for i in range(3)]
    meta_scorer = (lambda texts: [0.5] * len(texts)) if meta else None
    report = evaluate(items, SeededRandomSampler(), spec, meta_scorer)
    assert expected_metrics(spec) == set(report.metrics())


@pytest.mark.parametrize("meta_vote", ["top", "weighted", "fallback"])
def test_expected_metrics_name_the_fell_back_marker_of_a_fallen_back_metarm(meta_vote):
    spec = EvalSpec("world", "rl", ks=(1, 4), methods=(VOTING, METARM), hygiene=False, meta_vote=meta_vote)
    items = [Item(f"w/{i}", f"q {i}", (f"good {i}", f"bad {i}"), best=0) for i in range(3)]
    report = evaluate(items, SeededRandomSampler(), spec, lambda texts: [0.5] * len(texts))
    assert expected_metrics(spec) == set(report.metrics())
    assert ("eval/world/rl/metarm_k4/fell_back" in report.metrics()) == (meta_vote == "fallback")


@pytest.mark.parametrize("ks", [(1,), (1, 4)])
def test_expected_metrics_of_the_two_game_protocol(ks):
    spec = EvalSpec("toy", "m", ks=ks, protocol="two_game")
    report = evaluate(pairs(3), SeededRandomSampler(), spec)
    assert expected_metrics(spec) == set(report.metrics())


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["eval.ks=[1,4]", "eval.hygiene=false", "rl.max_steps=0"],
        ["meta_rm.enabled=false", "eval.seed_agreement=true", "data.source=data/x"],
        ["eval.ks=[3]", "rft.sft_unfiltered=true", "eval.seed_agreement=false"],
    ],
)
def test_the_stages_eval_specs_name_the_metrics_the_plan_step_expects(overrides):
    from grm.config import PipelineConfig, load_config
    from grm.plan import expected_metrics as planned
    from tasks.evaluation import expected_eval_metrics

    cfg = load_config(PipelineConfig, [], overrides)
    assert expected_eval_metrics(cfg) == planned(cfg)
