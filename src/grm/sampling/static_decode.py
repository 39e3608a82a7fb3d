"""A decode loop over a Llama-family model's layers that spends its time in matmuls (the HF backend's fast path).

``HFSampler`` prefills a prompt batch with the model's own forward (a ``DynamicCache``), then hands the prompt keys
and values to ``LlamaDecoder``, which decodes ``n`` rows per prompt without the framework's per-step machinery:

* the prompt KV stays **shared**: it is kept once per prompt (never repeated ``n`` times) and the ``n`` rows of a
  prompt attend to it with one batched matmul per layer (their queries stacked), so the shared-prefill property
  holds in memory traffic too, not only in prefill FLOPs;
* the generated tokens' KV goes into a **preallocated static cache**, time-major (``max_new_tokens`` x rows x
  heads x dim), read with broadcast multiply-sums (faster on CPU than many tiny batched matmuls);
* shapes are **fixed**: every row is decoded every step and finished rows are only masked (their tokens ignored),
  never dropped from the batch; q/k/v and gate/up projections are fused into one matmul each;
* sampling, EOS checks and token bookkeeping run on whole tensors (no Python loop over rows).

Numerically it is the same computation as the model's forward (RMSNorm, RoPE from the model's own rotary module,
softmax attention over prompt + generated keys, SiLU MLP), up to float summation order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

SUPPORTED_MODEL_TYPES = ("llama",)


def unsupported_reason(model: Any) -> str | None:
    """Why ``LlamaDecoder`` cannot run ``model`` (None when it can): the architecture must be a plain Llama."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model_type {model_type!r} is not one of {SUPPORTED_MODEL_TYPES}"
    inner = getattr(model, "model", None)
    if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "rotary_emb"):
        return "the model has no .model.layers / .model.rotary_emb (not a LlamaForCausalLM layout)"
    if getattr(config, "pretraining_tp", 1) not in (None, 1):
        return "pretraining_tp > 1"
    return None


@dataclass(frozen=True)
class _Layer:
    ln1: torch.Tensor
    eps1: float
    w_qkv: torch.Tensor
    b_qkv: torch.Tensor | None
    w_o: torch.Tensor
    b_o: torch.Tensor | None
    ln2: torch.Tensor
    eps2: float
    w_gate_up: torch.Tensor
    b_gate_up: torch.Tensor | None
    w_down: torch.Tensor
    b_down: torch.Tensor | None
    act: Any


