"""Voting: seeded per-sample shuffles, mapping back to the original order, sums, tie-breaks, meta-guided votes."""

from hypothesis import given
from hypothesis import strategies as st

from grm.method import voting
from grm.method.judging import ItemJudgement, SampleJudgement
from grm.method.verdicts import decide


def test_paper_worked_example_votes_20_vs_27():
    # Paper Table 17: three samples scoring (8, 8), (5, 9), (7, 10) in the original order.
    assert voting.vote_sum([[8, 8], [5, 9], [7, 10]], n=2) == [20, 27]


def test_paper_example_through_shuffled_samples():
    # The same three judgements, as the judge saw them under different orders, map back to 20 vs 27.
    orders = [[0, 1], [1, 0], [1, 0]]
    shown = [[8, 8], [9, 5], [10, 7]]
    original = [voting.unshuffle_scores(s, o) for s, o in zip(shown, orders, strict=True)]
    assert voting.vote_sum(original, n=2) == [20, 27]


@given(st.integers(1, 6), st.integers(0, 10_000), st.text(max_size=10), st.integers(0, 64))
def test_shuffle_order_is_a_seeded_permutation(n, seed, item_id, sample):
    order = voting.shuffle_order(n, seed, item_id, sample)
    assert sorted(order) == list(range(n))
    assert order == voting.shuffle_order(n, seed, item_id, sample)


def test_shuffles_differ_across_samples():
    orders = {tuple(voting.shuffle_order(4, 0, "item", j)) for j in range(16)}
    assert len(orders) > 4


@given(st.permutations(list(range(5))), st.lists(st.integers(1, 10), min_size=5, max_size=5))
def test_unshuffle_restores_original_order(order, original_scores):
    shown = [original_scores[i] for i in order]  # what the judge saw at each position
    assert voting.unshuffle_scores(shown, order) == original_scores


def test_vote_sum_skips_parse_failures_and_returns_none_when_all_failed():
    assert voting.vote_sum([[1, 2], None, [3, 4]], n=2) == [4, 6]
    assert voting.vote_sum([None, None], n=2) is None


def test_pick_best_breaks_ties_with_a_seed():
    assert voting.pick_best([3, 9, 1], seed=0) == voting.Pick(1, False)
    picks = {voting.pick_best([5, 5, 1], seed=s, item_id="x").index for s in range(40)}
    assert picks == {0, 1}  # both tied winners happen, the loser never does
    assert voting.pick_best([5, 5], seed=7, item_id="a") == voting.pick_best([5, 5], seed=7, item_id="a")


def test_meta_guided_vote_keeps_top_k_meta_and_skips_failures():
    samples = [[8, 8], [5, 9], None, [7, 10], [10, 1]]
    metas = [0.2, 0.9, 0.99, 0.8, 0.1]  # the failed sample has the highest meta score but carries no votes
    assert voting.select_top_meta([None if s is None else m for s, m in zip(samples, metas, strict=True)], 2) == [1, 3]
    assert voting.meta_vote(samples, metas, k_meta=2, n=2) == [12, 19]
    # k_meta = k reduces to plain voting
    assert voting.meta_vote(samples, metas, k_meta=5, n=2) == voting.vote_sum(samples, n=2)


def _judgement(score_lists, best=1, metas=None):
    samples = [
        SampleJudgement([0, 1], "", s, "ok" if s else "missing", None if metas is None else metas[i])
        for i, s in enumerate(score_lists)
    ]
    return ItemJudgement("it", 2, best, None, False, samples)


def test_decide_uses_only_first_k_samples_and_tie_policies():
    j = _judgement([[8, 8], [5, 9], [9, 2], [1, 10]])
    assert decide(j, k=1).tied and decide(j, k=1, tie_policy="strict").credit == 0.0
    assert decide(j, k=1, tie_policy="half").credit == 0.5
    assert decide(j, k=2).totals == [13.0, 17.0] and decide(j, k=2).credit == 1.0
    assert decide(j, k=3).totals == [22.0, 19.0] and decide(j, k=3).credit == 0.0


