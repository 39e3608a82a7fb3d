"""The decode loops of ``grm.sampling.hf.HFSampler`` (both draw the same random stream: see its seeding contract).

``DecodeLoops`` is a mixin of ``HFSampler``: it reads the sampler's ``model``, ``device``, ``stats``, ``top_p``,
``ignore_eos``, ``eos_token_ids`` and ``_forward``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Mask logits outside the smallest set of tokens whose probability mass reaches ``top_p``."""
    import torch

    sorted_logits, sorted_idx = torch.sort(logits, descending=True, dim=-1)
    cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    remove = cum - torch.softmax(sorted_logits, dim=-1) >= top_p  # keep the token that crosses top_p
    sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(-1, sorted_idx, sorted_logits)


class DecodeLoops:
    """``_decode_hf`` (the model's forward every step) and ``_decode_static`` (``LlamaDecoder``), token picking."""

    def _decode_hf(
        self,
        logits: torch.Tensor,
        cache: Any,
        attn: torch.Tensor,
        position_ids: torch.Tensor,
        repeat: int,
        temperature: float,
        max_new_tokens: int,
        gen: torch.Generator,
    ) -> tuple[list[list[int]], list[str]]:
        """The old loop: the model's forward with a ``DynamicCache`` every step, finished rows dropped."""
        import torch

        if repeat > 1:
            cache.batch_repeat_interleave(repeat)
            logits = logits.repeat_interleave(repeat, dim=0)
            attn = attn.repeat_interleave(repeat, dim=0)
        num_rows = logits.shape[0]
        next_pos = position_ids[:, -1:].repeat_interleave(repeat, dim=0) + 1

        tokens: list[list[int]] = [[] for _ in range(num_rows)]
        finish = ["length"] * num_rows
        active = torch.arange(num_rows, device=self.device)  # original row index of each live row
        eos = torch.tensor(sorted(self.eos_token_ids), device=self.device, dtype=torch.long)
        for step in range(max_new_tokens):
            next_tok = self._pick(logits, temperature, gen)
            self.stats.tokens_generated += int(next_tok.numel())
            for r, t in zip(active.tolist(), next_tok.tolist(), strict=True):
                tokens[r].append(t)
            done = (
                torch.isin(next_tok, eos)
                if not self.ignore_eos and eos.numel()
                else torch.zeros_like(next_tok, dtype=torch.bool)
            )
            for r in active[done].tolist():
                finish[r] = "stop"
            if step == max_new_tokens - 1 or bool(done.all()):
                break
            if bool(done.any()):
                keep = (~done).nonzero(as_tuple=True)[0]
                cache.batch_select_indices(keep)
                active, next_tok, attn, next_pos = active[keep], next_tok[keep], attn[keep], next_pos[keep]
            attn = torch.cat([attn, attn.new_ones((attn.shape[0], 1))], dim=1)
            logits = self._forward(next_tok[:, None], attn, next_pos, cache)
            next_pos = next_pos + 1
            self.stats.decode_steps += 1
        return tokens, finish

    def _decode_static(
        self,
        logits: torch.Tensor,
        cache: Any,
        attn: torch.Tensor,
        position_ids: torch.Tensor,
        repeat: int,
        temperature: float,
        max_new_tokens: int,
        gen: torch.Generator,
    ) -> tuple[list[list[int]], list[str]]:
        """``LlamaDecoder`` loop: shared prompt KV, static cache, fixed shapes, finished rows masked.

        Draws the same uniforms in the same order as ``_decode_hf`` (one per live row per step, live rows in row
        order), so both paths sample the same tokens from the same seed up to float noise in the logits.
        """
        import torch

        from grm.sampling.static_decode import LlamaDecoder

        decoder = LlamaDecoder(self.model)  # per call: cheap, and never stale if the weights were trained since
        layers = cache.layers
        state = decoder.start([lay.keys for lay in layers], [lay.values for lay in layers], attn, repeat,
                              max_new_tokens)  # fmt: skip
        logits = logits.repeat_interleave(repeat, dim=0)
        num_rows = logits.shape[0]
        next_pos = position_ids[:, -1].repeat_interleave(repeat, dim=0) + 1
        cos_table, sin_table = decoder.rope_table(int(next_pos.max()) + max_new_tokens, state.keys[0])
        out = torch.zeros((num_rows, max_new_tokens), dtype=torch.long, device=self.device)
        done = torch.zeros(num_rows, dtype=torch.bool, device=self.device)
        stopped = torch.zeros(num_rows, dtype=torch.bool, device=self.device)
        length = torch.zeros(num_rows, dtype=torch.long, device=self.device)
        eos = torch.tensor(sorted(self.eos_token_ids), device=self.device, dtype=torch.long)
        check_eos = not self.ignore_eos and eos.numel() > 0
        for step in range(max_new_tokens):
            live = ~done
            next_tok = self._pick(logits, temperature, gen, live=None if step == 0 else live)
            out[:, step] = next_tok
            length += live
            self.stats.tokens_generated += int(live.sum())
            if check_eos:
                hit = torch.isin(next_tok, eos) & live
                stopped |= hit
                done |= hit
            if step == max_new_tokens - 1 or bool(done.all()):
                break
            logits = decoder.step(state, next_tok, cos_table[next_pos], sin_table[next_pos], step)
            next_pos = next_pos + 1
            self.stats.decode_steps += 1
        lengths = length.tolist()
        tokens = [row[:k] for row, k in zip(out.tolist(), lengths, strict=True)]
        finish = ["stop" if s else "length" for s in stopped.tolist()]
        return tokens, finish

    def _pick(
        self, logits: torch.Tensor, temperature: float, gen: torch.Generator, live: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Next token per row: argmax (temperature 0) or one inverse-CDF draw per row.

        With ``live`` (a row mask), uniforms are drawn for the live rows only, in row order, and dead rows get
        ``u = 0``: the random stream is the one a batch holding only the live rows would draw.
        """
        import torch

        if temperature == 0.0:
            return logits.argmax(dim=-1)
        scaled = logits / temperature
        if self.top_p < 1.0:
            scaled = _top_p_filter(scaled, self.top_p)
        # Inverse-CDF sampling: one uniform draw per row (20x faster than torch.multinomial on CPU). Scaling u by the
        # total mass and searching with right=True never lands on a zero-probability (top-p masked) token.
        cdf = torch.softmax(scaled, dim=-1).double().cumsum(dim=-1)
        if live is None:
            u = torch.rand((cdf.shape[0], 1), generator=gen, device=cdf.device, dtype=cdf.dtype)
        else:
            u = torch.zeros((cdf.shape[0], 1), device=cdf.device, dtype=cdf.dtype)
            u[live] = torch.rand((int(live.sum()), 1), generator=gen, device=cdf.device, dtype=cdf.dtype)
        u = u * cdf[:, -1:]
        return torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_(max=cdf.shape[1] - 1)

    def _make_generator(self, seed: int) -> torch.Generator:
        import torch

        gen = torch.Generator(device=self.device)
        gen.manual_seed(seed % (2**63 - 1))
        return gen
