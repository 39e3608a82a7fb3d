"""``grm team up|down|status``: the single-host team stack (PostgreSQL, SeaweedFS S3, MLflow server, Prefect
server + worker) and the current project's settings for it (docs/team.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

team_app = typer.Typer(help="The team stack: PostgreSQL, S3, MLflow and Prefect servers on one host (docs/team.md).")

StateDir = Annotated[
    Path | None, typer.Option("--dir", help="the stack's state folder (default: $GRM_TEAM_DIR or ~/.grm-team)")
]


def _state_dir(state_dir: Path | None) -> Path:
    from tasks.team.stack import DEFAULT_DIR

    return (state_dir or DEFAULT_DIR).expanduser().resolve()


@team_app.command("up")
def up_command(
    state_dir: StateDir = None,
    host: Annotated[
        str, typer.Option(help="bind address of every service; beyond 127.0.0.1 give --advertise too")
    ] = "127.0.0.1",
    advertise: Annotated[str, typer.Option(help="the host name other machines use to reach this one")] = "",
    project_dir: Annotated[Path, typer.Option(help="the project to configure for the stack")] = Path("."),
    connect: Annotated[
        bool, typer.Option(help="write the project's .grm/services.env and DVC remote (--no-connect: stack only)")
    ] = True,
) -> None:
    """Start the stack (creating it the first time; only what is down afterwards) and point the project at it."""
    from tasks.team import project, stack

    folder = _state_dir(state_dir)
    state = stack.up(folder, host=host, advertise=advertise, log=typer.echo)
    if connect:
        project.connect(project_dir, state)
        typer.echo(
            f"project      {project_dir.resolve()} uses the stack (.grm/services.env, DVC remote {project.dvc_url()})"
        )
    _print_status(folder)


@team_app.command("down")
def down_command(
    state_dir: StateDir = None,
    purge: Annotated[bool, typer.Option(help="also delete the state folder: databases, objects, credentials")] = False,
) -> None:
    """Stop every service of the stack (the worker first, PostgreSQL last)."""
    from tasks.team import stack

    stack.down(_state_dir(state_dir), purge=purge, log=typer.echo)


@team_app.command("stop")
def stop_command(
    service: Annotated[str, typer.Argument(help="postgres | objectstore | mlflow | prefect | worker")],
    state_dir: StateDir = None,
) -> None:
    """Stop one service (`grm team up` starts it again on the same port)."""
    from tasks.team import stack

    folder = _state_dir(state_dir)
    stack.load(folder)
    typer.echo(f"{service:<12} {'stopped' if stack.stop_service(folder, service) else 'was not running'}")


@team_app.command("settings")
def settings_command(state_dir: StateDir = None) -> None:
    """Print a project's settings for this stack (services.env lines and DVC commands) for another machine.
    They hold the stack's credentials: pass them on privately."""
    from tasks.team import objectstore, project, stack

    state = stack.load(_state_dir(state_dir))
    typer.echo("# .grm/services.env of a project (chmod 600, never commit):")
    for key, value in project.settings(state).items():
        typer.echo(f"{key}={value}")
    typer.echo("# the DVC remote (run in the project):")
    typer.echo(f"dvc remote modify local url {project.dvc_url()}")
    typer.echo(f"dvc remote modify local endpointurl {state.s3_endpoint}")
    typer.echo(f"dvc remote modify --local local access_key_id {state.s3_access_key}")
    typer.echo(f"dvc remote modify --local local secret_access_key {state.s3_secret_key}")
    typer.echo(f"dvc remote modify --local local region {objectstore.REGION}")


@team_app.command("status")
def status_command(state_dir: StateDir = None) -> None:
    """One line per service: up or down, its endpoint, its pid (or the log to read). Exit 1 when one is down."""
    if not _print_status(_state_dir(state_dir)):
        raise typer.Exit(1)


def _print_status(folder: Path) -> bool:
    from tasks.team import stack

    rows = stack.status(folder)
    for name, ok, detail in rows:
        typer.echo(f"{name:<12} {'up' if ok else 'DOWN':<5} {detail}")
    return all(ok for _, ok, _ in rows)
