"""Official scoring: RewardBench section weighting vs published numbers, ROC-AUC, RMB sections, decontamination."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from grm.benchmarks import decontamination, scoring
from grm.schemas import Item
from tests.helpers.benchdata import SHIPPED

RESULTS = SHIPPED / "rewardbench" / "results"  # published numbers, shipped with the data


def test_rewardbench_weighting_reproduces_rm_r1_main_score_exactly():
    per_subset = json.loads((RESULTS / "RM-R1-DeepSeek-Distilled-Qwen-32B.per_subset.json").read_text())
    main = json.loads((RESULTS / "RM-R1-DeepSeek-Distilled-Qwen-32B.main_score.json").read_text())
    got = scoring.rewardbench_sections(per_subset)
    assert got["chat"] == pytest.approx(main["Chat"], abs=1e-12)
    assert got["chat_hard"] == pytest.approx(main["Chat Hard"], abs=1e-12)
    assert got["safety"] == pytest.approx(main["Safety"], abs=1e-12)
    assert got["reasoning"] == pytest.approx(main["Reasoning"], abs=1e-12)
    assert got["overall"] == pytest.approx(main["avg_Result_each_section"], abs=1e-12)


def test_rewardbench_weighting_reproduces_the_readme_example_to_the_printed_digits():
    per_subset = json.loads((RESULTS / "readme_example_beaver-7b-v1.0-cost.per_subset.json").read_text())
    got = scoring.rewardbench_sections(per_subset)
    printed = {"chat": 60.89, "chat_hard": 44.96, "safety": 72.16, "reasoning": 46.68}  # README, in percent
    assert {k: round(100 * got[k], 2) for k in printed} == printed


def test_reasoning_gives_math_prm_and_code_half_each():
    per_subset = {"math-prm": 0.9, **{f"hep-{x}": 0.5 for x in ("cpp", "go", "java", "js", "python", "rust")}}
    assert scoring.rewardbench_sections(per_subset)["reasoning"] == pytest.approx(0.5 * 0.9 + 0.5 * 0.5)


def test_prior_sets_use_the_paper_era_weights():
    sections = dict.fromkeys(scoring.SUBSET_MAPPING["chat"], 1.0) | {"math-prm": 0.0}
    got = scoring.rewardbench_sections(sections, prior_sets=0.5)
    # chat 1.0 (w2), reasoning 0.0 (w2), prior 0.5 (w1); missing sections are masked out
    assert got["overall"] == pytest.approx((2 * 1.0 + 2 * 0.0 + 0.5) / 5)


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        ([1, 2, 3, 4], [0, 0, 1, 1], 1.0),  # perfect ranking
        ([4, 3, 2, 1], [0, 0, 1, 1], 0.0),  # inverted
        ([5, 5, 5, 5], [0, 1, 0, 1], 0.5),  # all tied: every pair counts 1/2
        ([1, 2, 2, 3], [0, 0, 1, 1], 0.875),  # one tied cross pair: (3 + 0.5) / 4
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),  # the sklearn docstring case
    ],
)
def test_roc_auc_hand_cases(scores, labels, expected):
    assert scoring.roc_auc(scores, labels) == pytest.approx(expected)


def test_roc_auc_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(1, 6, size=60), rng.integers(0, 2, size=60)
    pos, neg = scores[labels == 1], scores[labels == 0]
    brute = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)])
    assert scoring.roc_auc(scores, labels) == pytest.approx(brute)


def test_roc_auc_is_nan_with_one_class_and_rejects_bad_labels():
    assert np.isnan(scoring.roc_auc([1, 2], [1, 1]))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        scoring.roc_auc([1, 2], [0, 2])


def _item(i, subset=None, section=None, label=None):
    if label is not None:
        return Item(f"x/{i}", "q", ("r",), label=label, subset=subset)
    return Item(f"x/{i}", "q", ("a", "b"), best=0, subset=subset, meta={"section": section} if section else {})


def test_rmb_overall_is_the_mean_of_the_four_micro_sections():
    sections = ["pairwise_helpfulness"] * 3 + ["pairwise_harmlessness", "bon_helpfulness", "bon_harmlessness"]
    items = [_item(i, subset=s, section=s) for i, s in enumerate(sections)]
    got = scoring.score_benchmark("rmb", items, [1, 1, 0, 1, 0, 0.5])
    assert got["pairwise_helpfulness"] == pytest.approx(2 / 3)
    assert got["overall"] == pytest.approx((2 / 3 + 1 + 0 + 0.5) / 4)


def test_realmistake_auc_imputes_the_midpoint_for_unparsed_scores():
    items = [_item(i, subset="t", label=lab) for i, lab in enumerate([1, 0, 1, 0])]
    got = scoring.score_benchmark("realmistake", items, [1, 1, 0, 0], [9.0, 2.0, None, None])
    # unparsed -> 5.5 each: positives {9, 5.5} vs negatives {2, 5.5}: (1 + 1 + 1 + 0.5) / 4
    assert got["roc_auc"] == pytest.approx(0.875) and got["roc_auc/t"] == got["roc_auc"]


def test_ppe_correctness_overall_is_the_unweighted_mean_of_subsets():
    items = [_item(0, "math"), _item(1, "math"), _item(2, "gpqa")]
    assert scoring.score_benchmark("ppe_correctness", items, [1, 1, 0])["overall"] == pytest.approx(0.5)


def test_decontamination_finds_exact_and_normalised_overlaps():
    train = {"uf": [Item("uf/0", "What is 2+2?", ("4", "5"), best=0), Item("uf/1", "Unrelated", ("a", "b"), best=0)]}
    bench = {
        "rb": [Item("rb/0", "What is 2+2?", ("4", "3"), best=0), Item("rb/1", "  what is 2 + 2 ", ("x", "y"), best=0)]
    }
    found = decontamination.find_overlaps(train, bench)
    assert [(o.train_id, o.benchmark_id, o.match) for o in found] == [
        ("uf/0", "rb/0", "exact"),
        ("uf/0", "rb/1", "normalized"),
    ]
    assert decontamination.summarize_overlaps(found) == {
        "uf x rb": {"train_items": 1, "benchmark_items": 2, "pairs": 2, "exact_pairs": 1}
    }


def test_decontamination_compares_the_last_user_turn_of_transcripts():
    chat = (
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "Sum?"},
    )
    found = decontamination.find_overlaps(
        {"t": [Item("t/0", chat, ("a", "b"), best=0)]}, {"b": [Item("b/0", "sum", ("a", "b"), best=0)]}
    )
    assert [o.match for o in found] == ["normalized"]
