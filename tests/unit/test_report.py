"""The results table and the paired gaps of the paper's orderings."""

from __future__ import annotations

import pytest

from grm.eval.metrics import paired_gap
from grm.eval.report.results import claim_gaps, claim_pairs, gap_metrics, gaps_table, results_table


def test_paired_gap_sign_and_interval() -> None:
    a = [1.0] * 80 + [0.0] * 20
    b = [1.0] * 60 + [0.0] * 40  # a is right on 20 more items, never wrong where b is right
    gap, lo, hi = paired_gap(a, b, seed=0)
    assert gap == pytest.approx(0.2)
    assert 0 < lo < 0.2 < hi
    gap, lo, hi = paired_gap(b, a, seed=0)
    assert gap == pytest.approx(-0.2) and hi < 0


def test_paired_gap_is_narrower_than_unpaired_when_items_agree() -> None:
    # same accuracy difference, but the two sides agree on every item except 5: the paired interval is tight
    a = [1.0] * 50 + [0.0] * 50
    b = [1.0] * 45 + [0.0] * 55
    _, lo, hi = paired_gap(a, b, seed=0)
    assert lo >= 0.01 and hi - lo < 0.1


def test_paired_gap_needs_the_same_items() -> None:
    with pytest.raises(ValueError, match="same items"):
        paired_gap([1, 0], [1])


def test_claim_pairs_cover_the_paper_orderings() -> None:
    pairs = claim_pairs(["teacher", "sft_unfiltered", "rft", "rl"], [1, 2, 8])
    assert (("rft", "greedy_k1"), ("sft_unfiltered", "greedy_k1")) in pairs
    assert (("rl", "greedy_k1"), ("rft", "greedy_k1")) in pairs
    assert (("rl", "greedy_swap_k1"), ("rft", "greedy_swap_k1")) in pairs
    assert (("rl", "voting_k8"), ("rl", "voting_k1")) in pairs
    assert (("rl", "metarm_k8"), ("rl", "voting_k8")) in pairs
    assert claim_pairs(["rft"], [1]) == []  # nothing to compare with k = 1 and one model


def test_claim_gaps_metrics_and_table() -> None:
    credits = {
        "sft_unfiltered": {"greedy_k1": [0.0] * 50 + [1.0] * 50, "voting_k1": [0.5] * 100, "voting_k4": [0.5] * 100},
        "rft": {"greedy_k1": [1.0] * 100, "voting_k1": [0.0] * 100, "voting_k4": [1.0] * 100},
    }
    gaps = claim_gaps(credits, [1, 4])
    by = {(g.a, g.b): g for g in gaps}
    rej = by[(("rft", "greedy_k1"), ("sft_unfiltered", "greedy_k1"))]
    assert rej.gap == pytest.approx(0.5) and rej.resolved
    assert by[(("rft", "voting_k4"), ("rft", "voting_k1"))].gap == pytest.approx(1.0)
    flat = by[(("sft_unfiltered", "voting_k4"), ("sft_unfiltered", "voting_k1"))]
    assert flat.gap == 0 and not flat.resolved
    # metarm cells were not evaluated: those pairs are left out, not reported as zero
    assert not any("metarm" in g.a[1] for g in gaps)
    metrics = gap_metrics(gaps, "world")
    assert metrics["eval/world/rft_vs_sft_unfiltered/gap_greedy_k1/value"] == pytest.approx(0.5)
    assert metrics["eval/world/rft/gap_voting_k4_vs_voting_k1/value"] == pytest.approx(1.0)
    table = gaps_table(gaps)
    assert "| RFT greedy > SFT on unfiltered teacher samples greedy | +50.0 |" in table
    assert "| RFT Voting@4 > RFT Voting@1 | +100.0 |" in table


def test_results_table_rows_and_intervals() -> None:
    m = {
        "eval/world/rft/greedy_k1/accuracy": 0.61,
        "eval/world/rft/greedy_k1/accuracy_ci_low": 0.58,
        "eval/world/rft/greedy_k1/accuracy_ci_high": 0.64,
        "eval/world/rft/voting_k8/accuracy": 0.66,
    }
    lines = results_table(m, "world", [1, 8]).splitlines()
    assert lines[0] == "| model | greedy | Voting@8 | MetaRM@8 |"
    assert lines[2] == "| RFT | 61.0 [58.0, 64.0] | 66.0 | – |"
    assert len(lines) == 3  # models without metrics are left out


def test_ablation_rows_carry_the_papers_names_and_are_compared_with_full_rft():
    from grm.eval.report.results import claim_pairs, results_table

    metrics = {
        "eval/world/rft/greedy_k1/accuracy": 0.8,
        "eval/world/rft_no_principles/greedy_k1/accuracy": 0.7,
        "eval/world/sft_unfiltered/greedy_k1/accuracy": 0.5,
    }
    table = results_table(metrics, "world", [1])
    assert "| RFT w/o principle generation | 70.0 |" in table
    assert "| SFT on unfiltered teacher samples | 50.0 |" in table
    assert "RFT w/o rejective sampling" not in table  # ours is not the paper's row of that name
    pairs = claim_pairs(["sft_unfiltered", "rft_no_principles", "rft"], [1])
    assert (("rft", "greedy_k1"), ("rft_no_principles", "greedy_k1")) in pairs
    assert not any(b[0] == "rft_no_hinted" for _, b in pairs)


def test_benchmark_table_shows_each_benchmarks_official_metric_and_the_context_counts():
    from grm.eval.report.results import benchmark_table

    metrics = {
        "eval/realmistake/rft/greedy_k1/roc_auc": 0.5,
        "eval/realmistake/rft/greedy_k1/accuracy": 0.9,
        "eval/realmistake/rft/voting_k4/roc_auc": 0.625,
        "eval/realmistake/rft/context/n_fit": 18.0,
        "eval/realmistake/rft/context/n_truncated": 18.0,
        "eval/realmistake/rft/context/n_refused": 2.0,
        "eval/rewardbench/rl/metarm_k4/overall": 0.75,
    }
    lines = benchmark_table(metrics, ["realmistake", "rewardbench", "rmb"], [1, 4]).splitlines()
    assert lines[2] == "| realmistake | RFT | roc_auc | 50.0 | 62.5 | – | 18 (18 cut, 2 refused) |"
    assert lines[3] == "| rewardbench | RL | overall | – | – | 75.0 | 0 (0 cut, 0 refused) |"
    assert len(lines) == 4  # rmb has no metrics: no row
