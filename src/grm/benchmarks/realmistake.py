"""ReaLMistake (Kamoi et al., COLM 2024): 900 single LLM responses labelled ``error`` / ``no_error``.

The data stays zipped (the authors ask that examples are not published in plain text): members
``data/<task>/<model>.jsonl`` of ``realmistake/data.zip`` are streamed with the password from its README.
Row schema: ``{"input": <full prompt given to the model>, "llm_response", "error_label": "error"|"no_error",
"error_categories": [...], "human_explanation", "metadata": {"id", "task_name", "llm_response_model", ...}}``.

Converted item: ``id = realmistake/{task}/{metadata.id}``, ``query = input``, ``responses = [llm_response]``,
``label = 1`` for ``no_error`` (the response is correct) and ``0`` for ``error`` -- the canonical n = 1 label means
"correct", so the benchmark's positive class (error) is ``label == 0``. ``subset = task``.
Scoring: ROC-AUC of the predicted score against the labels (threshold-free; equals the AUC of ``-score`` for the
"error" class). Not in the official repo, which reports accuracy/precision/recall/F1 of binary verdicts.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, register
from grm.benchmarks.rows import Row, RowError, Shard, build_item, make_id, need, parse_json_lines
from grm.schemas import Item

NAME = "realmistake"
LOCAL_ZIP = Path("realmistake") / "data.zip"
ZIP_PASSWORD = b"open-realmistake"  # published in the ReaLMistake README (benchdata/realmistake/README.md)
TASKS = ("math_word_problem_generation", "finegrained_fact_verification", "answerability_classification")
LABELS = {"no_error": 1, "error": 0}


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One ReaLMistake instance -> one single-response item (``label`` 1 = no error).

    Args:
        row: a source row (see the module docstring).
        index: row position (unused: rows carry ``metadata.id``).

    Returns:
        ``[item]``.
    """
    metadata = need(row, "metadata", dict)
    original = need(metadata, "id", prefix="metadata.")
    task = need(metadata, "task_name", prefix="metadata.")
    error_label = need(row, "error_label")
    if error_label not in LABELS:
        raise RowError("error_label", f"{error_label!r} is not one of {list(LABELS)}")
    item = build_item(
        id=make_id(NAME, task, original),
        query=need(row, "input"),
        responses=[need(row, "llm_response")],
        label=LABELS[error_label],
        source=NAME,
        subset=task,
        meta={
            "model": metadata.get("llm_response_model"),
            "error_categories": list(row.get("error_categories") or []),
            "difficulty": metadata.get("difficulty"),
        },
    )
    return [item]


def zip_members(path: Path) -> list[str]:
    """The data members (``data/<task>/<model>.jsonl``), sorted; ``example.jsonl`` and READMEs are left out."""
    with zipfile.ZipFile(path) as zf:
        return sorted(
            n for n in zf.namelist() if n.endswith(".jsonl") and n.count("/") == 2 and n.split("/")[1] in TASKS
        )


def iter_member(path: Path, member: str) -> Iterator[Row]:
    """Stream the rows of one zip member (decrypted on the fly; nothing is extracted to disk)."""
    with zipfile.ZipFile(path) as zf, zf.open(member, pwd=ZIP_PASSWORD) as raw:
        yield from parse_json_lines(io.TextIOWrapper(raw, encoding="utf-8"), f"{path}!{member}")


def local_shards(root: Path) -> list[Shard]:
    """One shard per (task, model) member."""
    path = root / LOCAL_ZIP
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {root} the benchdata folder (see its README)?")
    return [(lambda m=m: iter_member(path, m)) for m in zip_members(path)]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="ReaLMistake: 900 single responses, error / no_error (ROC-AUC of the predicted score)",
        convert=convert_row,
        scorer="realmistake",
        official_tie_policy="strict",  # n/a for the AUC; used only for the thresholded accuracy
        local_shards=local_shards,
    )
)
