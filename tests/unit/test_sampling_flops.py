"""FLOP counts for the decode benchmark, and the static decoder's architecture check."""

from __future__ import annotations

from types import SimpleNamespace

from grm.sampling.flops import LlamaShape, generation_flops
from grm.sampling.static_decode import unsupported_reason

CONFIG = SimpleNamespace(
    hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
    vocab_size=655, head_dim=None,
)  # fmt: skip


def test_linear_flops_are_twice_the_weight_parameters():
    shape = LlamaShape.from_config(CONFIG)
    d, i, kv = 128, 384, 2 * 32  # 2 kv heads of dim 32
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * i
    assert shape.linear_flops() == 2 * (4 * per_layer + d * 655)
    assert shape.linear_flops(lm_head=False) == 2 * 4 * per_layer
    assert shape.attention_flops(10) == 4 * 2 * 2 * 4 * 32 * 10


def test_generation_flops_sharing_counts_prefill_once():
    shape = LlamaShape.from_config(CONFIG)
    prefill = 3 * shape.linear_flops(lm_head=False) + 2 * 128 * 655 + sum(shape.attention_flops(p) for p in (1, 2, 3))
    decode = shape.linear_flops() + shape.attention_flops(4)  # token 2 of 2 sees the 3 prompt keys + token 1
    assert generation_flops(shape, [3], 5, 2, shared_prefill=True) == prefill + 5 * decode
    assert generation_flops(shape, [3], 5, 2, shared_prefill=False) == 5 * (prefill + decode)


def test_unsupported_reason_names_the_architecture():
    gpt2 = SimpleNamespace(config=SimpleNamespace(model_type="gpt2"))
    assert "gpt2" in unsupported_reason(gpt2)
    llama = SimpleNamespace(
        config=SimpleNamespace(model_type="llama", pretraining_tp=1),
        model=SimpleNamespace(layers=[], rotary_emb=object()),
    )
    assert unsupported_reason(llama) is None
