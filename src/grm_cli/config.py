"""``grm config``: print the resolved pipeline config as YAML, every key with its help text and its default.

The output is a valid config file (``grm config --set seed=3 > mine.yaml`` then ``grm run --config mine.yaml``);
keys whose value differs from the default say so, which is how to see what a recipe changes.
"""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer


def _scalar(value: Any) -> str:
    import yaml

    if isinstance(value, tuple):
        value = list(value)
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def render(cfg: Any, default: Any, indent: int = 0) -> list[str]:
    """YAML lines of dataclass ``cfg``: a help comment above each key, ``# default: X`` where the value differs."""
    lines: list[str] = []
    pad = "  " * indent
    for f in dataclasses.fields(cfg):
        value, base = getattr(cfg, f.name), getattr(default, f.name)
        if dataclasses.is_dataclass(value):
            doc = (type(value).__doc__ or "").strip().splitlines()[0]
            lines += [f"{pad}# {doc}", f"{pad}{f.name}:", *render(value, base, indent + 1)]
            continue
        help_text = f.metadata.get("help", "")
        if help_text:
            lines += textwrap.wrap(help_text, width=118, initial_indent=f"{pad}# ", subsequent_indent=f"{pad}#   ")
        note = "" if value == base else f"  # default: {_scalar(base)}"
        lines.append(f"{pad}{f.name}: {_scalar(value)}{note}")
    return lines


def config_command(
    config: Annotated[
        Path | None, typer.Option(help="pipeline YAML (none: the defaults = configs/default.yaml)")
    ] = None,
    override: Annotated[
        list[str] | None, typer.Option("--set", help="dotted override, e.g. --set seed=1 --set rl.max_steps=0")
    ] = None,
) -> None:
    """Print the resolved config (defaults + YAML + overrides, seeds and gate metric resolved), with help texts."""
    from grm.config import PipelineConfig
    from grm.plan import load_pipeline, resolve_config

    cfg = load_pipeline([config] if config else [], override or [])
    default = resolve_config(
        PipelineConfig(seed=cfg.seed)
    )  # derived values follow the run's seed, so only real changes show
    typer.echo("\n".join(render(cfg, default)))
