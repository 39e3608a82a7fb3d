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
    from grm_cli.models import resolve_model

    options = {name: tuple(v or ()) if name in _REPEATED else v for name, v in options.items()}  # lists -> tuples
    config = ServeConfig(**options)  # every knob checked here: a bad value exits 2 naming its option
    resolved = resolve_model(
        config.model, config.project_dir, config.tracking_uri, config.registry_model_name, config.registry_meta_name
    )  # the registry read under the pipeline's lock and repair (grm_cli.models); other specs pass through
    model, registered_meta, registered = resolved.model, resolved.meta_rm, resolved.template
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
