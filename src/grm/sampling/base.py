"""The sampler interface every backend implements (HF transformers, OpenAI-compatible HTTP, vLLM, world teacher)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Sampler(Protocol):
    """Generates ``n`` continuations per prompt.

    ``generate(prompts, n, temperature, max_new_tokens, seed)`` returns one list of ``n`` generated texts (the
    completion only, never the prompt) per prompt, in prompt order. ``temperature == 0`` means greedy decoding
    (then the ``n`` texts are identical). The same seed and inputs give the same texts on the same backend.
    """

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]: ...
