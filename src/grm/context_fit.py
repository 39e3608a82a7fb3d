"""Fit benchmark items into a model's context, counted: an item whose judging prompt plus the generation budget
exceeds the context is cut (every text to the same number of words) or, when even one word per text does not fit,
refused. Nothing runs past the context silently: the evaluation reports how many items were cut and refused.

Real benchmark text on the embedded tiny model (128 positions, a world vocabulary that maps English words to
``<unk>``) is mostly cut: such numbers only show that the benchmark path runs (a protocol check), never quality.

Example:
    >>> from grm.schemas import Item
    >>> words = lambda text: len(text.split())
    >>> item = Item(id="a", query="one two three four", responses=("five six seven", "eight"), best=0)
    >>> fit = fit_items([item], words, budget=9, template="compact")
    >>> fit.items[0].responses, fit.truncated, fit.refused
    (('five six', 'eight'), ['a'], [])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from grm.method.prompts import render_conversation, render_prompt
from grm.schemas import Item


@dataclass(frozen=True)
class FitReport:
    """The items that fit (some cut), the ids cut and refused, and the prompt budget in tokens."""

    items: list[Item]
    truncated: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    budget: int | None = None

    def counts(self) -> dict[str, float]:
        """``n_fit``, ``n_truncated``, ``n_refused`` (metrics) and ``prompt_budget`` (-1: no context limit)."""
        return {
            "n_fit": float(len(self.items)),
            "n_truncated": float(len(self.truncated)),
            "n_refused": float(len(self.refused)),
            "prompt_budget": float(-1 if self.budget is None else self.budget),
        }


def _cut(text: str, words: int) -> str:
    parts = text.split()
    return text if len(parts) <= words else " ".join(parts[:words])


def _cut_item(item: Item, words: int) -> Item:
    query = _cut(render_conversation(item.query), words)
    return replace(item, query=query, responses=tuple(_cut(r, words) for r in item.responses))


def fit_items(items: Sequence[Item], n_tokens: Callable[[str], int], budget: int | None, template: str) -> FitReport:
    """Cut or refuse the items whose judging prompt (``render_prompt``, the original order) exceeds ``budget``.

    Args:
        items: benchmark items.
        n_tokens: prompt text -> its token count as the sampler tokenizes it.
        budget: the most prompt tokens allowed (the context minus the generation budget); None: no limit.
        template: the prompt template the evaluation renders.

    Returns:
        The fitted items (order kept; a cut item keeps its id and labels, its query becomes plain text), the ids
        cut and refused.
    """
    if budget is None:
        return FitReport(list(items))
    kept: list[Item] = []
    truncated: list[str] = []
    refused: list[str] = []

    def fits(it: Item) -> bool:
        return n_tokens(render_prompt(it.query, it.responses, template=template)) <= budget

    for item in items:
        if fits(item):
            kept.append(item)
            continue
        longest = max(len(t.split()) for t in (render_conversation(item.query), *item.responses))
        lo, hi = 1, longest  # the largest number of words per text that fits, by bisection
        if not fits(_cut_item(item, lo)):
            refused.append(item.id)
            continue
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(_cut_item(item, mid)) else (lo, mid - 1)
        kept.append(_cut_item(item, lo))
        truncated.append(item.id)
    return FitReport(kept, truncated, refused, budget)


def model_token_counter(model_dir: str, chat_template: bool = False) -> tuple[Callable[[str], int], int | None]:
    """``(prompt -> token count as the HF sampler encodes it, the model's max_position_embeddings or None)``."""
    from transformers import AutoConfig, AutoTokenizer

    from grm.method.prompts import wrap_chat

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    context = getattr(AutoConfig.from_pretrained(model_dir), "max_position_embeddings", None)

    def n_tokens(text: str) -> int:
        if chat_template:
            return len(tokenizer(wrap_chat(tokenizer, text), add_special_tokens=False, verbose=False)["input_ids"])
        return len(tokenizer(text, verbose=False)["input_ids"])  # counting only: no over-length warning

    return n_tokens, context
