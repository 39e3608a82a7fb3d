"""Hugging Face transformers sampler with one shared prefill per prompt (CPU or a single GPU).

The ``n`` samples of a prompt share one prefill: the prompt batch runs forward once (the model's own forward, a
``DynamicCache``), then the ``n * B`` rows are decoded (temperature, optional top-p, per-row EOS stop) by one of
two loops (``decode=``):

* "static" (default for Llama models): ``grm.sampling.static_decode.LlamaDecoder`` -- the prompt KV kept once
  per prompt, a preallocated cache for generated tokens, fixed shapes with finished rows masked, fused weights;
* "hf" (the old loop, any architecture): the KV cache repeated ``n`` times (``Cache.batch_repeat_interleave``),
  the model's forward every step, finished rows dropped from the batch.

Seeding contract (both loops): one ``torch.Generator`` per prompt batch, seeded ``seed * 1_000_003 + batch index``
(batches of ``batch_size`` prompts sorted by length); each step draws one uniform per still-running row, in row
order (prompt-major, then sample), and inverts the row's CDF. So greedy gives the same tokens on both loops, and
sampling the same tokens up to float noise in the logits (summation order differs; exact on the test batches).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grm.model_files import load_pretrained
from grm.progress import Progress, track
from grm.sampling.base import check_generate_args
from grm.sampling.hf_decode import DecodeLoops
from grm.sampling.hf_inputs import PromptInputs
from grm.threads import set_torch_threads

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

_DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"}
_DTYPES.update({"float16": "float16", "fp16": "float16", "half": "float16"})


@dataclass
class SamplerStats:
    """Counters accumulated over every call of a sampler (reset with ``reset()``).

    ``sequences_prefilled`` counts prompt rows run through a prefill forward and ``prompt_tokens_prefilled`` their
    real (non-pad) tokens; with prefill sharing each prompt counts once, whatever ``n`` is.
    """

    sequences_prefilled: int = 0
    prefill_calls: int = 0
    prompt_tokens_prefilled: int = 0
    padded_tokens_prefilled: int = 0
    decode_steps: int = 0
    tokens_generated: int = 0
    wall_seconds: float = 0.0
    prompts_over_context: int = 0  # prompts longer than the model's context: not generated (empty, "context")
    prompts_budget_clipped: int = 0  # prompts whose max_new_tokens was cut so prompt + generation fit the context
    special_tokens_escaped: int = 0  # special-token strings (e.g. "</s>") in prompt text made plain text

    def reset(self) -> None:
        """Zero every counter."""
        for name, value in asdict(SamplerStats()).items():
            setattr(self, name, value)

    def as_dict(self) -> dict[str, float]:
        """Return the counters as a plain dict."""
        return asdict(self)


@dataclass(frozen=True)
class Completion:
    """One generated sample with its bookkeeping (used by the HTTP server for ``usage`` / ``finish_reason``)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS), "length" (max_new_tokens) or "context" (prompt too long: nothing generated)


DECODE_PATHS = ("static", "hf")


def check_safetensors_dir(model_dir: str | Path) -> Path:
    """Check that ``model_dir`` is a local model directory holding safetensors weights.

    Args:
        model_dir: directory written by ``save_pretrained``.

    Returns:
        The directory as a ``Path``.

    Raises:
        FileNotFoundError: the directory does not exist or has no ``*.safetensors`` file (pickle weights such as
            ``pytorch_model.bin`` are refused because loading them can run arbitrary code).
        ModelFolderError: config, tokenizer or weights missing or corrupt (``grm.model_files.check_model_dir``).
    """
    from grm.model_files import check_model_dir

    return check_model_dir(model_dir)


def _resolve_dtype(dtype: str | Any) -> Any:
    import torch

    if not isinstance(dtype, str):
        return dtype
    if dtype == "auto":
        return "auto"
    name = _DTYPES.get(dtype.lower())
    if name is None:
        raise ValueError(f"Unknown dtype {dtype!r}; use one of {sorted(set(_DTYPES))} or 'auto'.")
    return getattr(torch, name)


