"""vLLM offline sampler (GPU). ``vllm`` is imported lazily: it lives in a separate environment.

One ``SamplingParams(n=n, seed=...)`` per prompt: vLLM prefills the prompt once and forks its KV blocks for the
``n`` samples; automatic prefix caching also shares the long common template prefix across prompts.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from grm.progress import format_seconds, stderr_is_tty
from grm.sampling.base import check_generate_args
from grm.sampling.openai_http import derive_seed

logger = logging.getLogger(__name__)

VLLM_MISSING = (
    "vLLM is not installed in this environment. Install it in a separate GPU environment: "
    "pip install -r requirements-gpu.txt (vLLM's fastapi/pydantic pins clash with Prefect's, so keep it out of "
    "the main venv), or serve the model with `vllm serve MODEL` there and use the http:// sampler spec here."
)


def import_vllm() -> Any:
    """Import and return the ``vllm`` module.

    Returns:
        The module.

    Raises:
        ImportError: vLLM is missing, with the install instructions.
    """
    try:
        import vllm
    except ImportError as exc:
        raise ImportError(VLLM_MISSING) from exc
    return vllm


def sampling_params_kwargs(
    n: int, temperature: float, max_new_tokens: int, seed: int, top_p: float = 1.0
) -> dict[str, Any]:
    """Keyword arguments for ``vllm.SamplingParams`` for one prompt.

    Greedy (``temperature == 0``) asks for one sample: the ``n`` greedy samples are identical and are copied.

    Args:
        n: samples per prompt.
        temperature: 0 = greedy.
        max_new_tokens: ``max_tokens``.
        seed: per-prompt seed.
        top_p: nucleus threshold (ignored for greedy).

    Returns:
        The kwargs dict.
    """
    check_generate_args(n, temperature, max_new_tokens)
    greedy = temperature == 0.0
    kwargs: dict[str, Any] = {
        "n": 1 if greedy else n,
        "temperature": float(temperature),
        "max_tokens": int(max_new_tokens),
        "seed": int(seed),
    }
    if not greedy and top_p < 1.0:
        kwargs["top_p"] = float(top_p)
    return kwargs


def collect_outputs(request_outputs: Sequence[Any], n: int, *, greedy: bool) -> list[list[str]]:
    """Turn ``LLM.generate`` results (one ``RequestOutput`` per prompt, in prompt order) into texts.

    Args:
        request_outputs: vLLM ``RequestOutput`` objects, each with ``.outputs`` (``CompletionOutput`` with
            ``.index`` and ``.text``).
        n: samples wanted per prompt.
        greedy: one sample was requested per prompt and is copied ``n`` times.

    Returns:
        ``n`` texts per prompt, samples in ``.index`` order.

    Raises:
        RuntimeError: a prompt came back with the wrong number of samples.
    """
    expected = 1 if greedy else n
    out: list[list[str]] = []
    for i, request in enumerate(request_outputs):
        samples = sorted(request.outputs, key=lambda c: int(getattr(c, "index", 0)))
        if len(samples) != expected:
            raise RuntimeError(f"vLLM returned {len(samples)} samples for prompt {i}, expected {expected}")
        texts = [str(s.text) for s in samples]
        out.append(texts * n if greedy else texts)
    return out


class VLLMSampler:
    """``Sampler`` over ``vllm.LLM`` (one process, ``tensor_parallel_size`` GPUs)."""

    def __init__(
        self,
        model: str,
        *,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        enable_prefix_caching: bool = True,
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        chat_template: bool = False,
        top_p: float = 1.0,
        dtype: str = "auto",
        progress: bool = True,
    ) -> None:
        """Load the model into vLLM.

        Args:
            model: local model directory (or anything ``vllm.LLM(model=...)`` accepts).
            tensor_parallel_size: GPUs to shard over.
            gpu_memory_utilization: fraction of GPU memory vLLM may take.
            enable_prefix_caching: reuse KV blocks of shared prefixes across prompts.
            max_model_len: context length cap (None = the model's).
            trust_remote_code: allow custom modelling code.
            chat_template: wrap each prompt with ``grm.method.prompts.wrap_chat`` (instruct models).
            top_p: nucleus threshold.
            dtype: vLLM dtype ("auto", "bfloat16", ...).
            progress: show vLLM's progress bar on a TTY (a start and an end log line elsewhere).
        """
        vllm = import_vllm()
        self._sampling_params_cls = vllm.SamplingParams
        self.chat_template = chat_template
        self.top_p = top_p
        self.progress = progress
        llm_kwargs: dict[str, Any] = {
            "model": model,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "enable_prefix_caching": enable_prefix_caching,
            "trust_remote_code": trust_remote_code,
            "dtype": dtype,
        }
        if max_model_len is not None:
            llm_kwargs["max_model_len"] = max_model_len
        logger.info("Starting vLLM: %s", llm_kwargs)
        self.llm = vllm.LLM(**llm_kwargs)

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        """Sample ``n`` completions per prompt; prompt ``i`` uses seed ``derive_seed(seed, i)``.

        Args:
            prompts: prompt texts.
            n: samples per prompt.
            temperature: 0 = greedy.
            max_new_tokens: generation budget per sample.
            seed: base seed.

        Returns:
            ``n`` generated texts per prompt, in prompt order.
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not a single string; wrap it in a list.")
        if not prompts:
            return []
        texts: list[Any] = list(prompts)
        if self.chat_template:
            from grm.method.prompts import wrap_chat

            # The template already holds BOS: pass token ids so that vLLM does not add a second one.
            tokenizer = self.llm.get_tokenizer()
            texts = [
                {"prompt_token_ids": tokenizer(wrap_chat(tokenizer, p), add_special_tokens=False)["input_ids"]}
                for p in texts
            ]
        params = [
            self._sampling_params_cls(
                **sampling_params_kwargs(n, temperature, max_new_tokens, derive_seed(seed, i), self.top_p)
            )
            for i in range(len(texts))
        ]
        bar = self.progress and stderr_is_tty()  # vLLM's own tqdm bar; without a TTY, a start and an end line
        if self.progress and not bar:
            logger.info("vLLM sampling: %d prompts x %d samples", len(texts), n)
        start = time.monotonic()
        outputs = self.llm.generate(texts, params, use_tqdm=bar)
        if self.progress and not bar:
            logger.info("vLLM sampling: %d prompts done in %s", len(texts), format_seconds(time.monotonic() - start))
        if len(outputs) != len(texts):
            raise RuntimeError(f"vLLM returned {len(outputs)} results for {len(texts)} prompts")
        return collect_outputs(outputs, n, greedy=temperature == 0.0)
