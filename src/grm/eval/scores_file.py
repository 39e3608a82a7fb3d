"""A scalar RM's scores file: JSONL ``{"id": str, "scores": [number per response, item order]}``, read strictly."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from grm.schemas import DataError


def _score_row_problem(rec: Any) -> list[tuple[str, str]]:
    """The first ``(field, problem)`` of one decoded scores-file row (one per row, as before); empty when valid."""
    if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
        return [("id", "missing or not a string")]
    scores = rec.get("scores")
    if (
        not isinstance(scores, list)
        or not scores
        or not all(isinstance(s, int | float) and not isinstance(s, bool) for s in scores)
        or not all(math.isfinite(s) for s in scores)
    ):
        return [("scores", "must be a non-empty list of finite numbers")]
    return []


def read_scores_file(path: str | Path) -> dict[str, list[float]]:
    """Read a scalar RM's scores: JSONL ``{"id": str, "scores": [number per response, item order]}``.

    Raises:
        DataError: every bad line as ``file:line: field: problem``.
    """
    from grm.files import checked_records

    path = Path(path)
    out: dict[str, list[float]] = {}
    errors: list[str] = []
    what = "scores file (JSONL lines {'id': ..., 'scores': [...]})"
    for lineno, rec in checked_records(path, what, _score_row_problem, errors):
        if rec["id"] in out:
            errors.append(f"{path}:{lineno}: id: duplicate {rec['id']!r}")
            continue
        out[rec["id"]] = [float(s) for s in rec["scores"]]
    if not out and not errors:
        errors.append(f"{path}: <file>: no rows (the file is empty); write one line per item")
    if errors:
        raise DataError(path, errors)
    return out
