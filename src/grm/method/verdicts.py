"""Turn sampled judgements into verdicts: greedy, Voting@k and MetaRM@k, with an explicit tie policy.

Tie policies (the report always states which one was used):
- ``random`` (paper default): the top tie is broken by a seeded draw; credit 1 or 0.
- ``strict``: a tie at the top is wrong (credit 0 unless the best response wins alone).
- ``half``: credit 1/m when the best response is among m tied winners (0.5 for a tied pair).

How MetaRM@k uses the meta scores (``meta_vote``; ``META_VOTES``):
- ``top`` (paper, default): keep the ``k_meta`` parsed samples the meta RM rates highest and vote over them.
- ``weighted``: every parsed sample votes, its scores multiplied by its meta score (the sigmoid, in (0, 1)), so a
  meta RM that rates every sample alike gives Voting@k back, not Voting@k_meta.
- ``fallback``: the meta scores are not used, every parsed sample votes with weight 1 (= Voting@k). Chosen by
  ``meta_vote_for`` when the meta RM's held-out within-item AUC is below a threshold; the report marks it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grm.method import voting
from grm.method.judging import ItemJudgement

TIE_POLICIES = ("random", "strict", "half")
METHODS = ("voting", "metarm")
META_VOTES = ("top", "weighted", "fallback")
WEIGHTED_DIGITS = 9  # weighted totals are rounded to this many decimals: float noise must not split a tie


@dataclass(frozen=True)
class Verdict:
    """The verdict on one item under one method and k."""

    id: str
    credit: float  # 1.0 correct, 0.0 wrong, fractional under the ``half`` tie policy
    tied: bool  # the top was tied (or every sample failed to parse, so nothing was decided)
    predicted: int | None  # predicted best index (n >= 2) or predicted label (n = 1)
    totals: list[float] | None  # summed scores of the voting samples, original order; None when none parsed
    n_failed: int  # samples that failed to parse among those used
    n_used: int  # samples looked at (k)
    score: float | None = None  # single responses: totals[0] / n_voted, the mean vote (ROC-AUC); None otherwise
    n_voted: int = 0  # samples whose scores are in ``totals``: parsed ones (voting) or the kept ones (MetaRM@k)


def tie_credit(winners: list[int], truth: int, policy: str, seed: int, item_id: str) -> tuple[float, int]:
    """Credit and pick when ``winners`` share the top: seeded pick; credit per tie policy (see module doc)."""
    if len(winners) == 1:
        return float(winners[0] == truth), winners[0]
    pick = winners[int(np.random.default_rng(voting.derive_seed("tie", seed, item_id)).integers(len(winners)))]
    if policy == "random":
        return float(pick == truth), pick
    if policy == "strict":
        return 0.0, pick
    return (1.0 / len(winners) if truth in winners else 0.0), pick


def decide(
    judgement: ItemJudgement,
    *,
    k: int,
    method: str = "voting",
    k_meta: int | None = None,
    seed: int = 0,
    tie_policy: str = "random",
    meta_vote: str = "top",
) -> Verdict:
    """Aggregate the first ``k`` samples of ``judgement`` into a verdict.

    The voting samples are the parsed ones among the first ``k`` (``voting``) or the top ``k_meta`` of those by meta
    score (``metarm``). ``totals`` = the sum of their scores per response (original order); n >= 2 picks the argmax
    (ties per ``tie_policy``). n = 1: ``score`` = ``totals[0] / n_voted``, the **mean** over the voting samples
    (so Voting@k and MetaRM@k scores share the 1..10 or 0..1 scale), and the label is 1 iff it is above the middle
    of that range (at the middle: a tie).

    Args:
        judgement: sampled judgements of one item (at least ``k`` samples).
        k: how many samples to use (Voting@k / MetaRM@k; greedy is k = 1).
        method: ``voting`` (all parsed samples vote) or ``metarm`` (the top ``k_meta`` parsed samples by meta score).
        k_meta: samples kept by the meta RM; default k // 2 (at least 1); fewer when fewer parsed.
        seed: tie-break seed.
        tie_policy: ``random`` | ``strict`` | ``half``.
        meta_vote: how ``metarm`` uses the meta scores: ``top`` (keep ``k_meta``, the paper), ``weighted`` (every
            parsed sample, scores times meta score; ``k_meta`` unused) or ``fallback`` (plain voting; see the module
            doc). Ignored by ``voting``.

    Example:
        >>> from grm.method.judging import ItemJudgement, SampleJudgement
        >>> j = ItemJudgement("a", 2, 1, None, False, [SampleJudgement([0, 1], "", s, "ok") for s in
        ...     ([8, 8], [5, 9], [7, 10])])
        >>> decide(j, k=3).totals, decide(j, k=3).credit
        ([20.0, 27.0], 1.0)
    """
    if method not in METHODS:
        raise ValueError(f"Unknown method {method!r}. Available: {', '.join(METHODS)}")
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"Unknown tie_policy {tie_policy!r}. Available: {', '.join(TIE_POLICIES)}")
    if meta_vote not in META_VOTES:
        raise ValueError(f"Unknown meta_vote {meta_vote!r}. Available: {', '.join(META_VOTES)}")
    if len(judgement.samples) < k:
        raise ValueError(f"item {judgement.id} has {len(judgement.samples)} samples, k={k} needs at least k")
    samples = judgement.samples[:k]
    scores = [s.scores for s in samples]
    n_failed = sum(1 for s in scores if s is None)
    weights: list[float] | None = None
    if method == "metarm" and meta_vote != "fallback":
        metas = [s.meta_score for s in samples]
        if any(m is None for m, sc in zip(metas, scores, strict=True) if sc is not None):
            raise ValueError(f"item {judgement.id}: method 'metarm' needs meta scores; pass a meta RM")
        if meta_vote == "top":
            k_meta = k_meta if k_meta is not None else max(1, k // 2)
            voters = voting.meta_voters(scores, metas, k_meta)
        else:
            voters = [i for i, sc in enumerate(scores) if sc is not None]
            weights = [float(metas[i]) for i in voters]  # type: ignore[arg-type]
    else:
        voters = [i for i, sc in enumerate(scores) if sc is not None]
    if weights is None:
        totals_int = voting.vote_sum([scores[i] for i in voters], judgement.n)
        totals = [float(t) for t in totals_int] if totals_int is not None else None
        mass = float(len(voters))
    else:
        totals = weighted_sum([scores[i] for i in voters], weights, judgement.n)  # type: ignore[misc]
        mass = sum(weights)
    if judgement.n == 1:
        exact = _weighted_mean([scores[i][0] for i in voters], weights) if weights is not None else None  # type: ignore[index]
        voted = (len(voters), mass, exact)
        return _decide_single(judgement, len(samples), totals, n_failed, voted, seed, tie_policy)
    if totals is None:  # nothing parsed: every response is "tied"
        winners = list(range(judgement.n))
    else:
        top = max(totals)
        winners = [i for i, t in enumerate(totals) if t == top]
    credit, pick = tie_credit(winners, int(judgement.best), tie_policy, seed, judgement.id)  # type: ignore[arg-type]
    return Verdict(judgement.id, credit, len(winners) > 1, pick, totals, n_failed, k, None, len(voters))


def _decide_single(
    judgement: ItemJudgement,
    n_used: int,
    totals: list[float] | None,
    n_failed: int,
    voted: tuple[int, float, float | None],
    seed: int,
    policy: str,
) -> Verdict:
    """n = 1: the mean over the ``n_voted`` voting samples against the midpoint of the score range decides the 0/1
    label (dividing by every parsed sample instead would shrink MetaRM@k's score by ~k_meta/k). ``voted`` =
    (``n_voted``, their total weight: ``n_voted`` unweighted, the sum of meta scores when weighted; the weighted
    mean computed exactly, None when unweighted)."""
    n_voted, mass, weighted_mean = voted
    low, high = (0, 1) if judgement.single_label else (1, 10)
    mean = totals[0] / mass if totals is not None and n_voted and mass > 0 else None
    if mean is not None and weighted_mean is not None:
        mean = weighted_mean
    mid = (low + high) / 2
    winners = [0, 1] if mean is None or mean == mid else [1 if mean > mid else 0]
    credit, pick = tie_credit(winners, int(judgement.label), policy, seed, judgement.id)  # type: ignore[arg-type]
    return Verdict(judgement.id, credit, len(winners) > 1, pick, totals, n_failed, n_used, mean, n_voted)


def _weighted_mean(scores: list[int], weights: list[float]) -> float | None:
    """sum(w * s) / sum(w) in exact arithmetic, rounded to ``WEIGHTED_DIGITS`` decimals: equal weights give
    exactly the plain mean (5.5 stays the midpoint, whatever float noise 0.0134 * 11 / 0.0268 would add).

    Example:
        >>> _weighted_mean([1, 10], [0.013434809068788462] * 2)
        5.5
    """
    from fractions import Fraction

    mass = sum(Fraction(w) for w in weights)
    if not scores or mass <= 0:
        return None
    exact = sum(Fraction(w) * s for w, s in zip(weights, scores, strict=True)) / mass
    return round(float(exact), WEIGHTED_DIGITS)


def weighted_sum(samples: list[list[int]], weights: list[float], n: int) -> list[float] | None:
    """S*_i = sum over samples of w_j * S_{i,j} (original order), summed in sample order and rounded to
    ``WEIGHTED_DIGITS`` decimals (equal weights then tie where plain voting ties: 0.01 * 8 + 0.01 * 9 and
    0.01 * 7 + 0.01 * 10 differ in the last bit); None when no sample.

    Example:
        >>> weighted_sum([[8, 8], [5, 9], [7, 10]], [0.5, 1.0, 0.25], 2)
        [10.75, 15.5]
    """
    if not samples:
        return None
    totals = [0.0] * n
    for sc, w in zip(samples, weights, strict=True):
        for i in range(n):
            totals[i] += w * sc[i]
    return [round(t, WEIGHTED_DIGITS) for t in totals]


def meta_vote_for(requested: str, val_within_item_auc: float | None, min_auc: float | None) -> tuple[str, str]:
    """The ``meta_vote`` an evaluation uses and why: ``fallback`` (plain voting) when ``min_auc`` is set and the
    meta RM's held-out within-item AUC is below it or unknown (a meta RM that did not record one, or NaN: no
    held-out item had both a correct and a wrong sample), else ``requested``. The reason is for the report.

    Example:
        >>> meta_vote_for("top", 0.52, 0.55)
        ('fallback', 'held-out within-item AUC 0.520 < eval.meta_min_auc 0.55: MetaRM@k is Voting@k')
        >>> meta_vote_for("top", 0.61, 0.55)[0], meta_vote_for("weighted", None, None)[0]
        ('top', 'weighted')
    """
    if requested not in META_VOTES:
        raise ValueError(f"Unknown meta_vote {requested!r}. Available: {', '.join(META_VOTES)}")
    if min_auc is None or requested == "fallback":
        return requested, ""
    if val_within_item_auc is None or val_within_item_auc != val_within_item_auc:  # None or NaN
        return "fallback", f"no held-out within-item AUC recorded (eval.meta_min_auc {min_auc}): MetaRM@k is Voting@k"
    if val_within_item_auc < min_auc:
        return "fallback", (
            f"held-out within-item AUC {val_within_item_auc:.3f} < eval.meta_min_auc {min_auc}: MetaRM@k is Voting@k"
        )
    return requested, ""
