"""Sampler backends behind one interface (``Sampler.generate``) and ``build_sampler(spec)`` to pick one.

Backends import their heavy dependencies (torch, transformers, vllm) lazily, so importing this package is cheap.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from grm.sampling.base import Sampler
from grm.sampling.spec import (
    FOLDER,
    HTTP,
    REGISTRY,
    SPEC_FORMS,
    VLLM,
    ModelSpec,
    SamplerSpecError,
    parse_model_spec,
)

logger = logging.getLogger(__name__)

__all__ = ["Sampler", "SamplerSpecError", "build_sampler", "SPEC_FORMS", "ModelSpec", "parse_model_spec"]


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


def build_sampler(spec: str | ModelSpec, **options: Any) -> Sampler:
    """Build a sampler from a spec: the one sampler factory (``parse_model_spec`` reads the string).

    Args:
        spec: one of ``SPEC_FORMS``: ``http(s)://...``, ``vllm:PATH``, ``world-teacher[:ERROR_RATE]`` or a local
            model directory (a registry alias must be resolved to a folder first: ``grm_cli.models``).
        options: backend constructor options (e.g. ``device``, ``num_threads``, ``batch_size`` for a local model;
            ``api_key``, ``timeout``, ``served_model`` for HTTP); options a backend does not take are ignored.

    Returns:
        The sampler.

    Raises:
        SamplerSpecError: the spec matches none of the accepted forms, or is an unresolved registry alias.
        ModelFolderError: the spec names a local path that is not a complete model folder (missing folder, config,
            tokenizer or weights, or a corrupt safetensors file); checked before anything is loaded.
    """
    parsed = parse_model_spec(spec)
    if parsed.kind == HTTP:
        return _http_sampler(parsed.location, dict(options))
    if parsed.kind == VLLM:
        from grm.sampling.vllm_backend import VLLMSampler

        return VLLMSampler(parsed.location, **_accepted(VLLMSampler, options, "vLLM"))
    if parsed.kind == FOLDER:
        from grm.model_files import check_model_dir

        path = Path(parsed.location).expanduser()
        check_model_dir(path)  # a missing or corrupt folder is named here, not deep inside transformers
        from grm.sampling.hf import HFSampler

        return HFSampler(path, **_accepted(HFSampler, options, "transformers"))
    if parsed.kind == REGISTRY:
        raise SamplerSpecError(
            f"{parsed.location!r} names a model in the MLflow registry; resolve it to a folder first",
            fix="pass it to grm serve, grm score or grm eval (they download it), or pass the model folder",
        )
    from grm.world.teacher import TeacherSampler

    opts = {**options, **parsed.options}  # world-teacher:RATE sets error_rate
    return TeacherSampler(**_accepted(TeacherSampler, opts, "world-teacher"))


def _http_sampler(url: str, opts: dict[str, Any]) -> Sampler:
    from grm.sampling.openai_http import OpenAICompatSampler, list_models

    model = opts.pop("served_model", None)
    if model is None:
        models = list_models(url, api_key=opts.get("api_key"), timeout=float(opts.get("timeout", 10.0)))
        if not models:
            raise ValueError(f"{url}/v1/models lists no model; pass served_model=NAME")
        model = models[0]
        logger.info("Using served model %r from %s", model, url)
    return OpenAICompatSampler(url, model, **_accepted(OpenAICompatSampler, opts, "HTTP"))
