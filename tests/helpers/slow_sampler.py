"""A world teacher that is slow and announces each shard (the Ray executor's kill-a-worker test)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from grm.world.teacher import TeacherSampler


class SlowTeacher(TeacherSampler):
    """``TeacherSampler`` that touches ``{flag_dir}/{pid}`` when a shard starts and sleeps ``delay`` seconds."""

    def __init__(self, flag_dir: str, delay: float = 0.3, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.flag_dir = Path(flag_dir)
        self.delay = delay

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        (self.flag_dir / str(os.getpid())).touch()
        time.sleep(self.delay)
        return super().generate(prompts, n, temperature, max_new_tokens, seed)


def make(flag_dir: str, delay: float = 0.3, seed: int = 0) -> SlowTeacher:
    return SlowTeacher(flag_dir, delay, seed)