class HFSampler(DecodeLoops, PromptInputs):
    """Batched sampler over a local transformers causal LM, prefilling each prompt once for its ``n`` samples."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "cpu",
        num_threads: int | None = None,
        batch_size: int = 16,
        chat_template: bool = False,
        trust_remote_code: bool = False,
        dtype: str = "float32",
        progress: bool = True,
        top_p: float = 1.0,
        ignore_eos: bool = False,
        decode: str = "static",
    ) -> None:
        """Load the tokenizer and model.

        Args:
            model_dir: local directory with safetensors weights and a tokenizer.
            device: torch device ("cpu", "cuda", "cuda:1", ...).
            num_threads: if given, the torch CPU threads (``grm.threads.set_torch_threads``: under the process's cap).
            batch_size: prompts per prefill batch (the decode batch is ``batch_size * n`` rows).
            chat_template: wrap each prompt with ``grm.method.prompts.wrap_chat`` (instruct models).
            trust_remote_code: allow custom modelling code from ``model_dir`` (off by default).
            dtype: "float32", "bfloat16", "float16" or "auto".
            progress: report progress over prompts (``grm.progress``: a bar on a TTY, else a line every 15 s).
            top_p: nucleus sampling threshold (1.0 = off); ignored for greedy.
            ignore_eos: never stop at EOS (fixed-length generation, for benchmarks).
            decode: "static" decodes with ``grm.sampling.static_decode.LlamaDecoder`` (shared prompt KV, static
                cache, fixed shapes: several times faster on CPU) where the model is a plain Llama and falls back
                to "hf" otherwise; "hf" runs the model's forward with a ``DynamicCache`` every step (the old loop,
                kept for comparison and for other architectures). Same tokens for greedy, same random streams
                for sampling (see ``generate``).
        """
        import torch

        _check_options(batch_size, top_p, decode)
        self.model_dir = check_safetensors_dir(model_dir)
        if num_threads is not None:
            set_torch_threads(num_threads)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.chat_template = chat_template
        self.progress = progress
        self.top_p = top_p
        self.ignore_eos = ignore_eos
        self.stats = SamplerStats()
        self.tokenizer, self.model = _load(self.model_dir, self.device, trust_remote_code, dtype)
        self.eos_token_ids: set[int] = self._collect_eos_ids()
        if self.tokenizer.pad_token_id is None:
            if self.tokenizer.eos_token_id is None:
                raise ValueError(f"Tokenizer in {self.model_dir} has neither a pad nor an EOS token; set pad_token.")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.pad_token_id: int = int(self.tokenizer.pad_token_id)
        params = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._logits_to_keep = "logits_to_keep" in params
        self._max_positions: int | None = getattr(self.model.config, "max_position_embeddings", None)
        self.decode = _decode_path(self.model, decode, self.model_dir)
        logger.debug("Loaded %s on %s (eos ids %s)", self.model_dir, self.device, sorted(self.eos_token_ids))

    # ----- public API -----

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        """Sample ``n`` completions per prompt, prefilling each prompt once.

        Args:
            prompts: prompt texts.
            n: samples per prompt.
            temperature: softmax temperature; 0 = greedy.
            max_new_tokens: generation budget per sample.
            seed: RNG seed (same seed, inputs and ``batch_size`` -> same texts; see the module's seeding contract).

        Returns:
            ``n`` generated texts (completion only) per prompt, in prompt order.
        """
        details = self.generate_with_details(prompts, n, temperature, max_new_tokens, seed)
        return [[c.text for c in row] for row in details]

    def generate_with_details(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        *,
        share_prefill: bool = True,
    ) -> list[list[Completion]]:
        """Like ``generate`` but returns ``Completion`` records (token counts and finish reasons).

        Args:
            prompts: prompt texts.
            n: samples per prompt.
            temperature: softmax temperature; 0 = greedy.
            max_new_tokens: generation budget per sample.
            seed: RNG seed.
            share_prefill: False prefills every sample's copy of the prompt separately (benchmark baseline).

        Returns:
            ``n`` completions per prompt, in prompt order.
        """
        return self._run(prompts, n, temperature, max_new_tokens, seed, share_prefill=share_prefill)

    def generate_naive(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        """Baseline for benchmarks: one sample at a time (a fresh prefill for every sample, batch of one row).

        Args:
            prompts: prompt texts.
            n: samples per prompt.
            temperature: softmax temperature; 0 = greedy.
            max_new_tokens: generation budget per sample.
            seed: RNG seed.

        Returns:
            ``n`` generated texts per prompt, in prompt order.
        """
        check_generate_args(n, temperature, max_new_tokens)
        texts = self._prepare_texts(prompts)
        out: list[list[str]] = []
        start = time.perf_counter()
        for i, text in enumerate(self._progress(texts, desc="sampling (naive)")):
            row: list[str] = []
            for j in range(n):
                gen = self._make_generator(seed * 1_000_003 + i * 1_009 + j)
                row.append(
                    self._generate_batch([text], 1, temperature, max_new_tokens, gen, share_prefill=True)[0].text
                )
            out.append(row)
        self.stats.wall_seconds += time.perf_counter() - start
        return out

    # ----- internals -----

    def _run(
        self,
        prompts: Sequence[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        seed: int,
        *,
        share_prefill: bool,
    ) -> list[list[Completion]]:
        check_generate_args(n, temperature, max_new_tokens)
        texts = self._prepare_texts(prompts)
        if not texts:
            return []
        start = time.perf_counter()
        # Sort by length so that batches hold similar lengths (less padding); restore the order at the end.
        lengths = self._token_lengths(texts)
        results: list[list[Completion] | None] = [None] * len(texts)
        over = self._over_context(lengths)
        for i in over:  # never exceed the context: a prompt that does not fit is not generated (counted, logged)
            results[i] = [Completion("", lengths[i], 0, "context")] * n
        order = sorted((i for i in range(len(texts)) if results[i] is None), key=lambda i: lengths[i])
        bar = self._progress_bar(len(texts), desc="sampling")
        try:
            for b, lo in enumerate(range(0, len(order), self.batch_size)):
                idx = order[lo : lo + self.batch_size]
                gen = self._make_generator(seed * 1_000_003 + b)
                budget = self._budget([lengths[i] for i in idx], max_new_tokens)
                flat = self._generate_batch([texts[i] for i in idx], n, temperature, budget, gen, share_prefill)
                for k, i in enumerate(idx):
                    results[i] = flat[k * n : (k + 1) * n]
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        self.stats.wall_seconds += time.perf_counter() - start
        return [r for r in results if r is not None]

    def _generate_batch(
        self,
        texts: list[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        gen: torch.Generator,
        share_prefill: bool,
    ) -> list[Completion]:
        """Prefill ``texts`` once (or ``n`` times if not sharing), decode ``len(texts) * n`` rows, prompt-major."""
        import torch
        from transformers import DynamicCache

        greedy = temperature == 0.0
        # Greedy rows of one prompt are identical: decode one row per prompt and copy it n times.
        rows_per_prompt = 1 if greedy else n
        if not share_prefill:
            texts = [t for t in texts for _ in range(rows_per_prompt)]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not self.chat_template).to(
            self.device
        )
        input_ids, attn = enc["input_ids"], enc["attention_mask"]
        prompt_lens = attn.sum(dim=1)
        if int(prompt_lens.min()) == 0:
            raise ValueError("A prompt tokenized to zero tokens; pass a non-empty prompt (or a tokenizer with BOS).")
        if self._max_positions is not None and input_ids.shape[1] + max_new_tokens > self._max_positions:
            logger.warning(
                "prompt (%d tokens) + max_new_tokens (%d) exceeds the model's max_position_embeddings (%d)",
                input_ids.shape[1],
                max_new_tokens,
                self._max_positions,
            )
        position_ids = (attn.cumsum(dim=1) - 1).clamp(min=0)
        cache = DynamicCache(config=self.model.config)
        with torch.inference_mode():
            logits = self._forward(input_ids, attn, position_ids, cache)
            self.stats.prefill_calls += 1
            self.stats.sequences_prefilled += len(texts)
            self.stats.prompt_tokens_prefilled += int(prompt_lens.sum())
            self.stats.padded_tokens_prefilled += int(input_ids.numel())

            repeat = rows_per_prompt if share_prefill else 1
            if share_prefill and self.decode == "static":
                tokens, finish = self._decode_static(logits, cache, attn, position_ids, repeat, temperature,
                                                     max_new_tokens, gen)  # fmt: skip
            else:
                tokens, finish = self._decode_hf(logits, cache, attn, position_ids, repeat, temperature,
                                                 max_new_tokens, gen)  # fmt: skip
            prompt_lens = prompt_lens.repeat_interleave(repeat, dim=0)
            num_rows = len(tokens)

        completions: list[Completion] = []
        for r in range(num_rows):
            ids = tokens[r]
            if finish[r] == "stop":
                ids = ids[:-1]  # drop the EOS token itself
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            completions.append(Completion(text, int(prompt_lens[r]), len(tokens[r]), finish[r]))
        if greedy and n > 1:
            completions = [c for c in completions for _ in range(n)]
        return completions

    def _forward(
        self, input_ids: torch.Tensor, attn: torch.Tensor, position_ids: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {self._cache_kwarg: cache}
        if self._logits_to_keep:
            kwargs["logits_to_keep"] = 1
        out = self.model(input_ids=input_ids, attention_mask=attn, position_ids=position_ids, use_cache=True, **kwargs)
        return out.logits[:, -1, :].float()

    def _progress_bar(self, total: int, desc: str) -> Progress | None:
        return Progress(total, desc, unit="prompt") if self.progress else None

    def _progress(self, items: list[str], desc: str) -> Any:
        return track(items, desc, unit="prompt", enabled=self.progress)


def _check_options(batch_size: int, top_p: float, decode: str) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must be in (0, 1], got {top_p}")
    if decode not in DECODE_PATHS:
        raise ValueError(f"decode must be one of {DECODE_PATHS}, got {decode!r}")


def _load(model_dir: Path, device: Any, trust_remote_code: bool, dtype: str) -> tuple[Any, Any]:
    """(tokenizer padding on the left, causal LM on ``device`` in eval mode) from a checked model folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    tokenizer.padding_side = "left"
    model = load_pretrained(
        AutoModelForCausalLM,
        model_dir,
        role="causal LM (GRM)",
        use_safetensors=True,
        trust_remote_code=trust_remote_code,
        dtype=_resolve_dtype(dtype),
    ).to(device)
    model.eval()
    return tokenizer, model


def _decode_path(model: Any, decode: str, model_dir: Path) -> str:
    """``decode``, or "hf" where "static" cannot run this model (logged)."""
    if decode == "static":
        from grm.sampling.static_decode import unsupported_reason

        reason = unsupported_reason(model)
        if reason is not None:
            logger.info("decode='static' unavailable for %s (%s): using decode='hf'", model_dir, reason)
            return "hf"
    return decode
