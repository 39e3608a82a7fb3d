"""Extract scores from generated GRM text (SPEC §1): the last ``\\boxed{...}``, else the last ``[[...]]``.

Rules [choice, SPEC §1 leaves the details open]:

1. The box is the **last** ``\\boxed{`` opened in the text, read up to its *matching* ``}`` (braces balanced, so
   ``\\boxed{\\textbf{8}, \\textbf{2}}`` is one box). Whatever that box holds decides: a bad last box is a parse
   failure with its reason, never a fall-back to an earlier box or to ``[[...]]``. A last ``\\boxed{`` without its
   ``}`` (a generation cut off by the token budget) is the failure ``unclosed``.
2. ``[[a, b]]`` is read only when the text has no ``\\boxed{`` at all (then its last occurrence).
3. The content is split at commas outside braces. Simple LaTeX wrappers around the whole content or around one
   score are removed (repeatedly): ``\\text{..}``, ``\\textbf{..}``, ``\\textrm{..}``, ``\\mathbf{..}``,
   ``\\mathrm{..}``, ``\\bm{..}``, ``\\boldsymbol{..}`` and a bare ``{..}`` group, so ``\\textbf{8}`` is 8 and
   ``\\text{8, 2}`` is (8, 2). Each score must then be an optionally signed integer; anything else
   (``\\frac{1}{2}``, ``8.5``, ``x``, ``\\textbf{8, 2}`` as one of several scores) is ``non_integer``.
4. Wrong count -> ``wrong_count``; an integer outside ``[low, high]`` -> ``out_of_range``.

Only the generated text is ever parsed, never the prompt, so a response that itself contains
``Scores: \\boxed{10, 1}`` cannot change a score. In hot paths a failure is a value, not an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BOX_OPEN_RE = re.compile(r"\\boxed\s*\{")
BRACKETS_RE = re.compile(r"\[\[([^\[\]]*)\]\]")
INT_RE = re.compile(r"^[+-]?\d+$")
WRAPPERS = ("text", "textbf", "textrm", "mathbf", "mathrm", "bm", "boldsymbol")
WRAPPER_RE = re.compile(r"\\(?:" + "|".join(WRAPPERS) + r")\s*\{")

MISSING = "missing"
UNCLOSED = "unclosed"
WRONG_COUNT = "wrong_count"
NON_INTEGER = "non_integer"
OUT_OF_RANGE = "out_of_range"
FAILURE_REASONS = (MISSING, UNCLOSED, WRONG_COUNT, NON_INTEGER, OUT_OF_RANGE)


@dataclass(frozen=True)
class ParseResult:
    """Scores in the order the judge saw the responses, or ``error`` (one of ``FAILURE_REASONS``)."""

    scores: tuple[int, ...] | None
    error: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.scores is not None


def _matching_brace(text: str, open_at: int) -> int | None:
    """Index of the ``}`` that closes the ``{`` at ``open_at``, or None when it is never closed."""
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _unwrap(part: str) -> str:
    """Strip whitespace and any simple wrappers (``\\textbf{..}``, ``{..}``, ...) that enclose all of ``part``."""
    while True:
        part = part.strip()
        m = WRAPPER_RE.match(part)
        open_at = m.end() - 1 if m else (0 if part.startswith("{") else None)
        if open_at is None or _matching_brace(part, open_at) != len(part) - 1:
            return part
        part = part[open_at + 1 : -1]


def _split_top_level(content: str) -> list[str]:
    """Split at commas that are not inside braces."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(content):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(content[start:i])
            start = i + 1
    parts.append(content[start:])
    return parts


def last_box(text: str) -> tuple[str | None, str | None, str]:
    """``(content, None, "")`` of the last ``\\boxed{..}`` (else the last ``[[..]]``), or ``(None, reason,
    detail)``."""
    opens = list(BOX_OPEN_RE.finditer(text))
    if opens:
        open_at = opens[-1].end() - 1
        close_at = _matching_brace(text, open_at)
        if close_at is None:
            tail = text[opens[-1].start() :][:60]
            return None, UNCLOSED, f"the last \\boxed{{ has no matching }}: {tail!r}"
        return text[open_at + 1 : close_at], None, ""
    brackets = BRACKETS_RE.findall(text)
    if brackets:
        return brackets[-1], None, ""
    return None, MISSING, "no \\boxed{...} or [[...]] in the generated text"


def extract_scores(text: str, n: int, low: int = 1, high: int = 10) -> ParseResult:
    """Parse ``n`` integer scores in ``[low, high]`` from the last ``\\boxed{}`` (or ``[[...]]``) of ``text``
    (rules in the module docstring).

    Example:
        >>> extract_scores("Analysis: ok. Scores: \\\\boxed{8, 3}", 2).scores
        (8, 3)
        >>> extract_scores("\\\\boxed{3, 9} no: \\\\boxed{\\\\textbf{8}, \\\\textbf{2}}", 2).scores
        (8, 2)
        >>> extract_scores("no scores here", 2).error
        'missing'
    """
    content, error, detail = last_box(text)
    if content is None:
        return ParseResult(None, error, detail)
    parts = [_unwrap(p) for p in _split_top_level(_unwrap(content))]
    if parts == [""]:
        parts = []
    if len(parts) != n:
        return ParseResult(None, WRONG_COUNT, f"expected {n} scores, found {len(parts)}: {content!r}")
    scores: list[int] = []
    for part in parts:
        if not INT_RE.match(part):
            return ParseResult(None, NON_INTEGER, f"{part!r} is not an integer (in {content!r})")
        value = int(part)
        if not low <= value <= high:
            return ParseResult(None, OUT_OF_RANGE, f"{value} is outside [{low}, {high}]")
        scores.append(value)
    return ParseResult(tuple(scores))
