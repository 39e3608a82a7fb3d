"""What the study scripts share: reading a finished `grm run` project's stage outputs and recording results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from grm.schemas import Item
from grm.world.generator import GENERAL_PROMPT, World


def stage_file(project: Path, stage: str, name: str) -> Path:
    """The (newest) output ``name`` of ``stage`` in a project's stage store."""
    found = sorted((project / "artifacts" / "stages" / stage).glob(f"*/{name}"))
    if not found:
        raise FileNotFoundError(f"{project}: no artifacts/stages/{stage}/*/{name}; run `grm run --project-dir` first")
    return found[-1]


def read_split(project: Path, split: str) -> list[Item]:
    """The items of ``split`` as the project's ``data.prepare`` stage wrote them."""
    path = stage_file(project, "data.prepare", f"{split}.jsonl")
    return [Item.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def record_result(record: dict[str, Any], results: Path) -> None:
    """Print ``record`` as one JSON line and append it to ``results``."""
    line = json.dumps(record, default=str)
    print(line)
    results.parent.mkdir(parents=True, exist_ok=True)
    with results.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


def general_accuracy(sampler: Any, world: World, queries: list[str]) -> float:
    """Share of ``queries`` a model answers correctly (greedy) in the general-instruction format.

    ``sampler`` is any ``grm.sampling`` backend; the prompts are ``Query: 17 + 25 ?\nAnswer:``.
    """
    prompts = [GENERAL_PROMPT.format(query=q) for q in queries]
    outs = sampler.generate(prompts, n=1, temperature=0.0, max_new_tokens=8, seed=0)
    return sum(o[0].strip() == world.solve(q) for q, o in zip(queries, outs, strict=True)) / max(len(queries), 1)


def within_item_auc(pairs_by_item: dict[str, tuple[list[float], list[float]]]) -> float:
    """P(score of a correct sample > score of an incorrect sample of the same item), ties count 1/2."""
    wins = []
    for pos, neg in pairs_by_item.values():
        wins.extend(1.0 if x > z else 0.5 if x == z else 0.0 for x in pos for z in neg)
    return float(np.mean(wins)) if wins else float("nan")
