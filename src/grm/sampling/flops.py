"""FLOP counts of a Llama-shaped causal LM's forward, for the decode and training benchmarks (``bench/decode_speed.py``,
``bench/train_speed.py``).

A multiply-add counts 2 FLOPs. ``linear_shapes`` lists the weight matrices one token goes through (per layer:
q, k, v, o, gate, up, down; then the LM head), ``token_flops`` adds attention (``QK^T`` and ``PV`` over the keys the
token sees). Embedding look-ups, norms, RoPE and softmax are not counted (they are not matmuls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LlamaShape:
    """The sizes that set a Llama forward's FLOPs."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int

    @classmethod
    def from_config(cls, config: Any) -> LlamaShape:
        """Read the sizes from a transformers ``LlamaConfig``-like object."""
        heads = int(config.num_attention_heads)
        return cls(
            hidden=int(config.hidden_size),
            intermediate=int(config.intermediate_size),
            layers=int(config.num_hidden_layers),
            heads=heads,
            kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
            head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
            vocab=int(config.vocab_size),
        )

    def layer_linears(self) -> list[tuple[int, int]]:
        """(in, out) of each weight matrix of one layer: q, k, v, o, gate, up, down."""
        d, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        return [(d, q), (d, kv), (d, kv), (q, d), (d, i), (d, i), (i, d)]

    def linear_flops(self, lm_head: bool = True) -> int:
        """FLOPs of the weight matmuls for one token (all layers, plus the LM head if ``lm_head``)."""
        per_layer = sum(2 * a * b for a, b in self.layer_linears())
        return self.layers * per_layer + (2 * self.hidden * self.vocab if lm_head else 0)

    def attention_flops(self, keys_seen: int) -> int:
        """FLOPs of ``QK^T`` and ``PV`` for one query token attending to ``keys_seen`` keys, all layers."""
        return self.layers * 2 * 2 * self.heads * self.head_dim * keys_seen


def generation_flops(
    shape: LlamaShape, prompt_lengths: list[int], rows_per_prompt: int, new_tokens: int, *, shared_prefill: bool
) -> int:
    """FLOPs of prefilling ``prompt_lengths`` and decoding ``new_tokens`` per row, ``rows_per_prompt`` rows each.

    The prefill runs the LM head on the last position only (``logits_to_keep=1``); with ``shared_prefill`` False
    every row prefills its own copy. The first generated token comes from the prefill's logits, so a row runs
    ``new_tokens - 1`` decode forwards, the ``t``-th seeing ``prompt + t + 1`` keys.

    Args:
        shape: the model's sizes.
        prompt_lengths: real (unpadded) prompt lengths in tokens.
        rows_per_prompt: samples decoded per prompt.
        new_tokens: tokens generated per row (EOS ignored).
        shared_prefill: one prefill per prompt (True) or per row (False).

    Returns:
        The total FLOP count.
    """
    copies = 1 if shared_prefill else rows_per_prompt
    total = 0
    for length in prompt_lengths:
        prefill = length * shape.linear_flops(lm_head=False) + 2 * shape.hidden * shape.vocab
        prefill += sum(shape.attention_flops(pos + 1) for pos in range(length))
        decode = sum(shape.linear_flops() + shape.attention_flops(length + t + 1) for t in range(new_tokens - 1))
        total += copies * prefill + rows_per_prompt * decode
    return total


def forward_flops(shape: LlamaShape, rows: int, length: int, head_positions: int) -> int:
    """FLOPs of one forward over ``rows`` sequences of ``length`` (padded) tokens with causal attention, the LM head
    (``hidden x vocab``) on ``head_positions`` positions per row (TRL's fused head on CPU: ``length - 1``; a
    sequence classifier's one-logit head: 0).

    Example:
        >>> s = LlamaShape(hidden=4, intermediate=8, layers=1, heads=1, kv_heads=1, head_dim=4, vocab=10)
        >>> forward_flops(s, 1, 2, 0) == 2 * s.linear_flops(lm_head=False) + s.attention_flops(1) + s.attention_flops(2)
        True
    """
    attention = shape.layers * 2 * 2 * shape.heads * shape.head_dim * length * (length + 1) // 2
    per_row = length * shape.linear_flops(lm_head=False) + head_positions * 2 * shape.hidden * shape.vocab + attention
    return rows * per_row


def training_flops(shape: LlamaShape, rows: int, length: int, head_positions: int) -> int:
    """Forward + backward FLOPs of one training forward (``forward_flops`` x 3: the backward does two matmuls per
    forward matmul, the input and the weight gradients). Recomputation (activation checkpointing, TRL's fused head
    recomputing its logits tile) is not counted: this is the model's work, not the kernels'."""
    return 3 * forward_flops(shape, rows, length, head_positions)