def _cat_bias(*linears: Any) -> torch.Tensor | None:
    import torch

    if all(lin.bias is None for lin in linears):
        return None
    return torch.cat([lin.bias if lin.bias is not None else lin.weight.new_zeros(lin.out_features) for lin in linears])


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    import torch

    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    return weight * h.to(x.dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LlamaDecoder:
    """Fused-weight view of a Llama model for decoding (rebuild it after the model's weights change)."""

    def __init__(self, model: Any) -> None:
        """Read (and fuse) the weights of ``model``, a ``LlamaForCausalLM``.

        Args:
            model: the loaded causal LM; ``unsupported_reason(model)`` must be None.

        Raises:
            ValueError: the architecture is not supported (the reason is in the message).
        """
        import torch

        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"LlamaDecoder cannot decode this model: {reason}; use decode='hf'.")
        config = model.config
        inner = model.model
        self.num_heads = int(config.num_attention_heads)
        self.num_kv_heads = int(getattr(config, "num_key_value_heads", None) or self.num_heads)
        self.head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // self.num_heads)
        self.groups = self.num_heads // self.num_kv_heads
        self.embed = inner.embed_tokens.weight
        self.rotary = inner.rotary_emb
        self.norm, self.norm_eps = inner.norm.weight, float(inner.norm.variance_epsilon)
        self.lm_head = model.lm_head.weight
        self.lm_head_bias = getattr(model.lm_head, "bias", None)
        self.layers: list[_Layer] = []
        for layer in inner.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.scaling = float(attn.scaling)
            self.layers.append(
                _Layer(
                    ln1=layer.input_layernorm.weight,
                    eps1=float(layer.input_layernorm.variance_epsilon),
                    w_qkv=torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]),
                    b_qkv=_cat_bias(attn.q_proj, attn.k_proj, attn.v_proj),
                    w_o=attn.o_proj.weight,
                    b_o=attn.o_proj.bias,
                    ln2=layer.post_attention_layernorm.weight,
                    eps2=float(layer.post_attention_layernorm.variance_epsilon),
                    w_gate_up=torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]),
                    b_gate_up=_cat_bias(mlp.gate_proj, mlp.up_proj),
                    w_down=mlp.down_proj.weight,
                    b_down=mlp.down_proj.bias,
                    act=mlp.act_fn,
                )
            )

    def rope_table(self, length: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin for positions ``0..length-1`` from the model's own rotary module (its scaling included)."""
        import torch

        positions = torch.arange(length, device=like.device)[None]
        cos, sin = self.rotary(like, positions)
        return cos[0], sin[0]

    def start(
        self, prompt_keys: list[torch.Tensor], prompt_values: list[torch.Tensor], prompt_mask: torch.Tensor, n: int,
        max_new_tokens: int,
    ) -> DecodeState:  # fmt: skip
        """Set up decoding ``n`` rows per prompt after a prefill.

        Args:
            prompt_keys: per layer, the prefill's keys (prompts x kv heads x prompt length x head dim), RoPE applied.
            prompt_values: per layer, the prefill's values (same shape).
            prompt_mask: the prefill's attention mask (prompts x prompt length; 0 = left padding).
            n: rows per prompt.
            max_new_tokens: steps to preallocate the generated-token cache for.

        Returns:
            The decode state (caches and masks) for ``step``.
        """
        import torch

        prompts = prompt_mask.shape[0]
        rows = prompts * n
        like = prompt_keys[0]
        shape = (max_new_tokens, rows, self.num_kv_heads, self.head_dim)  # time-major: step t is one slab
        neg = torch.finfo(like.dtype).min
        mask = torch.zeros(prompt_mask.shape, dtype=like.dtype, device=like.device).masked_fill(prompt_mask == 0, neg)
        return DecodeState(
            prompts=prompts,
            n=n,
            prompt_keys_t=[k.transpose(-1, -2).contiguous() for k in prompt_keys],  # p x hkv x d x P
            prompt_values=prompt_values,
            prompt_bias=mask[:, None, None, :],  # prompts x 1 x 1 x P, broadcast over heads and stacked queries
            keys=[like.new_empty(shape) for _ in self.layers],
            values=[like.new_empty(shape) for _ in self.layers],
        )

    def step(
        self, state: DecodeState, tokens: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, t: int
    ) -> torch.Tensor:
        """Run one decode step for every row: feed ``tokens`` (rows,) as generated token ``t``; return logits.

        Args:
            state: from ``start``.
            tokens: the token each row feeds (rows,).
            cos: RoPE cos at each row's position (rows x head dim).
            sin: RoPE sin (same shape).
            t: index of this token among the generated ones (0 for the first).

        Returns:
            Next-token logits, float32, rows x vocab.
        """
        import torch
        import torch.nn.functional as F

        p, n, hkv, g, d = state.prompts, state.n, self.num_kv_heads, self.groups, self.head_dim
        rows = p * n
        q_width, kv_width = self.num_heads * d, hkv * d
        cos, sin = cos[:, None, :], sin[:, None, :]
        x = F.embedding(tokens, self.embed)
        for i, layer in enumerate(self.layers):
            h = _rms_norm(x, layer.ln1, layer.eps1)
            qkv = F.linear(h, layer.w_qkv, layer.b_qkv)
            q = qkv[:, :q_width].view(rows, self.num_heads, d)
            k = qkv[:, q_width : q_width + kv_width].view(rows, hkv, d)
            v = qkv[:, q_width + kv_width :].view(rows, hkv, d)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            state.keys[i][t] = k
            state.values[i][t] = v
            # Prompt part: the n rows of a prompt stack their queries against its one copy of the prompt KV.
            q_p = q.view(p, n, hkv, g, d).transpose(1, 2).reshape(p, hkv, n * g, d)
            s_p = torch.matmul(q_p, state.prompt_keys_t[i]) * self.scaling + state.prompt_bias
            s_p = s_p.view(p, hkv, n, g, -1).transpose(1, 2).reshape(rows, hkv, g, -1)
            # Generated part: each row against its own tokens 0..t. Time-major cache and a broadcast multiply-sum:
            # faster on CPU than thousands of tiny (g x d) @ (d x t) batched matmuls.
            k_g, v_g = state.keys[i][: t + 1], state.values[i][: t + 1]  # (t+1) x rows x hkv x d
            if g == 1:  # plain multi-head attention: no group axis in the broadcast (much faster on CPU)
                s_g = (k_g * q).sum(-1).permute(1, 2, 0)[:, :, None, :]
            else:
                s_g = (k_g[:, :, :, None, :] * q.view(rows, hkv, g, d)).sum(-1).permute(1, 2, 3, 0)
            s_g = s_g * self.scaling  # rows x hkv x g x (t+1)
            probs = torch.softmax(torch.cat([s_p, s_g], dim=-1).float(), dim=-1).to(q.dtype)
            plen = s_p.shape[-1]
            pr_p = probs[..., :plen].reshape(p, n, hkv, g, plen).transpose(1, 2).reshape(p, hkv, n * g, plen)
            o_p = torch.matmul(pr_p, state.prompt_values[i])  # p x hkv x n*g x d
            o_p = o_p.view(p, hkv, n, g, d).transpose(1, 2).reshape(rows, hkv, g, d)
            pr_g = probs[..., plen:].permute(3, 0, 1, 2)  # (t+1) x rows x hkv x g
            if g == 1:
                o = o_p + (pr_g * v_g).sum(0)[:, :, None, :]
            else:
                o = o_p + (pr_g[..., None] * v_g[:, :, :, None, :]).sum(0)
            x = x + F.linear(o.reshape(rows, q_width), layer.w_o, layer.b_o)
            h = _rms_norm(x, layer.ln2, layer.eps2)
            gate, up = F.linear(h, layer.w_gate_up, layer.b_gate_up).chunk(2, dim=-1)
            x = x + F.linear(layer.act(gate) * up, layer.w_down, layer.b_down)
        x = _rms_norm(x, self.norm, self.norm_eps)
        return F.linear(x, self.lm_head, self.lm_head_bias).float()


@dataclass
class DecodeState:
    """Caches of one decode run: the shared prompt KV (per prompt) and the static generated-token KV (per row)."""

    prompts: int
    n: int
    prompt_keys_t: list[torch.Tensor]
    prompt_values: list[torch.Tensor]
    prompt_bias: torch.Tensor
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
