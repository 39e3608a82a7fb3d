"""The world teacher at ``delay`` seconds per generated text (to make queueing observable); records call sizes."""

from __future__ import annotations

import time

from grm.sampling import build_sampler


class SlowSampler:
    """The world teacher, ``delay`` seconds per generated text; ``calls`` holds prompts x n of each call."""

    def __init__(self, delay: float) -> None:
        self.inner = build_sampler("world-teacher")
        self.delay = delay
        self.calls: list[int] = []

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        self.calls.append(len(prompts) * n)
        time.sleep(self.delay * len(prompts) * n)
        return self.inner.generate(prompts, n, temperature, max_new_tokens, seed)
