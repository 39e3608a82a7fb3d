"""The canonical preference item and its JSONL loader.

One JSON object per line::

    {"id": "world/arith/17", "query": "...", "responses": ["...", "..."], "best": 1}
    {"id": "world/arith/18", "query": "...", "responses": ["..."], "label": 0}

``query`` is a string or a list of chat messages (``{"role": ..., "content": ...}``) ending with a user turn.
n >= 2 responses carry ``best`` (0-based); n == 1 carries ``label`` (0/1 correctness). Optional: ``ratings``
(ground-truth rewards with a unique maximum, consistent with ``best``), ``source``, ``subset``.
Loading reports every bad row as ``file:line: field: problem`` and loads nothing from a bad file. Texts may hold
newlines and any Unicode except NUL (``\\u0000``) and lone surrogates; numbers must be finite (no NaN/Infinity).
A file without a single row is refused (it would "score 0 items" silently).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm.errors import UserError
from grm.files import checked_records, write_jsonl_atomic
from grm.text_keys import comparison_key, is_blank

ROLES = ("system", "user", "assistant")
KNOWN_FIELDS = ("id", "query", "responses", "best", "label", "ratings", "source", "subset", "meta")


class DataError(UserError, ValueError):
    """Raised when a data file has bad rows; ``errors`` holds every ``file:line: field: problem`` line."""

    def __init__(self, path: str | Path, errors: list[str]):
        self.errors = errors
        shown = "\n".join(errors[:50])
        more = f"\n... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} bad row(s) in {path}; nothing was loaded. Fix these rows:\n{shown}{more}")
        self.path = str(path)


@dataclass(frozen=True)
class Item:
    """One preference item: a query, n >= 1 responses and a ground-truth label."""

    id: str
    query: str | tuple[dict[str, str], ...]
    responses: tuple[str, ...]
    best: int | None = None  # 0-based index of the best response (n >= 2)
    label: int | None = None  # 0/1 correctness of the only response (n == 1)
    ratings: tuple[float, ...] | None = None  # optional ground-truth rewards, unique maximum
    source: str | None = None
    subset: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def n(self) -> int:
        return len(self.responses)

    @classmethod
    def from_dict(cls, record: dict[str, Any], *, invisible_responses_ok: bool = False) -> Item:
        """Build an item from a dict; raises ``ValueError`` listing every problem (``validate_record``)."""
        problems = validate_record(record, invisible_responses_ok=invisible_responses_ok)
        if problems:
            raise ValueError("; ".join(f"{f}: {p}" for f, p in problems))
        query = record["query"]
        if isinstance(query, list):
            query = tuple({"role": m["role"], "content": m["content"]} for m in query)
        ratings = record.get("ratings")
        return cls(
            id=record["id"],
            query=query,
            responses=tuple(record["responses"]),
            best=record.get("best"),
            label=record.get("label"),
            ratings=tuple(float(r) for r in ratings) if ratings is not None else None,
            source=record.get("source"),
            subset=record.get("subset"),
            meta=dict(record.get("meta") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "query": list(self.query) if isinstance(self.query, tuple) else self.query,
            "responses": list(self.responses),
        }
        for key in ("best", "label", "source", "subset"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        if self.ratings is not None:
            out["ratings"] = list(self.ratings)
        if self.meta:
            out["meta"] = self.meta
        return out

    def query_text(self) -> str:
        """The user's last turn (used for decontamination and short displays)."""
        if isinstance(self.query, str):
            return self.query
        return self.query[-1]["content"]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def text_problem(text: str) -> str | None:
    """What makes ``text`` unusable as a prompt part (a NUL character, a lone surrogate), or None."""
    if "\x00" in text:
        return f"holds a NUL character (\\u0000) at position {text.index(chr(0))}; remove it"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds a lone surrogate \\u{ord(text[exc.start]):04x} at position {exc.start} (not valid Unicode)"
    return None


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


Problems = list[tuple[str, str]]


def validate_record(record: Any, *, invisible_responses_ok: bool = False) -> Problems:
    """Return every ``(field, problem)`` of one decoded JSONL record; empty when it is valid.

    ``invisible_responses_ok``: a response of only invisible characters (RMB's rejected answers ``"\u200b"``) is
    a response as published; benchmark rows keep it so that official item counts hold. Training data refuses it.
    """
    if not isinstance(record, dict):
        return [("<row>", f"expected a JSON object, got {type(record).__name__}")]
    problems: Problems = []
    unknown = sorted(set(record) - set(KNOWN_FIELDS))
    if unknown:
        problems.append((unknown[0], f"unknown field(s) {unknown}; valid fields are {list(KNOWN_FIELDS)}"))
    item_id = record.get("id")
    if not isinstance(item_id, str) or is_blank(item_id):
        problems.append(("id", "missing or not a non-empty string (whitespace or invisible characters only)"))
    elif text_problem(item_id):
        problems.append(("id", str(text_problem(item_id))))
    problems += _query_problems(record.get("query"))
    responses = record.get("responses")
    n = len(responses) if isinstance(responses, list) else 0
    problems += _response_problems(responses, invisible_responses_ok)
    best, label = record.get("best"), record.get("label")
    problems += _answer_problems(best, label, n)
    ratings = record.get("ratings")
    if ratings is not None and n:
        problems += _ratings_problems(ratings, n, best)
    for key in ("source", "subset"):
        if key in record and record[key] is not None and not isinstance(record[key], str):
            problems.append((key, "must be a string"))
    if "meta" in record and not isinstance(record["meta"], dict):
        problems.append(("meta", "must be an object"))
    return problems


