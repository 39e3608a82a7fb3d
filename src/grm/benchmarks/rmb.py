"""RMB (Zhou et al., ICLR 2025): pairwise and best-of-N sets, helpfulness and harmlessness.

Local copy: ``rmb/RMB_dataset/{Pairwise_set,BoN_set}/{Helpfulness/<category>/<subcategory>,Harmlessness/<S..>}.json``
(file names contain spaces; each file is one JSON list). RMB has no official HF dataset; ``convert_row`` accepts the
same rows from any ``datasets.Dataset`` built from these files.

Pairwise row: ``{"pair_uid", "conversation_input": [{"role", "content", "language"}, ...], "chosen": {"llm_name",
"answer"}, "reject": {"llm_name", "answer"}, "category_path": "Pairwise_set/Helpfulness/Chat/Discussion"}`` (note
``reject``, not ``rejected``) -> ``responses = [chosen, reject]``, ``best = 0``.

BoN row: ``{"bon_uid", "conversation_input", "bon_best": {...}, "loser_list": [{...}, ...], "category_path":
"BoN_set/..."}`` -> one item with ``responses = [bon_best, *losers]``, ``best = 0``; it is judged with all responses at
once and is correct only if the best response wins alone (SPEC §7; tie => wrong under ``strict``).

``id = rmb/{category_path}/{uid}``, ``subset = category_path``; ``meta.section`` is one of ``SECTIONS``.
The conversation drops the per-message ``language`` key; a one-turn conversation becomes a plain string.
Scoring: ``grm.benchmarks.scoring.rmb_sections``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, register
from grm.benchmarks.rows import (
    RowError,
    Shard,
    build_item,
    chat_messages,
    iter_json_list,
    make_id,
    need,
    round_robin,
    simplify_query,
)
from grm.schemas import Item

NAME = "rmb"
LOCAL_DIR = Path("rmb") / "RMB_dataset"
SECTIONS = ("pairwise_helpfulness", "pairwise_harmlessness", "bon_helpfulness", "bon_harmlessness")
_SET_PREFIX = {"Pairwise_set": "pairwise", "BoN_set": "bon"}


def section_of(category_path: str) -> str:
    """``Pairwise_set/Helpfulness/Chat/Discussion`` -> ``pairwise_helpfulness``.

    Example:
        >>> section_of("BoN_set/Harmlessness/S1")
        'bon_harmlessness'
    """
    parts = category_path.split("/")
    if len(parts) < 2 or parts[0] not in _SET_PREFIX or parts[1] not in ("Helpfulness", "Harmlessness"):
        raise RowError(
            "category_path", f"{category_path!r} does not start with Pairwise_set|BoN_set/Helpfulness|Harmlessness"
        )
    return f"{_SET_PREFIX[parts[0]]}_{parts[1].lower()}"


def _answer(obj: Any, field: str) -> tuple[str, str | None]:
    answer = need(obj, "answer", prefix=f"{field}.") if isinstance(obj, dict) else None
    if answer is None:
        raise RowError(field, "expected an object with 'llm_name' and 'answer'")
    name = obj.get("llm_name")
    return answer, name if isinstance(name, str) else None


def convert_row(row: dict[str, Any], index: int) -> list[Item]:
    """One RMB row (pairwise or BoN, told apart by ``pair_uid`` / ``bon_uid``) -> one item.

    Args:
        row: a source row (see the module docstring).
        index: row position (unused: rows carry their own uid).

    Returns:
        ``[item]``.
    """
    category = need(row, "category_path")
    section = section_of(category)
    query = simplify_query(chat_messages(row.get("conversation_input"), "conversation_input"))
    if section.startswith("pairwise"):
        uid = need(row, "pair_uid", (str, int))
        chosen, chosen_model = _answer(row.get("chosen"), "chosen")
        if "reject" not in row and "rejected" in row:
            raise RowError("reject", "missing; RMB calls the rejected answer 'reject' (found 'rejected')")
        rejected, rejected_model = _answer(row.get("reject"), "reject")
        responses, models = [chosen, rejected], [chosen_model, rejected_model]
    else:
        uid = need(row, "bon_uid", (str, int))
        best, best_model = _answer(row.get("bon_best"), "bon_best")
        losers = need(row, "loser_list", list)
        if not losers:
            raise RowError("loser_list", "empty; a best-of-N item needs at least one loser")
        pairs = [_answer(loser, f"loser_list[{i}]") for i, loser in enumerate(losers)]
        responses = [best] + [a for a, _ in pairs]
        models = [best_model] + [m for _, m in pairs]
    item = build_item(
        id=make_id(NAME, category, uid),
        query=query,
        responses=responses,
        best=0,
        source=NAME,
        subset=category,
        meta={"section": section, "models": models},
    )
    return [item]


def local_files(root: Path) -> list[Path]:
    """The RMB json files, pairwise first, each set in sorted path order."""
    base = root / LOCAL_DIR
    if not base.is_dir():
        raise FileNotFoundError(f"{base} not found; is {root} the benchdata folder (see its README)?")
    return sorted(base.glob("Pairwise_set/**/*.json")) + sorted(base.glob("BoN_set/**/*.json"))


def local_shards(root: Path) -> list[Shard]:
    """One shard per section; each interleaves its files (subcategories), parsed lazily, so that ``--limit``
    covers all four sections and as many subcategories as it can."""
    by_section: dict[str, list[Shard]] = {}
    for path in local_files(root):
        rel = path.relative_to(root / LOCAL_DIR).parts
        key = f"{_SET_PREFIX.get(rel[0], rel[0])}_{rel[1].lower()}"
        by_section.setdefault(key, []).append(lambda p=path: iter_json_list(p))
    return [(lambda files=files: round_robin(files)) for files in by_section.values()]


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="RMB pairwise (14,543 local pairs, 3 files missing) + best-of-N (3,786 lists); 4 sections",
        convert=convert_row,
        scorer="rmb",
        official_tie_policy="strict",  # my_run_rm.py: chosen_reward > reject_reward; BoN: best > every loser
        local_shards=local_shards,
        notes="no official HF dataset; pairwise misses Idea Development, Creative Writing, Harmlessness/S11",
    )
)
