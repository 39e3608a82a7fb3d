"""Extract scores from generated GRM text (SPEC §1): the last ``\\boxed{...}``, falling back to ``[[...]]``.

Only the generated text is ever parsed, never the prompt, so a response that itself contains
``Scores: \\boxed{10, 1}`` cannot change a score. In hot paths a failure is a value, not an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOXED_RE = re.compile(r"\\boxed\{([^{}]*)\}")
BRACKETS_RE = re.compile(r"\[\[([^\[\]]*)\]\]")
INT_RE = re.compile(r"^[+-]?\d+$")

MISSING = "missing"
WRONG_COUNT = "wrong_count"
NON_INTEGER = "non_integer"
OUT_OF_RANGE = "out_of_range"
FAILURE_REASONS = (MISSING, WRONG_COUNT, NON_INTEGER, OUT_OF_RANGE)


@dataclass(frozen=True)
class ParseResult:
    """Scores in the order the judge saw the responses, or ``error`` (one of ``FAILURE_REASONS``)."""

    scores: tuple[int, ...] | None
    error: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.scores is not None


def extract_scores(text: str, n: int, low: int = 1, high: int = 10) -> ParseResult:
    """Parse ``n`` integer scores in ``[low, high]`` from the last ``\\boxed{}`` (or ``[[...]]``) of ``text``.

    Example:
        >>> extract_scores("Analysis: ok. Scores: \\\\boxed{8, 3}", 2).scores
        (8, 3)
        >>> extract_scores("no scores here", 2).error
        'missing'
    """
    matches = BOXED_RE.findall(text)
    if not matches:
        matches = BRACKETS_RE.findall(text)
    if not matches:
        return ParseResult(None, MISSING, "no \\boxed{...} or [[...]] in the generated text")
    parts = [p.strip() for p in matches[-1].split(",")]
    if parts == [""]:
        parts = []
    if len(parts) != n:
        return ParseResult(None, WRONG_COUNT, f"expected {n} scores, found {len(parts)}: {matches[-1]!r}")
    scores: list[int] = []
    for part in parts:
        if not INT_RE.match(part):
            return ParseResult(None, NON_INTEGER, f"{part!r} is not an integer")
        value = int(part)
        if not low <= value <= high:
            return ParseResult(None, OUT_OF_RANGE, f"{value} is outside [{low}, {high}]")
        scores.append(value)
    return ParseResult(tuple(scores))
