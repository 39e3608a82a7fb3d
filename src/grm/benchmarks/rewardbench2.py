"""RewardBench 2 (allenai/reward-bench-2, split ``test``; hub only here: no local copy).

Hub row (``rewardbench/utils.py::load_bon_dataset_v2`` @ 05a9005 reads these fields): ``{"id": str, "prompt": str,
"chosen": [str, ...], "rejected": [str, ...], "num_correct": int, "num_rejected": int, "total_completions": int,
"models": [...], "subset": "Factuality"|"Focus"|"Math"|"Precise IF"|"Safety"|"Ties"}``. Every non-Ties row has one
chosen and three rejected (best-of-4); a Ties row has several correct answers and its id is ``ref:<n>`` (the one-answer
twin) or ``tied:<n>``.

Converted item: ``id = rewardbench2/{subset}/{id}``, ``responses = chosen + rejected`` (correct ones first),
``best = 0``, ``subset``, ``meta = {num_correct}`` plus, for Ties, ``{ties_type: ref|tied, ties_prompt: <n>}``.
The GRM rates all of a row's responses in one judgement (n = 4), each sample with its own shuffle (the standard
protocol). Scoring (``grm.benchmarks.scoring.rewardbench2_scores``): best-of-4 credit ``1/k`` when the chosen
response is among the k tied at the top (the ``half`` policy: official ``reroll_and_score_dataset``), the Ties
subset's own formula (``process_single_model``), overall = the mean of the subsets.
"""

from __future__ import annotations

from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, HubSource, register
from grm.benchmarks.rows import RowError, build_item, make_id, need
from grm.benchmarks.scoring import RB2_TIES
from grm.schemas import Item

NAME = "rewardbench2"
HUB_PATH = "allenai/reward-bench-2"
HUB_SPLIT = "test"
TIES_TYPES = ("ref", "tied")


def _texts(row: dict[str, Any], key: str) -> list[str]:
    value = need(row, key, list)
    if not value:
        raise RowError(key, "empty list; every row has at least one chosen and one rejected response")
    for i, text in enumerate(value):
        if not isinstance(text, str) or not text.strip():
            raise RowError(f"{key}[{i}]", "missing or empty response")
    return list(value)


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One RewardBench 2 row -> one item with every response (correct ones first, ``best = 0``).

    Args:
        row: a hub row (see the module docstring).
        index: row position (unused: rows carry their id).

    Returns:
        ``[item]``.
    """
    subset = need(row, "subset")
    original = need(row, "id", (str, int))
    chosen, rejected = _texts(row, "chosen"), _texts(row, "rejected")
    num_correct = row.get("num_correct", len(chosen))
    if isinstance(num_correct, bool) or not isinstance(num_correct, int) or num_correct != len(chosen):
        raise RowError("num_correct", f"{num_correct!r} but the row has {len(chosen)} chosen responses")
    total = row.get("total_completions", len(chosen) + len(rejected))
    if total != len(chosen) + len(rejected):
        raise RowError("total_completions", f"{total!r} but the row has {len(chosen) + len(rejected)} responses")
    meta: dict[str, Any] = {"num_correct": num_correct}
    if subset.lower() == RB2_TIES.lower():
        kind, _, prompt = str(original).partition(":")
        if kind not in TIES_TYPES or not prompt:
            raise RowError("id", f"{original!r}: a Ties id is 'ref:<n>' or 'tied:<n>'")
        meta.update(ties_type=kind, ties_prompt=prompt)
    elif len(chosen) != 1:
        raise RowError("chosen", f"{len(chosen)} chosen responses; a best-of-N row ({subset}) has exactly one")
    item = build_item(
        id=make_id(NAME, subset, original),
        query=need(row, "prompt"),
        responses=[*chosen, *rejected],
        best=0,
        source=NAME,
        subset=subset,
        meta=meta,
    )
    return [item]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="RewardBench 2 (1,865 prompts: best-of-4 in Factuality, Focus, Math, Precise IF, Safety; Ties)",
        convert=convert_row,
        scorer="rewardbench2",
        official_tie_policy="half",  # reroll_and_score_dataset: 1/k when the chosen is among k tied at the max
        hub=(HubSource(HUB_PATH, HUB_SPLIT),),
        notes="hub only (not in benchdata); overall = mean of the six subsets (the paper's; not in the code)",
    )
)
