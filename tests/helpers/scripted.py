"""A scripted sampler for wiring tests: judges compact-template prompts by a rule, deterministically."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# compact template: "R1: ..." (multi-response) or "Response: ..." (single-response)
RESPONSE_RE = re.compile(r"^(?:R|Response ?)(\d*): (.*)$", re.M)


def shown_responses(prompt: str) -> list[str]:
    return [m.group(2) for m in RESPONSE_RE.finditer(prompt)]


class ScriptedSampler:
    """``rule(prompt, sample_index) -> scores in shown order`` (or None for an unparsable text)."""

    def __init__(self, rule: Callable[[str, int], Sequence[int] | None]):
        self.rule = rule
        self.calls: list[tuple[int, int]] = []  # (number of prompts, n) per generate call

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        self.calls.append((len(prompts), n))
        out = []
        for p in prompts:
            texts = []
            for j in range(n):
                scores = self.rule(p, j)
                body = "Specific Criteria: rule. Analysis: scripted."
                texts.append(body if scores is None else f"{body} Scores: \\boxed{{{', '.join(map(str, scores))}}}")
            out.append(texts)
        return out
