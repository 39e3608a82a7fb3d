"""Correctness of one judgement (SPEC §2, paper Eq. 10): shared by RFT rejection, the RL reward and meta-RM labels."""

from __future__ import annotations

from collections.abc import Sequence


def is_correct(scores: Sequence[int] | None, best: int | None = None, label: int | None = None) -> bool:
    """Whether predicted ``scores`` agree with the ground truth.

    n >= 2: the labelled ``best`` must score strictly above every other response (a top tie is wrong).
    n == 1: the score must equal the 0/1 ``label``. A parse failure (``None``) is incorrect.
    ``scores`` and ``best`` must be in the same response order.

    Example:
        >>> is_correct([8, 3], best=0), is_correct([8, 8], best=0), is_correct([1], label=1)
        (True, False, True)
    """
    if scores is None:
        return False
    if len(scores) == 1:
        if label is None:
            raise ValueError("a single response needs label (0/1), not best")
        return scores[0] == label
    if best is None:
        raise ValueError(f"{len(scores)} scores need best (the 0-based index of the best response)")
    if not 0 <= best < len(scores):
        raise ValueError(f"best={best} is out of range for {len(scores)} scores")
    top = scores[best]
    return all(s < top for i, s in enumerate(scores) if i != best)
