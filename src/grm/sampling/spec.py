"""``ModelSpec``: the one parser of a model spec string (what ``--model``, ``model.teacher`` and ``grm serve`` take).

Every place that reads a spec (the sampler factory, the sharded executors, the teacher of rejective sampling, the
run's preflight and source checks, ``grm serve/score/eval``) parses it here, so the forms and their errors are
stated once:

==================  =============================  =========================================================
form                kind                           location / options
==================  =============================  =========================================================
``http(s)://...``   ``http``                       the URL (an OpenAI-compatible server)
``vllm:PATH``       ``vllm``                       PATH (in-process vLLM)
``world-teacher``   ``world-teacher``              ``""``; ``world-teacher:RATE`` adds ``error_rate``
``champion``        ``registry``                   the alias; ``challenger`` too
``models:/N@A``     ``registry``                   the URI; options ``name`` and ``alias``
a folder path       ``folder``                     the path (Hugging Face transformers)
==================  =============================  =========================================================

A registry spec names a model in the MLflow registry; the core cannot read the registry (it imports nothing of
``tasks``), so it is resolved to a folder at the edge (``grm_cli.models.resolve_model`` for the CLI,
``tasks.registry.resolve_model`` in the pipeline; both through ``tasks.model_fetch.fetch_registered``, under the
registry lock after repairing half-done promotions) before ``build_sampler`` sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm.errors import UserError

HTTP, VLLM, WORLD_TEACHER, REGISTRY, FOLDER = "http", "vllm", "world-teacher", "registry", "folder"
KINDS = (HTTP, VLLM, WORLD_TEACHER, REGISTRY, FOLDER)
REGISTRY_ALIASES = ("champion", "challenger")

SPEC_FORMS = (
    "http://HOST:PORT or https://... (OpenAI-compatible server, e.g. `vllm serve` or `grm serve`)",
    "vllm:PATH (in-process vLLM, GPU environment)",
    "world-teacher or world-teacher:ERROR_RATE (the embedded world's programmatic teacher)",
    "champion, challenger or models:/NAME@ALIAS (the MLflow model registry; grm serve, score and eval)",
    "PATH to a local model directory with safetensors weights (Hugging Face transformers on CPU/GPU)",
)


class SamplerSpecError(UserError, ValueError):
    """A model spec that matches none of ``SPEC_FORMS`` (the message names the value and lists the forms)."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: ``kind`` (one of ``KINDS``), ``location`` (URL, path, alias or registry URI) and the
    options the spec itself carries (``error_rate`` of a world teacher; ``name``/``alias`` of a registry URI).

    Example:
        >>> parse_model_spec("world-teacher:0.2")
        ModelSpec(kind='world-teacher', location='', options={'error_rate': 0.2})
        >>> parse_model_spec("models:/grm@champion").options
        {'name': 'grm', 'alias': 'champion'}
    """

    kind: str
    location: str
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def is_registry(self) -> bool:
        return self.kind == REGISTRY

    def registry_uri(self, default_name: str) -> str:
        """The MLflow URI of a registry spec: ``champion`` -> ``models:/{default_name}@champion``."""
        if self.kind != REGISTRY:
            raise ValueError(f"{self.location!r} is a {self.kind} spec, not a registry one")
        if self.location in REGISTRY_ALIASES:
            return f"models:/{default_name}@{self.location}"
        return self.location


def _error(problem: str, field_name: str | None) -> SamplerSpecError:
    forms = "\n  - ".join(SPEC_FORMS)
    return SamplerSpecError(f"{problem}. Accepted forms:\n  - {forms}", field=field_name)


def _world_teacher(text: str, field_name: str | None) -> ModelSpec:
    if text == WORLD_TEACHER:
        return ModelSpec(WORLD_TEACHER, "")
    rate_text = text[len("world-teacher:") :]
    try:
        rate = float(rate_text)
    except ValueError:
        rate = float("nan")
    if not 0.0 <= rate <= 1.0:
        raise _error(f"{text!r}: world-teacher:ERROR_RATE needs a number in [0, 1], got {rate_text!r}", field_name)
    return ModelSpec(WORLD_TEACHER, "", {"error_rate": rate})


def _registry(text: str, field_name: str | None) -> ModelSpec:
    if text in REGISTRY_ALIASES:
        return ModelSpec(REGISTRY, text, {"alias": text})
    rest = text.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        if not name or not alias:
            raise _error(f"{text!r}: a registry URI needs both a name and an alias (models:/NAME@ALIAS)", field_name)
        return ModelSpec(REGISTRY, text, {"name": name, "alias": alias})
    if not rest.strip("/"):
        raise _error(f"{text!r}: a registry URI needs a model name (models:/NAME@ALIAS)", field_name)
    return ModelSpec(REGISTRY, text)


def looks_like_path(text: str) -> bool:
    return text.startswith((".", "~", "/")) or "/" in text or "\\" in text


def parse_model_spec(text: str | ModelSpec, field_name: str | None = None) -> ModelSpec:
    """Parse a model spec string (see the module docstring for the forms); a ``ModelSpec`` is returned as is.

    Args:
        text: the spec.
        field_name: the option or config key it came from (``--model``, ``model.teacher``), named in errors.

    Raises:
        SamplerSpecError: the spec matches none of ``SPEC_FORMS`` (exit 2 in the CLI), naming it and the forms.
    """
    if isinstance(text, ModelSpec):
        return text
    spec = text.strip()
    if not spec:
        raise _error(f"{text!r}: an empty model spec", field_name)
    if spec.startswith(("http://", "https://")):
        return ModelSpec(HTTP, spec)
    if spec.startswith("vllm:"):
        if not spec[len("vllm:") :]:
            raise _error(f"{text!r}: vllm: needs a model path, e.g. vllm:/models/grm-7b", field_name)
        return ModelSpec(VLLM, spec[len("vllm:") :])
    if spec == WORLD_TEACHER or spec.startswith("world-teacher:"):
        return _world_teacher(spec, field_name)
    if spec in REGISTRY_ALIASES or spec.startswith(("models:/", "runs:/")):
        return _registry(spec, field_name)
    if Path(spec).expanduser().exists() or looks_like_path(spec):
        return ModelSpec(FOLDER, spec)
    raise _error(f"Unknown sampler spec {text!r} (and no such folder)", field_name)


def spec_kind(text: str) -> str | None:
    """The kind of ``text``, or None when it does not parse (for checks that must not raise on a bad spec)."""
    try:
        return parse_model_spec(text).kind
    except SamplerSpecError:
        return None


def is_world_teacher(text: str | ModelSpec) -> bool:
    """``world-teacher`` or ``world-teacher:ERROR_RATE`` (a bad rate too: the factory names its error)."""
    if isinstance(text, ModelSpec):
        return text.kind == WORLD_TEACHER
    spec = text.strip()
    return spec == WORLD_TEACHER or spec.startswith("world-teacher:")
