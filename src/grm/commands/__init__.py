"""Registers the CLI commands defined outside ``grm.cli`` (each module imports its heavy dependencies lazily)."""

from __future__ import annotations

import importlib
import logging

import typer

log = logging.getLogger(__name__)

# (command name, module, function): a missing module means the feature is not part of this install yet.
COMMANDS: list[tuple[str, str, str]] = []


def register(app: typer.Typer) -> None:
    for name, module, func in COMMANDS:
        mod = importlib.import_module(module)
        app.command(name)(getattr(mod, func))
