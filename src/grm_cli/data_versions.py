"""``grm data versions`` (every published data version: date, size, md5, runs) and ``grm data pull`` (restore one
into ``data/`` or a folder of your choice). The logic is in ``tasks.data_versions``; this module is the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[Path, typer.Option(help="project root holding data.dvc and .dvc/")]
TrackingUri = Annotated[str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or mlruns/)")]
Remote = Annotated[
    str | None, typer.Option(help="DVC remote URL or folder (default: $GRM_DVC_REMOTE, then .dvc/config)")
]


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def versions(
    project_dir: ProjectDir = Path("."),
    tracking_uri: TrackingUri = None,
    remote: Remote = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print JSON (one object per version) instead of a table")
    ] = False,
) -> None:
    """List every data version: first published (UTC), size, md5, whether the DVC remote holds it, and the MLflow
    runs that used it (oldest first)."""
    from tasks.data_versions import list_versions
    from tasks.service_checks import preflight

    preflight(("mlflow", "dvc"), project_dir, tracking_uri, remote)  # a server down: exit 2 naming it, no hang
    found = list_versions(project_dir, tracking_uri, remote)
    if as_json:
        typer.echo(json.dumps([v.as_dict() for v in found], indent=2))
        return
    if not found:
        typer.echo("no data version yet: `grm run` (or `python -m flows prepare_data`) publishes one")
        return
    typer.echo(f"{'date (UTC)':<26} {'size':>9} {'files':>5} {'md5':<37} {'remote':<6} runs")
    for v in found:
        remote_mark = {True: "yes", False: "NO", None: "?"}[v.in_remote]
        runs = ", ".join(v.runs[-3:]) + (f" (+{len(v.runs) - 3} older)" if len(v.runs) > 3 else "")
        typer.echo(
            f"{v.date or '?':<26} {_size(v.size):>9} {v.nfiles or '?':>5} {v.md5:<37} {remote_mark:<6} {runs or '-'}"
        )


def pull(
    as_of: Annotated[
        str | None, typer.Option(help="the newest version published on or before DATE (YYYY-MM-DD, UTC)")
    ] = None,
    run: Annotated[str | None, typer.Option(help="the version MLflow run RUN_ID used")] = None,
    version: Annotated[
        str | None, typer.Option(help="a version's md5 (or a unique prefix), as `grm data versions`")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="restore into this folder instead of data/ (data.dvc untouched)")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite local changes in data/ (or files in --out)")] = False,
    project_dir: ProjectDir = Path("."),
    tracking_uri: TrackingUri = None,
    remote: Remote = None,
) -> None:
    """Restore one data version from the DVC remote, every file md5-verified: into data/ + data.dvc (refusing to
    overwrite changes not recorded in data.dvc), or into --out DIR. Prints what was restored as JSON."""
    from tasks.data_pull import pull_version
    from tasks.service_checks import preflight

    preflight(("mlflow", "dvc") if run or as_of else ("dvc",), project_dir, tracking_uri, remote)
    result = pull_version(
        project_dir, as_of=as_of, run=run, version=version, out=out, force=force,
        tracking_uri=tracking_uri, remote=remote,
    )  # fmt: skip
    typer.echo(json.dumps(result, indent=2))
