"""PPE (Preference Proxy Evaluations, lmarena): human preference and the five correctness sets. Hub only.

Human preference -- ``lmarena-ai/PPE-Human-Preference-V1`` split ``test`` (~16k Chatbot Arena battles):
``{"question_id": str, "prompt": str, "response_1": str, "response_2": str, "model_a": str, "model_b": str,
"winner": "model_a"|"model_b"|"tie"|"tie (bothbad)", "language": str, ...}`` -> ``responses = [response_1,
response_2]``, ``best = 0`` if ``winner == model_a`` else 1; ties are skipped (no ground truth).
``id = ppe-preference/human/{question_id}-{row index}`` (a question can appear in several battles).

Correctness -- ``lmarena-ai/PPE-{MMLU-Pro,MATH,GPQA,MBPP-Plus,IFEval}-Best-of-K`` split ``train``:
``{"question_id", "prompt", "response_1" .. "response_K", "scores": [bool|float per response, 0-based],
"sampled_conflict_pairs": [[i, j], ...] (0-based indices into response_1..K)}`` -> one pairwise item per conflict
pair ``[response_{i+1}, response_{j+1}]`` with ``best`` = the correct one (pairs with equal scores are skipped).
``id = ppe-correctness/{subset}/{question_id}:{i}-{j}``, ``subset`` in ``CORRECTNESS_SUBSETS``.
Scoring (SCORING.md §6, third-party): strict pairwise accuracy per subset, then the unweighted mean of the five.
"""

from __future__ import annotations

import functools
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, build_item, make_id, need
from grm.schemas import Item

PREFERENCE = "ppe-preference"
CORRECTNESS = "ppe-correctness"
PREFERENCE_HUB = "lmarena-ai/PPE-Human-Preference-V1"
CORRECTNESS_HUB = {
    "mmlu-pro": "lmarena-ai/PPE-MMLU-Pro-Best-of-K",
    "math": "lmarena-ai/PPE-MATH-Best-of-K",
    "gpqa": "lmarena-ai/PPE-GPQA-Best-of-K",
    "mbpp-plus": "lmarena-ai/PPE-MBPP-Plus-Best-of-K",
    "ifeval": "lmarena-ai/PPE-IFEval-Best-of-K",
}
CORRECTNESS_SUBSETS = tuple(CORRECTNESS_HUB)
WINNERS = {"model_a": 0, "model_b": 1}
TIES = ("tie", "tie (bothbad)")


def convert_preference_row(row: dict[str, Any], index: int) -> list[Item]:
    """One arena battle -> one pairwise item; ties -> no item.

    Args:
        row: a ``PPE-Human-Preference-V1`` row.
        index: row position (part of the id: question ids repeat across battles).

    Returns:
        ``[item]`` or ``[]`` for a tie.
    """
    winner = need(row, "winner")
    if winner in TIES:
        return []
    if winner not in WINNERS:
        raise RowError("winner", f"{winner!r} is not one of {list(WINNERS) + list(TIES)}")
    qid = need(row, "question_id", (str, int))
    item = build_item(
        id=make_id(PREFERENCE, "human", f"{qid}-{index}"),
        query=need(row, "prompt"),
        responses=[need(row, "response_1"), need(row, "response_2")],
        best=WINNERS[winner],
        source=PREFERENCE,
        subset="human",
        meta={k: row[k] for k in ("model_a", "model_b", "language") if isinstance(row.get(k), str)},
    )
    return [item]


def convert_correctness_row(row: dict[str, Any], index: int, subset: str = "math") -> list[Item]:
    """One best-of-K row -> one pairwise item per sampled conflict pair.

    Args:
        row: a ``PPE-*-Best-of-K`` row.
        index: row position (used when the row has no ``question_id``).
        subset: one of ``CORRECTNESS_SUBSETS``.

    Returns:
        The pair items (possibly none).
    """
    if subset not in CORRECTNESS_SUBSETS:
        raise ValueError(f"Unknown PPE correctness subset {subset!r}. Available: {', '.join(CORRECTNESS_SUBSETS)}")
    qid = row.get("question_id", index)
    scores = need(row, "scores", list)
    pairs = need(row, "sampled_conflict_pairs", list)
    items = []
    for p, pair in enumerate(pairs):
        if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(isinstance(x, int) for x in pair):
            raise RowError(f"sampled_conflict_pairs[{p}]", f"expected two response indices, got {pair!r}")
        i, j = pair
        for x in (i, j):
            if not 0 <= x < len(scores):
                raise RowError(f"sampled_conflict_pairs[{p}]", f"index {x} outside scores (length {len(scores)})")
        if float(scores[i]) == float(scores[j]):
            continue
        responses = [need(row, f"response_{i + 1}"), need(row, f"response_{j + 1}")]
        items.append(
            build_item(
                id=make_id(CORRECTNESS, subset, f"{qid}:{i}-{j}"),
                query=need(row, "prompt"),
                responses=responses,
                best=0 if float(scores[i]) > float(scores[j]) else 1,
                source=CORRECTNESS,
                subset=subset,
            )
        )
    return items


PREFERENCE_SPEC = register(
    BenchmarkSpec(
        name=PREFERENCE,
        description="PPE human preference (Chatbot Arena battles, ties dropped); hub only",
        convert=convert_preference_row,
        scorer="accuracy",
        official_tie_policy="strict",
        hub=(HubSource(PREFERENCE_HUB, "test"),),
    )
)

CORRECTNESS_SPEC = register(
    BenchmarkSpec(
        name=CORRECTNESS,
        description="PPE correctness: conflict pairs of MMLU-Pro, MATH, GPQA, MBPP-Plus, IFEval (mean of 5); hub only",
        convert=functools.partial(convert_correctness_row, subset="math"),
        scorer="ppe_correctness",
        official_tie_policy="strict",
        hub=tuple(
            HubSource(path, "train", convert=functools.partial(convert_correctness_row, subset=s))
            for s, path in CORRECTNESS_HUB.items()
        ),
    )
)
