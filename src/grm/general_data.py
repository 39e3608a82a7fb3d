"""``general.jsonl``: the general-instruction examples mixed into RFT (``rft.general_ratio``) and RL
(``rl.general_coef``), one JSON object per line::

    {"prompt": "Query: capital of Zorvia ?\\nAnswer:", "completion": " Lima"}

``prompt`` and ``completion`` are non-empty strings (the loss covers the completion only, so it usually starts with
the space or newline that follows the prompt); no other field is read, so any other field is refused (a typo such
as ``"response"`` would otherwise train on nothing). Blank lines are skipped; every bad row is reported as
``file:line: field: problem`` and nothing is loaded from a bad file.
"""

from __future__ import annotations

from pathlib import Path

from grm.files import checked_records
from grm.schemas import DataError, text_problem
from grm.text_keys import is_blank

FIELDS = ("prompt", "completion")


def row_problems(record: object) -> list[tuple[str, str]]:
    """Every ``(field, problem)`` of one decoded ``general.jsonl`` row; empty when it is valid."""
    if not isinstance(record, dict):
        return [("<row>", f"expected a JSON object with 'prompt' and 'completion', got {type(record).__name__}")]
    problems = []
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        problems.append((unknown[0], f"unknown field(s) {unknown}; a general example has exactly {list(FIELDS)}"))
    for name in FIELDS:
        value = record.get(name)
        if not isinstance(value, str) or is_blank(value):
            problems.append((name, "missing or not a non-empty string (whitespace or invisible characters only)"))
        elif text_problem(value):
            problems.append((name, str(text_problem(value))))
    return problems


def read_general(path: str | Path) -> list[dict[str, str]]:
    """Load ``general.jsonl`` strictly: ``[{"prompt": ..., "completion": ...}, ...]`` (an empty file gives []).

    Raises:
        DataError: every bad row as ``file:line: field: problem``.
        MissingFileError / InputFileError: the file is missing, compressed or not UTF-8.
    """
    path = Path(path)
    errors: list[str] = []
    rows: list[dict[str, str]] = []
    for _, record in checked_records(path, "JSONL file of general examples (prompt/completion)", row_problems, errors):
        rows.append({"prompt": record["prompt"], "completion": record["completion"]})
    if errors:
        raise DataError(path, errors)
    return rows
