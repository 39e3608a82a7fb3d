"""Sampler backends behind one interface (``Sampler.generate``) and ``build_sampler(spec)`` to pick one.

Backends import their heavy dependencies (torch, transformers, vllm) lazily, so importing this package is cheap.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from grm.errors import UserError
from grm.sampling.base import Sampler

logger = logging.getLogger(__name__)

__all__ = ["Sampler", "SamplerSpecError", "build_sampler", "SPEC_FORMS"]


class SamplerSpecError(UserError, ValueError):
    """A sampler spec that matches none of ``SPEC_FORMS``."""


SPEC_FORMS = (
    "http://HOST:PORT or https://... (OpenAI-compatible server, e.g. `vllm serve` or `grm serve`)",
    "vllm:PATH (in-process vLLM, GPU environment)",
    "world-teacher or world-teacher:ERROR_RATE (the embedded world's programmatic teacher)",
    "PATH to a local model directory with safetensors weights (Hugging Face transformers on CPU/GPU)",
)


def _accepted(cls: Any, options: dict[str, Any], backend: str) -> dict[str, Any]:
    """Keep the options ``cls.__init__`` accepts; log the others (a generic option bag fits every backend)."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(options)
    kept = {k: v for k, v in options.items() if k in params}
    dropped = sorted(set(options) - set(kept))
    if dropped:
        logger.info("Options %s do not apply to the %s sampler; ignored", dropped, backend)
    return kept


def build_sampler(spec: str, **options: Any) -> Sampler:
    """Build a sampler from a spec string.

    Args:
        spec: one of ``SPEC_FORMS``: ``http(s)://...``, ``vllm:PATH``, ``world-teacher[:ERROR_RATE]`` or a local
            model directory.
        options: backend constructor options (e.g. ``device``, ``num_threads``, ``batch_size`` for a local model;
            ``api_key``, ``timeout``, ``served_model`` for HTTP); options a backend does not take are ignored.

    Returns:
        The sampler.

    Raises:
        SamplerSpecError: the spec matches none of the accepted forms.
        ModelFolderError: the spec names a local path that is not a complete model folder (missing folder, config,
            tokenizer or weights, or a corrupt safetensors file); checked before anything is loaded.
    """
    spec = spec.strip()
    if spec.startswith(("http://", "https://")):
        from grm.sampling.openai_http import OpenAICompatSampler, list_models

        opts = dict(options)
        model = opts.pop("served_model", None)
        if model is None:
            models = list_models(spec, api_key=opts.get("api_key"), timeout=float(opts.get("timeout", 10.0)))
            if not models:
                raise ValueError(f"{spec}/v1/models lists no model; pass served_model=NAME")
            model = models[0]
            logger.info("Using served model %r from %s", model, spec)
        return OpenAICompatSampler(spec, model, **_accepted(OpenAICompatSampler, opts, "HTTP"))
    if spec.startswith("vllm:"):
        path = spec[len("vllm:") :]
        if not path:
            raise ValueError("vllm: spec needs a model path, e.g. vllm:/models/grm-7b")
        from grm.sampling.vllm_backend import VLLMSampler

        return VLLMSampler(path, **_accepted(VLLMSampler, options, "vLLM"))
    if spec == "world-teacher" or spec.startswith("world-teacher:"):
        from grm.world.teacher import TeacherSampler

        opts = dict(options)
        if spec != "world-teacher":
            rate_text = spec[len("world-teacher:") :]
            try:
                opts["error_rate"] = float(rate_text)
            except ValueError as exc:
                raise ValueError(f"world-teacher:ERROR_RATE needs a number in [0, 1], got {rate_text!r}") from exc
        return TeacherSampler(**_accepted(TeacherSampler, opts, "world-teacher"))
    path = Path(spec).expanduser()
    if path.is_dir() or path.exists() or _looks_like_path(spec):
        from grm.model_files import check_model_dir

        check_model_dir(path)  # a missing or corrupt folder is named here, not deep inside transformers
        from grm.sampling.hf import HFSampler

        return HFSampler(path, **_accepted(HFSampler, options, "transformers"))
    forms = "\n  - ".join(SPEC_FORMS)
    raise SamplerSpecError(f"Unknown sampler spec {spec!r}. Accepted forms:\n  - {forms}")


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "~", "/")) or "/" in spec or "\\" in spec