def _query_problems(query: Any) -> Problems:
    """``query``: a non-blank string, or chat messages ending with the user's turn."""
    if isinstance(query, str):
        if is_blank(query):
            return [("query", "empty string (or only whitespace/invisible characters such as U+200B)")]
        return [("query", str(text_problem(query)))] if text_problem(query) else []
    if not isinstance(query, list):
        return [("query", "missing, or neither a string nor a list of chat messages")]
    problems: Problems = [] if query else [("query", "empty message list")]
    for i, msg in enumerate(query):
        if not isinstance(msg, dict) or set(msg) - {"role", "content"} or "role" not in msg or "content" not in msg:
            problems.append((f"query[{i}]", "must be an object with exactly 'role' and 'content'"))
        elif msg["role"] not in ROLES:
            problems.append((f"query[{i}].role", f"{msg['role']!r} is not one of {list(ROLES)}"))
        elif not isinstance(msg["content"], str) or is_blank(msg["content"]):
            problems.append((f"query[{i}].content", "missing or empty (or only whitespace/invisible characters)"))
        elif text_problem(msg["content"]):
            problems.append((f"query[{i}].content", str(text_problem(msg["content"]))))
    if query and isinstance(query[-1], dict) and query[-1].get("role") != "user":
        problems.append(("query", "the last message must be the user's turn"))
    return problems


def _response_problems(responses: Any, invisible_ok: bool) -> Problems:
    """``responses``: a non-empty list of non-blank strings (``invisible_ok``: see ``validate_record``)."""
    if not isinstance(responses, list) or not responses:
        return [("responses", "missing or not a non-empty list")]
    problems: Problems = []
    for i, resp in enumerate(responses):
        blank = not resp.strip() if invisible_ok and isinstance(resp, str) else None
        if not isinstance(resp, str) or (blank if blank is not None else is_blank(resp)):
            problems.append(
                (f"responses[{i}]", "must be a non-empty string (not only whitespace/invisible characters)")
            )
        elif text_problem(resp):
            problems.append((f"responses[{i}]", str(text_problem(resp))))
    return problems


def _answer_problems(best: Any, label: Any, n: int) -> Problems:
    """The ground truth: ``best`` (0-based index) for n >= 2 responses, ``label`` (0/1) for one."""
    problems: Problems = []
    if n >= 2:
        if label is not None:
            problems.append(("label", f"only for single responses (n = 1); this row has n = {n}, use 'best'"))
        if best is None:
            problems.append(("best", f"missing: rows with n = {n} responses need the 0-based index of the best"))
        elif not _is_int(best) or not 0 <= best < n:
            problems.append(("best", f"{best!r} is not an integer in [0, {n - 1}]"))
    elif n == 1:
        if best is not None:
            problems.append(("best", "only for n >= 2 responses; a single response needs 'label' (0 or 1)"))
        if label is None:
            problems.append(("label", "missing: a single response needs a 0/1 correctness label"))
        elif not _is_int(label) or label not in (0, 1):
            problems.append(("label", f"{label!r} is not 0 or 1"))
    return problems


def _ratings_problems(ratings: Any, n: int, best: Any) -> Problems:
    """``ratings``: one finite number per response, with a unique maximum at ``best``."""
    if not isinstance(ratings, list) or len(ratings) != n:
        return [("ratings", f"must be a list of {n} numbers (one per response)")]
    if not all(isinstance(r, int | float) and not isinstance(r, bool) for r in ratings):
        return [("ratings", "every rating must be a number")]
    if not all(_finite(r) for r in ratings):
        return [("ratings", "every rating must be a finite number (no NaN, Infinity or huge integers)")]
    if n >= 2:
        top = max(ratings)
        if sum(1 for r in ratings if r == top) > 1:
            return [("ratings", "the maximum is tied; ground truth needs a unique best response")]
        if _is_int(best) and 0 <= best < n and ratings[best] != top:
            return [("ratings", f"the maximum is at {ratings.index(top)}, but best = {best}")]
    return []


def read_items(path: str | Path, *, allow_empty: bool = False) -> list[Item]:
    """Load canonical items from JSONL. Raises ``DataError`` naming every bad row; loads nothing then.

    Blank lines are skipped. Ids must be unique within the file. A file with no rows is refused unless
    ``allow_empty``.

    Raises:
        DataError: bad rows (``file:line: field: problem``) or no rows at all.
        MissingFileError / InputFileError: the file is missing, a folder, compressed or not UTF-8.
    """
    path = Path(path)
    errors: list[str] = []
    items: list[Item] = []
    seen: dict[str, tuple[int, str]] = {}
    what = "JSONL file of items (write one with `grm world` or a converter)"
    for lineno, record in checked_records(path, what, validate_record, errors):
        key = comparison_key(record["id"])
        if key in seen:
            first, first_id = seen[key]
            same = (
                ""
                if first_id == record["id"]
                else f" after Unicode NFKC and whitespace/invisible-character folding: {first_id!r}"
            )
            errors.append(f"{path}:{lineno}: id: duplicate {record['id']!r} (first on line {first}{same})")
            continue
        seen[key] = (lineno, record["id"])
        items.append(Item.from_dict(record))
    if errors:
        raise DataError(path, errors)
    if not items and not allow_empty:
        raise DataError(path, [f"{path}: <file>: no rows (the file is empty); write one JSON object per line"])
    return items


def write_items(path: str | Path, items: Iterable[Item]) -> Path:
    """Write items as canonical JSONL, atomically."""
    return write_jsonl_atomic(path, (it.to_dict() for it in items))
