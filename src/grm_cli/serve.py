"""``grm serve``: the GRM as a reward service (``/v1/score``, OpenRLHF ``/get_reward``, OpenAI ``/v1/completions``).

Its options are ``grm.serving.serve_config.ServeConfig``'s fields (name, type, default, help, panel), attached to
``serve`` as its signature, so a knob is defined once; the registry names (champion, challenger, models:/NAME@ALIAS)
are resolved here, above the core."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Annotated, Any

import typer


def resolve_registry_model(
    model: str,
    project_dir: str = ".",
    tracking_uri: str | None = None,
    model_name: str = "grm",
    meta_model_name: str = "grm-meta-rm",
    with_template: bool = False,
) -> tuple:
    """``champion``/``challenger``/``models:/NAME@ALIAS`` -> (local GRM dir, local meta-RM dir or None) downloaded
    from the MLflow registry into ``PROJECT/artifacts/models/`` (the meta RM registered with the same alias, if
    any); any other spec is returned as is with no meta RM. With ``with_template`` a third element: the prompt
    template the registered version's run was trained with (its ``sampling.template`` param; None if unrecorded).

    Raises:
        LookupError: no such registered model or alias.
    """
    import tempfile
    from pathlib import Path

    if model in ("champion", "challenger"):
        name, alias = model_name, model
    elif model.startswith("models:/") and "@" in model:
        name, alias = model.removeprefix("models:/").split("@", 1)
    else:
        return (model, None, None) if with_template else (model, None)
    from tasks.service_checks import preflight
    from tasks.tracking import Tracker, resolve_tracking_uri

    preflight(("mlflow",), project_dir, tracking_uri)  # a server down: exit 2 naming it, no hang
    tracker = Tracker(resolve_tracking_uri(tracking_uri, project_dir), "grm-serve")

    def fetch(reg_name: str) -> str | None:
        version = tracker.alias_version(reg_name, alias)
        if version is None:
            return None
        dest = Path(project_dir) / "artifacts" / "models"
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / f"{reg_name}-v{version.version}"
        if not target.exists():
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=dest))
            path = tracker.download(f"models:/{reg_name}@{alias}", tmp)
            path.rename(target) if path != tmp else tmp.rename(target)
        return str(target)

    grm_dir = fetch(name)
    if grm_dir is None:
        raise LookupError(
            f"{model}: no registered model {name!r} with alias {alias!r} in {tracker.uri}; run `grm run` first, or "
            "pass a model folder, world-teacher or an http:// upstream as --model"
        )
    meta_name = meta_model_name if name == model_name else f"{name}-meta-rm"
    if not with_template:
        return grm_dir, fetch(meta_name)
    return grm_dir, fetch(meta_name), registered_template(tracker, name, alias)


def registered_template(tracker: object, name: str, alias: str) -> str | None:
    """The ``sampling.template`` param of the run that registered ``name@alias`` (None when not recorded)."""
    version = tracker.alias_version(name, alias)  # type: ignore[attr-defined]
    if version is None or not version.run_id:
        return None
    params = tracker.client().get_run(version.run_id).data.params  # type: ignore[attr-defined]
    return params.get("sampling.template")


def _cli_parameter(f: dataclasses.Field, hint: Any) -> inspect.Parameter:
    """A ``ServeConfig`` field as a typer option: the same name, type, default, help and panel."""
    required = f.default is dataclasses.MISSING
    if hint == tuple[str, ...]:  # repeatable: typer collects a list
        hint, default = list[str] | None, None
    else:
        default = ... if required else f.default
    info = typer.Option(help=f.metadata["help"], rich_help_panel=f.metadata["panel"])
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[hint, info])


def serve(**options: Any) -> None:
    """Serve a GRM as a reward: POST /v1/score (Voting@k, MetaRM@k), /get_reward (OpenRLHF), /v1/completions."""
    from grm.serving import ServeConfig, serve_command

    options = {name: tuple(v or ()) if name in _REPEATED else v for name, v in options.items()}  # lists -> tuples
    config = ServeConfig(**options)  # every knob checked here: a bad value exits 2 naming its option
    model, registered_meta, registered = resolve_registry_model(
        config.model,
        config.project_dir,
        config.tracking_uri,
        config.registry_model_name,
        config.registry_meta_name,
        with_template=True,
    )
    serve_command(
        dataclasses.replace(
            config,
            model=model,
            served_model_name=config.served_model_name or config.model,
            meta_rm=config.meta_rm or registered_meta,
            template=config.template or registered,
        )
    )


def _attach_options() -> None:
    from grm.serving.serve_config import ServeConfig

    hints = typing.get_type_hints(ServeConfig)
    params = [_cli_parameter(f, hints[f.name]) for f in dataclasses.fields(ServeConfig)]
    serve.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    serve.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    _REPEATED.update(f.name for f in dataclasses.fields(ServeConfig) if hints[f.name] == tuple[str, ...])


_REPEATED: set[str] = set()
_attach_options()
