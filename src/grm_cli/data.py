"""``grm data ...``: the data commands (check a drop, list versions, pull one). Each subcommand lives in its own
module and is registered here by name, so the group stays a map: (name, module, function)."""

from __future__ import annotations

import importlib

import typer

data_app = typer.Typer(
    name="data",
    help="Preference data: check a drop before training, list every published version, restore one.",
    no_args_is_help=True,
)

# (command name, module, function); each module imports its heavy dependencies inside the command
DATA_COMMANDS: list[tuple[str, str, str]] = [
    ("check", "grm_cli.data_check", "check_command"),
    ("versions", "grm_cli.data_versions", "versions"),
    ("pull", "grm_cli.data_versions", "pull"),
]


def register_data_commands() -> typer.Typer:
    for name, module, func in DATA_COMMANDS:
        data_app.command(name)(getattr(importlib.import_module(module), func))
    return data_app
