"""``--model`` of ``grm serve``, ``grm score`` and ``grm eval``: one parse and one registry resolution for all three.

The spec is parsed by ``grm.sampling.spec.parse_model_spec`` (a bad one exits 2 naming it and the accepted forms);
a registry spec (``champion``, ``challenger``, ``models:/NAME@ALIAS``) is downloaded by
``tasks.model_fetch.fetch_registered``, the pipeline's own path (the registry lock, ``repair_promotions`` first),
into ``PROJECT/artifacts/models/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grm.sampling.spec import ModelSpec, parse_model_spec


@dataclass(frozen=True)
class ResolvedModel:
    """What ``--model`` names, ready for ``build_sampler``: ``model`` (the spec, or the downloaded folder of a
    registry spec), the meta RM registered with the same alias and the prompt template its run was trained with
    (both None when not from the registry, or not recorded)."""

    model: str
    meta_rm: str | None = None
    template: str | None = None


def resolve_model(
    model: str,
    project_dir: str = ".",
    tracking_uri: str | None = None,
    model_name: str = "grm",
    meta_model_name: str = "grm-meta-rm",
    field_name: str = "--model",
) -> ResolvedModel:
    """Parse ``model``; download a registry spec (and its meta RM) from the project's MLflow registry.

    Raises:
        SamplerSpecError: ``model`` matches no accepted form (exit 2).
        LookupError: no such registered model or alias.
    """
    spec = parse_model_spec(model, field_name=field_name)
    if not spec.is_registry:
        return ResolvedModel(model)
    return _from_registry(spec, model, project_dir, tracking_uri, model_name, meta_model_name)


def _from_registry(
    spec: ModelSpec, model: str, project_dir: str, tracking_uri: str | None, model_name: str, meta_model_name: str
) -> ResolvedModel:
    from tasks.model_fetch import RegistryNames, fetch_registered
    from tasks.service_checks import preflight
    from tasks.tracking import Tracker, resolve_tracking_uri

    preflight(("mlflow",), project_dir, tracking_uri)  # a server down: exit 2 naming it, no hang
    tracker = Tracker(resolve_tracking_uri(tracking_uri, project_dir), "grm-serve")
    names = RegistryNames(model_name, meta_model_name)
    dest = Path(project_dir) / "artifacts" / "models"
    fetched = fetch_registered(tracker, names, spec, dest, with_meta=True)
    if fetched is None:
        name, alias = spec.options.get("name", model_name), spec.options["alias"]
        raise LookupError(
            f"{model}: no registered model {name!r} with alias {alias!r} in {tracker.uri}; run `grm run` first, or "
            "pass a model folder, world-teacher or an http:// upstream as --model"
        )
    folder, version, meta = fetched
    return ResolvedModel(folder, meta, registered_template(tracker, version))


def registered_template(tracker: object, version: object | None) -> str | None:
    """The ``sampling.template`` param of the run that registered ``version`` (None when not recorded)."""
    run_id = getattr(version, "run_id", None)
    if not run_id:
        return None
    params = tracker.client().get_run(run_id).data.params  # type: ignore[attr-defined]
    return params.get("sampling.template")
