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


def check_generate_args(n: int, temperature: float, max_new_tokens: int) -> None:
    """The arguments every backend's ``generate`` refuses (one message for all of them).

    Raises:
        ValueError: ``n < 1``, a negative temperature or ``max_new_tokens < 1``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
