"""``grm reproduce RUN_ID`` (restore a run's exact inputs from DVC and verify them) and ``grm ui`` (MLflow UI)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def reproduce(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a spct_pipeline run")],
    project_dir: Annotated[Path, typer.Option(help="project root holding data.dvc and .dvc/")] = Path("."),
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or mlruns/)")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite local changes in data/")] = False,
    remote: Annotated[
        str | None, typer.Option(help="DVC remote URL or folder (default: $GRM_DVC_REMOTE, then .dvc/config)")
    ] = None,
) -> None:
    """Restore the exact data a pipeline run used (from the DVC remote, every file hash verified) into data/ and
    write reproduce/RUN_ID/config.yaml, which reruns it on that data; prints the rerun command (with the run's git
    commit) as JSON."""
    from tasks.reproduce import reproduce_command
    from tasks.service_checks import preflight

    preflight(("mlflow", "dvc"), project_dir, tracking_uri, remote)  # a server down: exit 2 naming it, no hang
    result = reproduce_command(
        run_id, project_dir=str(project_dir), tracking_uri=tracking_uri, force=force, remote=remote
    )
    typer.echo(json.dumps(result, indent=2, default=str))


def ui(
    port: Annotated[int, typer.Option(help="TCP port")] = 5000,
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
) -> None:
    """Serve the embedded MLflow store (mlruns/) in the MLflow UI to compare runs."""
    from grm_cli.ui import ui_command

    raise typer.Exit(ui_command(port=port, host=host))
