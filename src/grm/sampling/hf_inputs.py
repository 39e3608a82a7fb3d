"""Input safety of ``grm.sampling.hf.HFSampler``: special tokens in prompt text, prompts longer than the context.

``PromptInputs`` is a mixin of ``HFSampler``: it reads the sampler's ``tokenizer``, ``model``, ``chat_template``,
``stats`` and ``_max_positions``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

logger = logging.getLogger("grm.sampling.hf")

CHARS_PER_TOKEN_BOUND = 32  # a prompt with more characters than this times the context is over it untokenized
ZERO_WIDTH_SPACE = "\u200b"


class PromptInputs:
    """Prompt texts made safe (escaped special tokens, chat template), measured and fitted to the context."""

    def _collect_eos_ids(self) -> set[int]:
        ids: set[int] = set()
        gen_cfg = getattr(self.model, "generation_config", None)
        for src in (getattr(gen_cfg, "eos_token_id", None), self.tokenizer.eos_token_id):
            if src is None:
                continue
            ids.update(int(i) for i in (src if isinstance(src, list | tuple) else [src]))
        return ids

    def _prepare_texts(self, prompts: Sequence[str]) -> list[str]:
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not a single string; wrap it in a list.")
        prompts = [self._escape_special_tokens(p) for p in prompts]
        if not self.chat_template:
            return prompts
        from grm.method.prompts import wrap_chat

        return [wrap_chat(self.tokenizer, p) for p in prompts]

    def _special_token_strings(self) -> list[str]:
        if not hasattr(self, "_specials"):
            specials = set(getattr(self.tokenizer, "all_special_tokens", []) or [])
            for tok in (getattr(self.tokenizer, "added_tokens_decoder", None) or {}).values():
                if getattr(tok, "special", False):
                    specials.add(str(tok))
            self._specials = sorted((t for t in specials if t), key=len, reverse=True)
        return self._specials

    def _escape_special_tokens(self, text: str) -> str:
        """Make special-token strings in prompt text (``</s>``, ``<|im_end|>``) plain text, never control tokens.

        A zero-width space after the first character splits the string, so the tokenizer reads ordinary text;
        the chat template (added afterwards) keeps its real special tokens. Counted in ``stats``.
        """
        for tok in self._special_token_strings():
            if len(tok) > 1 and tok in text:
                self.stats.special_tokens_escaped += text.count(tok)
                text = text.replace(tok, tok[0] + ZERO_WIDTH_SPACE + tok[1:])
        return text

    def _token_lengths(self, texts: list[str]) -> list[int]:
        """Prompt lengths in tokens; a text far longer than the context (by characters) is not tokenized at all."""
        limit = self._max_positions
        lengths = [-1] * len(texts)
        todo = [i for i, t in enumerate(texts) if limit is None or len(t) <= CHARS_PER_TOKEN_BOUND * limit]
        if todo:
            enc = self.tokenizer([texts[i] for i in todo], add_special_tokens=not self.chat_template)["input_ids"]
            for i, ids in zip(todo, enc, strict=True):
                lengths[i] = len(ids)
        return [length if length >= 0 else len(texts[i]) for i, length in enumerate(lengths)]

    def _over_context(self, lengths: list[int]) -> list[int]:
        """Indices of prompts that leave no room for one generated token; counted and logged."""
        if self._max_positions is None:
            return []
        over = [i for i, length in enumerate(lengths) if length >= self._max_positions]
        if over:
            self.stats.prompts_over_context += len(over)
            logger.warning(
                "%d of %d prompts do not fit the model's context (%d positions; longest %d tokens): not generated, "
                "returned empty with finish_reason='context' (a judge counts them as parse failures)",
                len(over), len(lengths), self._max_positions, max(lengths[i] for i in over),
            )  # fmt: skip
        return over

    def _budget(self, lengths: list[int], max_new_tokens: int) -> int:
        """``max_new_tokens`` cut so that the longest prompt of a batch plus its generation fits the context."""
        if self._max_positions is None:
            return max_new_tokens
        clipped = sum(1 for length in lengths if length + max_new_tokens > self._max_positions)
        if clipped:
            self.stats.prompts_budget_clipped += clipped
            logger.info("%d prompt(s): max_new_tokens cut to fit the context", clipped)
        return max(1, min(max_new_tokens, self._max_positions - max(lengths)))
