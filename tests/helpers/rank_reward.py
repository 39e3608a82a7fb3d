"""A GRPO reward for launched tests: deterministic by rank and position, and it records how many rollouts each rank
scored per call (the ranks import it from the pickled reward list, so it must live in an importable module)."""

from __future__ import annotations

import os
from pathlib import Path

# rank 0 scores its rollouts 1, -1, 1, -1 (mean 0), every other rank 1, 1, 1, -1 (mean 0.5): over 2 ranks with
# equal shares the gathered mean is 0.25, which TRL only logs if it gathers the rewards over the ranks
PATTERNS = {0: (1.0, -1.0, 1.0, -1.0)}
OTHER = (1.0, 1.0, 1.0, -1.0)


class RankPatternReward:
    """``rewards[i] = pattern(rank)[i % 4]``; appends ``len(completions)`` to ``log_dir/rank{RANK}.txt``."""

    __name__ = "rank_pattern_reward"

    def __init__(self, log_dir: str | Path):
        self.log_dir = str(log_dir)

    def __call__(self, completions: list, **kwargs: object) -> list[float]:
        rank = int(os.environ.get("RANK", "0"))
        with (Path(self.log_dir) / f"rank{rank}.txt").open("a", encoding="utf-8") as fh:
            fh.write(f"{len(completions)}\n")
        pattern = PATTERNS.get(rank, OTHER)
        return [pattern[i % len(pattern)] for i in range(len(completions))]


def calls(log_dir: str | Path) -> dict[int, list[int]]:
    """``{rank: [rollouts scored per call]}`` from the files ``RankPatternReward`` wrote."""
    out = {}
    for path in sorted(Path(log_dir).glob("rank*.txt")):
        out[int(path.stem.removeprefix("rank"))] = [int(x) for x in path.read_text().split()]
    return out
