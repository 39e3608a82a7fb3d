"""``grm doctor``: one line per service the project uses (MLflow tracking, the registry, the Prefect API, the DVC
remote), ``ok`` or ``FAIL`` with the fix; exit 0 when all are ok, 2 otherwise. The checks are in
``tasks.service_checks`` (short timeouts: it never hangs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

FAILED_EXIT = 2


def doctor_command(
    project_dir: Annotated[Path, typer.Option(help="project root (holds .grm/services.env, .dvc/, mlruns/)")] = Path(
        "."
    ),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or mlruns/)")
    ] = None,
    remote: Annotated[
        str | None, typer.Option(help="DVC remote URL or folder (default: $GRM_DVC_REMOTE, then .dvc/config)")
    ] = None,
) -> None:
    """Check the tracking store, the model registry, the Prefect API and the DVC remote: reachable, writable,
    versions compatible, credentials accepted. Prints one line per service with the fix for each failure."""
    from tasks import prefect_env

    prefect_env.configure_defaults(project_dir)  # the project's .grm/services.env (the environment wins)
    from tasks.service_checks import run_checks

    checks = run_checks(project_dir, tracking_uri, remote)
    for check in checks:
        typer.echo(check.line())
    failed = [c.service for c in checks if not c.ok]
    if failed:
        typer.echo(f"{len(failed)} of {len(checks)} failed: {', '.join(failed)} (docs/doctor.md)", err=True)
        raise typer.Exit(FAILED_EXIT)
