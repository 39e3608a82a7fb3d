"""A byte-level tokenizer built offline (no hub): every text round-trips exactly, and ``</s>`` / ``<pad>`` are real
special tokens, so a trainer's ``decode(prompt_ids + response_ids + [eos], skip_special_tokens=False)`` yields
``prompt + response + "</s>"`` as it would with a real model's tokenizer."""

from __future__ import annotations

from typing import Any


def build_byte_tokenizer() -> Any:
    """A ``PreTrainedTokenizerFast`` over the 256 byte symbols (no merges) plus ``</s>`` (eos) and ``<pad>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="</s>", pad_token="<pad>", clean_up_tokenization_spaces=False
    )