def test_decide_metarm_votes_over_best_rated_samples():
    j = _judgement([[9, 2], [5, 9], [3, 8], [9, 1]], metas=[0.1, 0.9, 0.8, 0.2])
    assert decide(j, k=4).credit == 0.0  # plain voting: 26 vs 20 for the wrong response
    v = decide(j, k=4, method="metarm", k_meta=2)
    assert v.totals == [8.0, 17.0] and v.credit == 1.0


def test_decide_counts_parse_failures_and_all_failed_is_a_tie():
    j = _judgement([None, None])
    v = decide(j, k=2)
    assert v.n_failed == 2 and v.totals is None and v.tied


def test_decide_single_response_uses_midpoint_threshold():
    samples = [SampleJudgement([0], "", [s], "ok") for s in (1, 1, 0)]
    j = ItemJudgement("s", 1, None, 1, True, samples)
    assert decide(j, k=3).predicted == 1 and decide(j, k=3).credit == 1.0
    assert decide(j, k=3).score == 2 / 3


def _single(score_lists, label, metas=None, single_label=False):
    samples = [
        SampleJudgement([0], "", s, "ok" if s else "missing", None if metas is None else metas[i])
        for i, s in enumerate(score_lists)
    ]
    return ItemJudgement("s1", 1, None, label, single_label, samples)


def test_metarm_single_response_score_is_the_mean_of_the_kept_samples():
    # The hand case: 8 samples all scoring 8, label 1. Voting@8 and MetaRM@8 (k_meta = 4 by default) must
    # both score 8.0; dividing MetaRM's sum (32) by all 8 parsed samples gave 4.0, below the 5.5 midpoint: label 0.
    j = _single([[8]] * 8, label=1, metas=[0.1 * i for i in range(8)])
    vote, meta = decide(j, k=8), decide(j, k=8, method="metarm")
    assert (vote.score, vote.predicted, vote.credit) == (8.0, 1, 1.0)
    assert (meta.score, meta.predicted, meta.credit) == (8.0, 1, 1.0)
    assert meta.totals == [32.0] and meta.n_voted == 4 and vote.n_voted == 8


def test_metarm_single_response_averages_only_the_meta_rm_picks():
    # the meta RM keeps the two samples it rates highest (3 and 1); a parse failure never takes a slot and the
    # score is their mean, on the 1..10 scale of Voting@k's mean
    j = _single([[9], None, [2], [10], [3]], label=0, metas=[0.5, 0.99, 0.8, 0.1, 0.9])
    meta = decide(j, k=5, method="metarm", k_meta=2)
    assert meta.totals == [5.0] and meta.n_voted == 2 and meta.score == 2.5
    assert meta.predicted == 0 and meta.credit == 1.0 and meta.n_failed == 1
    vote = decide(j, k=5)
    assert vote.n_voted == 4 and vote.score == 6.0 and vote.predicted == 1  # (9 + 2 + 10 + 3) / 4


def test_metarm_keeps_at_most_the_parsed_samples():
    # k_meta larger than the parsed samples: all parsed ones vote, the mean divides by them
    j = _single([[1], None, [0]], label=1, metas=[0.2, None, 0.4], single_label=True)
    meta = decide(j, k=3, method="metarm", k_meta=3)
    assert meta.n_voted == 2 and meta.score == 0.5 and meta.tied  # 0.5 is the middle of 0..1: a tie


def test_metarm_multi_response_totals_are_sums_over_the_kept_samples():
    j = _judgement([[9, 2], [5, 9], None, [3, 8]], metas=[0.1, 0.9, None, 0.8])
    v = decide(j, k=4, method="metarm", k_meta=2)
    assert v.totals == [8.0, 17.0] and v.n_voted == 2 and v.score is None and v.n_failed == 1
