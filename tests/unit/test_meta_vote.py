"""How MetaRM@k uses the meta scores (issue 29): weighted voting, the fall-back to Voting@k on a meta RM whose
held-out within-item AUC is too low (and its marker), and the pairwise (Bradley-Terry) loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grm.config import EvalConfig, MetaRMTrainConfig
from grm.eval.report.results import results_table
from grm.eval.run import evaluate
from grm.eval.spec import EvalSpec
from grm.method.judging import ItemJudgement, SampleJudgement
from grm.method.verdicts import decide, meta_vote_for, weighted_sum
from grm.training.meta_rm_train import item_pairs, pairwise_loss
from tests.unit.test_benchmarks_evaluation import QualitySampler, pairs


def _item(scores, metas, best=1, n=2):
    samples = [
        SampleJudgement(list(range(n)), "", s, "ok" if s else "missing", m) for s, m in zip(scores, metas, strict=True)
    ]
    return ItemJudgement("a", n, best, None, False, samples)


def test_weighted_vote_follows_the_confident_samples_where_plain_voting_follows_the_majority():
    # one trusted sample for response 0 against two distrusted ones for response 1
    item = _item([[9, 1], [2, 8], [2, 8]], [0.9, 0.1, 0.1], best=0)
    plain = decide(item, k=3, method="voting")
    weighted = decide(item, k=3, method="metarm", meta_vote="weighted")
    assert plain.totals == [13.0, 17.0] and plain.credit == 0.0
    assert weighted.totals == pytest.approx([8.5, 2.5]) and weighted.credit == 1.0
    assert weighted.n_voted == 3  # every parsed sample votes (k_meta is not used)


@given(
    st.lists(st.lists(st.integers(1, 10), min_size=3, max_size=3), min_size=1, max_size=8),
    st.floats(0.01, 1.0),
    st.integers(0, 2),
)
def test_weighted_vote_with_equal_meta_scores_is_plain_voting(score_lists, weight, best):
    item = _item(score_lists, [weight] * len(score_lists), best=best, n=3)
    plain = decide(item, k=len(score_lists), method="voting", seed=3)
    weighted = decide(item, k=len(score_lists), method="metarm", meta_vote="weighted", seed=3)
    assert (weighted.predicted, weighted.credit, weighted.tied) == (plain.predicted, plain.credit, plain.tied)


@given(st.lists(st.integers(1, 10), min_size=1, max_size=8), st.floats(0.01, 1.0), st.integers(0, 1))
@example([1, 10], 0.013434809068788462, 0)  # found by hypothesis: a float-rounded mean missed the 5.5 midpoint
def test_weighted_single_response_with_equal_meta_scores_is_plain_voting(scores, weight, label):
    samples = [SampleJudgement([0], "", [s], "ok", weight) for s in scores]
    item = ItemJudgement("s", 1, None, label, False, samples)
    plain = decide(item, k=len(scores), method="voting", seed=1)
    weighted = decide(item, k=len(scores), method="metarm", meta_vote="weighted", seed=1)
    assert (weighted.predicted, weighted.credit, weighted.tied) == (plain.predicted, plain.credit, plain.tied)
    assert weighted.score == pytest.approx(plain.score)


def test_weighted_vote_skips_parse_failures_and_needs_meta_scores():
    item = _item([[9, 1], None, [1, 9]], [0.2, 0.99, 0.7], best=1)
    v = decide(item, k=3, method="metarm", meta_vote="weighted")
    assert v.totals == pytest.approx([0.2 * 9 + 0.7 * 1, 0.2 * 1 + 0.7 * 9]) and v.n_voted == 2 and v.n_failed == 1
    with pytest.raises(ValueError, match="needs meta scores"):
        decide(_item([[9, 1], [1, 9]], [0.5, None]), k=2, method="metarm", meta_vote="weighted")
    with pytest.raises(ValueError, match="Unknown meta_vote 'mean'"):
        decide(item, k=3, method="metarm", meta_vote="mean")


def test_weighted_single_response_score_is_the_weighted_mean():
    samples = [SampleJudgement([0], "", [s], "ok", m) for s, m in ((10, 0.8), (2, 0.2), (1, 0.5))]
    item = ItemJudgement("s", 1, None, 1, False, samples)
    v = decide(item, k=3, method="metarm", meta_vote="weighted")
    assert v.score == pytest.approx((10 * 0.8 + 2 * 0.2 + 1 * 0.5) / 1.5)  # 5.93 > 5.5: label 1
    assert v.predicted == 1 and v.credit == 1.0
    assert decide(item, k=3, method="voting").predicted == 0  # the plain mean, 4.33, says 0


def test_fallback_votes_every_parsed_sample_and_needs_no_meta_score():
    item = _item([[9, 1], [2, 8], [2, 8], None], [None, None, None, None], best=0)
    fell = decide(item, k=4, method="metarm", meta_vote="fallback", k_meta=1)
    plain = decide(item, k=4, method="voting")
    assert (fell.totals, fell.credit, fell.n_voted) == (plain.totals, plain.credit, 3)


def test_weighted_sum_keeps_the_original_order():
    assert weighted_sum([[1, 2, 3], [4, 5, 6]], [1.0, 0.5], 3) == [3.0, 4.5, 6.0]
    assert weighted_sum([], [], 2) is None


def test_fallback_decision_reads_the_held_out_within_item_auc():
    mode, why = meta_vote_for("top", 0.54, 0.6)
    assert mode == "fallback" and "0.540 < eval.meta_min_auc 0.6" in why
    assert meta_vote_for("weighted", 0.61, 0.6) == ("weighted", "")
    assert meta_vote_for("top", 0.6, 0.6) == ("top", "")  # at the threshold: the meta RM is used
    assert meta_vote_for("top", 0.2, None) == ("top", "")  # no threshold: never falls back
    for unknown in (None, math.nan):  # not recorded, or no held-out item with both labels: never silently used
        mode, why = meta_vote_for("top", unknown, 0.55)
        assert mode == "fallback" and "no held-out within-item AUC" in why
    with pytest.raises(ValueError, match="Unknown meta_vote"):
        meta_vote_for("best", 0.7, 0.5)


def test_a_fallen_back_evaluation_marks_every_metarm_cell_and_reports_voting():
    common = dict(benchmark="toy", model_name="m", ks=(1, 2), methods=("voting", "metarm"), k_meta=1)
    backwards = lambda prompts: [float(i % 3) for i in range(len(prompts))]  # noqa: E731  an arbitrary meta RM
    fell = evaluate(pairs(), QualitySampler(), EvalSpec(**common, meta_vote="fallback"), backwards)
    used = evaluate(pairs(), QualitySampler(), EvalSpec(**common), backwards)
    for k in (1, 2):
        assert fell.cells[f"metarm_k{k}"]["fell_back"] == 1.0
        assert "fell_back" not in used.cells[f"metarm_k{k}"]
        marker_free = {m: v for m, v in fell.cells[f"metarm_k{k}"].items() if m != "fell_back"}
        assert marker_free == {m: v for m, v in fell.cells[f"voting_k{k}"].items() if m != "seed_agreement"}
    assert fell.settings["meta_vote"] == "fallback" and used.settings["meta_vote"] == "top"
    assert fell.metrics()["eval/toy/m/metarm_k2/fell_back"] == 1.0
    row = results_table(fell.metrics(), "toy", [1, 2], models=["m"]).splitlines()[2]
    assert row.endswith("(fell back: Voting) |") and "fell back" not in results_table(
        used.metrics(), "toy", [2], ["m"]
    )


def test_the_switches_are_checked_with_the_key_named():
    assert EvalConfig().meta_vote == "top" and EvalConfig().meta_min_auc is None  # the paper's MetaRM@k
    with pytest.raises(ValueError, match="eval.meta_vote='mean'"):
        EvalConfig(meta_vote="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eval.meta_min_auc=1.5"):
        EvalConfig(meta_min_auc=1.5)
    assert MetaRMTrainConfig().objective == "pointwise"
    with pytest.raises(ValueError, match="meta_rm.train.objective='listwise'"):
        MetaRMTrainConfig(objective="listwise")  # type: ignore[arg-type]


def test_an_eval_spec_refuses_a_meta_vote_its_protocol_cannot_apply():
    assert EvalSpec("toy", "m").meta_vote == "top"
    with pytest.raises(ValueError, match="Unknown meta_vote 'mean'"):
        EvalSpec("toy", "m", meta_vote="mean")
    with pytest.raises(ValueError, match="the two_game protocol keeps the top-k_meta filter only"):
        EvalSpec("toy", "m", methods=("voting", "metarm"), meta_vote="weighted", protocol="two_game")
    assert EvalSpec("toy", "m", meta_vote="weighted", protocol="two_game").methods == ("voting",)  # no MetaRM@k


def test_pairwise_loss_is_bradley_terry_and_pushes_the_correct_sample_up():
    correct = torch.tensor([2.0, -1.0, 0.0], requires_grad=True)
    wrong = torch.tensor([0.0, 1.0, 0.0], requires_grad=True)
    loss = pairwise_loss(correct, wrong)
    expected = -np.mean(np.log(1 / (1 + np.exp(-np.array([2.0, -2.0, 0.0])))))
    assert float(loss.detach()) == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert (correct.grad < 0).all() and (wrong.grad > 0).all()  # descent raises correct, lowers wrong
    # only the difference counts: an item-difficulty shift of both scores changes nothing
    assert float(pairwise_loss(correct + 5, wrong + 5).detach()) == pytest.approx(float(loss.detach()))
    assert float(pairwise_loss(torch.tensor([9.0]), torch.tensor([0.0]))) < 1e-3


def test_item_pairs_come_from_items_with_both_labels_only():
    examples = [
        {"id": "a", "label": 1},
        {"id": "b", "label": 0},
        {"id": "a", "label": 0},
        {"id": "c", "label": 1},
        {"id": "a", "label": 1},
        {"id": "b", "label": 1},
    ]
    assert item_pairs(examples) == [([0, 4], [2]), ([5], [1])]
