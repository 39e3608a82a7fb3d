"""Rule-based rewards usable as TRL ``reward_funcs`` entries (SPEC §4, paper Eq. 11).

A TRL reward is ``(completions, **kwargs) -> list[float | None]``; dataset columns arrive as kwargs, one value per
completion. Ground truth is passed as the columns ``best`` (position in the order shown to the judge; -1 or None
for single responses), ``label`` (0/1; -1 or None for n >= 2) and ``n`` (number of responses).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grm.correctness import is_correct
from grm.parsing import extract_scores
from grm.prompts import score_range


def _text(completion: Any) -> str:
    # TRL passes plain strings for standard datasets and [{"role": "assistant", "content": ...}] for chat ones.
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"unsupported completion type {type(completion).__name__}")


def _opt(value: Any) -> int | None:
    return None if value is None or int(value) < 0 else int(value)


class CorrectnessReward:
    """+1 when the judgement is correct (Eq. 10), -1 otherwise, parse failures included (Eq. 11).

    Example:
        >>> reward = CorrectnessReward()
        >>> reward(["Scores: \\\\boxed{9, 2}", "Scores: \\\\boxed{5, 5}"], best=[0, 0], label=[-1, -1], n=[2, 2])
        [1.0, -1.0]
    """

    __name__ = "correctness_reward"  # TRL logs rewards under the function's name

    def __init__(self, correct: float = 1.0, incorrect: float = -1.0):
        self.correct = correct
        self.incorrect = incorrect

    def __call__(
        self,
        completions: Sequence[Any],
        best: Sequence[Any] | None = None,
        label: Sequence[Any] | None = None,
        n: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        if n is None:
            raise ValueError("CorrectnessReward needs the dataset column 'n' (number of responses per prompt)")
        count = len(completions)
        best = best if best is not None else [None] * count
        label = label if label is not None else [None] * count
        out: list[float | None] = []
        for completion, b, lab, size in zip(completions, best, label, n, strict=True):
            size = int(size)
            b, lab = _opt(b), _opt(lab)
            low, high = score_range(single_label=size == 1 and lab is not None)
            parsed = extract_scores(_text(completion), size, low, high)
            ok = is_correct(parsed.scores, best=b, label=lab)
            out.append(self.correct if ok else self.incorrect)
        return out


correctness_reward = CorrectnessReward()
