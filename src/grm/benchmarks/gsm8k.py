"""GSM8K correctness pairs (PPE-Correctness-style, built locally from OpenAI's labelled model solutions).

Local ``gsm8k/example_model_solutions.jsonl``: one line per GSM8K test question, ``{"question", "ground_truth",
"6b_finetuning": {"is_correct": bool, "solution": str}, "6b_verification": {...}, "175b_finetuning": {...},
"175b_verification": {...}}``.

For each question every (correct, incorrect) pair of the four model solutions becomes one item:
``responses = [correct, incorrect]``, ``best = 0``, ``id = gsm8k-pairs/test/{line index}:{correct}>{incorrect}``
(solver names as above), ``subset = "test"``. 731 questions have both kinds -> 2,429 pairs; questions with only correct
or only incorrect solutions give none. The ground-truth solution is not used as a response (different style: it
would be an easy tell). Scoring: plain pairwise accuracy (PPE: strict ``>``; a tie is wrong).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, register
from grm.benchmarks.rows import RowError, Shard, build_item, iter_jsonl, make_id, need
from grm.schemas import Item

NAME = "gsm8k-pairs"
LOCAL_FILE = Path("gsm8k") / "example_model_solutions.jsonl"
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One question with four labelled solutions -> all (correct, incorrect) pairs.

    Args:
        row: a source row (see the module docstring).
        index: 0-based question index (the source has no id).

    Returns:
        0 to 4 items.
    """
    question = need(row, "question")
    solutions: dict[str, tuple[str, bool]] = {}
    for solver in SOLVERS:
        entry = row.get(solver)
        if not isinstance(entry, dict):
            raise RowError(solver, f"missing or not an object; expected the solvers {list(SOLVERS)}")
        correct = need(entry, "is_correct", bool, prefix=f"{solver}.")
        solutions[solver] = (need(entry, "solution", prefix=f"{solver}."), correct)
    good = [s for s in SOLVERS if solutions[s][1]]
    bad = [s for s in SOLVERS if not solutions[s][1]]
    items = []
    for g in good:
        for b in bad:
            if solutions[g][0].strip() == solutions[b][0].strip():
                continue  # identical text labelled both ways cannot be judged
            items.append(
                build_item(
                    id=make_id(NAME, "test", f"{index}:{g}>{b}"),
                    query=question,
                    responses=[solutions[g][0], solutions[b][0]],
                    best=0,
                    source=NAME,
                    subset="test",
                    meta={"question_index": index, "correct_solver": g, "incorrect_solver": b},
                )
            )
    return items


def local_shards(root: Path) -> list[Shard]:
    """A single shard: the solutions file, streamed line by line."""
    path = root / LOCAL_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; is {root} the benchdata folder (see its README)?")
    return [lambda: iter_jsonl(path)]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="GSM8K test: correct vs incorrect model solutions of the same question (2,429 pairs)",
        convert=convert_row,
        scorer="accuracy",
        official_tie_policy="strict",  # PPE correctness: strict pairwise accuracy (SCORING.md §6)
        local_shards=local_shards,
    )
)
