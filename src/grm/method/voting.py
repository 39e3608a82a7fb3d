"""Inference-time scaling by voting (SPEC §5, §6).

Each of the k samples sees the responses in a fresh seeded order; its scores are mapped back to the original order
and summed (Voting@k). Meta-guided voting keeps the k_meta samples the meta RM rates highest. Samples that failed
to parse carry no votes and are counted, never coerced into scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def derive_seed(*parts: object) -> int:
    """A stable 63-bit seed from any parts (Python's ``hash`` is salted per process; this is not)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def shuffle_order(n: int, seed: int, item_id: str, sample: int) -> list[int]:
    """The order one sample shows responses in: ``order[pos]`` = original index shown at ``pos`` (1-based label
    ``pos + 1``). Deterministic in (seed, item_id, sample).

    Example:
        >>> sorted(shuffle_order(4, seed=0, item_id="a", sample=3))
        [0, 1, 2, 3]
    """
    rng = np.random.default_rng(derive_seed("order", seed, item_id, sample))
    return [int(i) for i in rng.permutation(n)]


def unshuffle_scores(shown_scores: Sequence[int], order: Sequence[int]) -> list[int]:
    """Map scores given in shown order back to the original response order.

    Example:
        >>> unshuffle_scores([9, 5], order=[1, 0])  # response 1 was shown first and got 9
        [5, 9]
    """
    if sorted(order) != list(range(len(order))):
        raise ValueError(f"order {list(order)} is not a permutation of 0..{len(order) - 1}")
    original = [0] * len(order)
    for pos, idx in enumerate(order):
        original[idx] = shown_scores[pos]
    return original


def vote_sum(samples: Sequence[Sequence[int] | None], n: int) -> list[int] | None:
    """S*_i = sum over parsed samples of S_{i,j} (original order). ``None`` when no sample parsed.

    Example (paper Table 17):
        >>> vote_sum([[8, 8], [5, 9], [7, 10]], n=2)
        [20, 27]
    """
    parsed = [s for s in samples if s is not None]
    if not parsed:
        return None
    totals = [0] * n
    for scores in parsed:
        if len(scores) != n:
            raise ValueError(f"a sample has {len(scores)} scores, expected {n}")
        for i, s in enumerate(scores):
            totals[i] += int(s)
    return totals


@dataclass(frozen=True)
class Pick:
    """The predicted best response and whether it had to be chosen among tied top totals."""

    index: int
    tied: bool


def pick_best(totals: Sequence[float], seed: int, item_id: str = "") -> Pick:
    """argmax of ``totals``, ties broken at random by a seeded draw (evaluation protocol, SPEC §5).

    Example:
        >>> pick_best([3, 9, 1], seed=0)
        Pick(index=1, tied=False)
    """
    top = max(totals)
    winners = [i for i, t in enumerate(totals) if t == top]
    if len(winners) == 1:
        return Pick(winners[0], False)
    rng = np.random.default_rng(derive_seed("tie", seed, item_id))
    return Pick(int(winners[int(rng.integers(len(winners)))]), True)


def select_top_meta(meta_scores: Sequence[float | None], k_meta: int) -> list[int]:
    """Indices of the ``k_meta`` samples with the highest meta-RM score (``None`` = not eligible, e.g. a parse
    failure). Ties keep the earlier sample; the result is sorted by sample index.

    Example:
        >>> select_top_meta([0.1, 0.9, None, 0.5], k_meta=2)
        [1, 3]
    """
    if k_meta < 1:
        raise ValueError(f"k_meta must be >= 1, got {k_meta}")
    eligible = [(i, s) for i, s in enumerate(meta_scores) if s is not None]
    ranked = sorted(eligible, key=lambda pair: (-pair[1], pair[0]))
    return sorted(i for i, _ in ranked[:k_meta])


def meta_voters(
    samples: Sequence[Sequence[int] | None], meta_scores: Sequence[float | None], k_meta: int
) -> list[int]:
    """Indices of the samples meta-guided voting keeps: the top ``k_meta`` *parsed* samples by meta-RM score
    (fewer when fewer parsed), sorted by sample index. [choice: parse failures are excluded before ranking, so they
    never take a slot]

    Example:
        >>> meta_voters([[8, 8], None, [5, 9], [7, 10]], [0.2, 0.99, 0.9, 0.8], k_meta=2)
        [2, 3]
    """
    eligible = [None if s is None else m for s, m in zip(samples, meta_scores, strict=True)]
    return select_top_meta(eligible, k_meta)


def meta_vote(
    samples: Sequence[Sequence[int] | None], meta_scores: Sequence[float | None], k_meta: int, n: int
) -> list[int] | None:
    """Meta-guided voting (SPEC §6): S*_i = **sum** of S_{i,j} over the samples ``meta_voters`` keeps (range
    ``m..10m`` for ``m = min(k_meta, parsed)`` kept samples, not ``k..10k``: only the argmax is comparable with
    Voting@k totals). ``None`` when no sample parsed. A single response's score is this sum divided by ``m``
    (``grm.method.verdicts.decide``), never by the number of parsed samples.

    Example:
        >>> meta_vote([[8, 8], [5, 9], [7, 10], [9, 1]], [0.2, 0.9, 0.8, 0.1], k_meta=2, n=2)
        [12, 19]
    """
    keep = meta_voters(samples, meta_scores, k_meta)
    return vote_sum([samples[i] for i in keep], n)
