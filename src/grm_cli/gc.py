"""``grm gc``: remove stage folders, downloaded models and registry versions that no alias or recent run uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def gc_command(
    project_dir: Annotated[Path, typer.Option(help="project root holding artifacts/ and mlruns/")] = Path("."),
    keep_runs: Annotated[int, typer.Option(help="keep the stage folders of the last N pipeline runs")] = 3,
    keep_versions: Annotated[
        int, typer.Option(help="keep the newest N versions of each registered model (alias holders always stay)")
    ] = 3,
    yes: Annotated[bool, typer.Option("--yes", help="delete (without it: a dry run that only lists)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only list what would be removed (the default)")] = False,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default: $MLFLOW_TRACKING_URI or mlruns/)")
    ] = None,
) -> None:
    """Remove what no alias and no recent run uses; a dry run (the default) lists it with its size."""
    from grm.errors import UserError
    from tasks.gc import apply_gc, human, plan_gc

    if yes and dry_run:
        raise UserError("--yes and --dry-run contradict each other: pass one")
    from tasks.service_checks import preflight

    preflight(("mlflow",), project_dir, tracking_uri)  # a server down: exit 2 naming it, no hang
    plan = plan_gc(project_dir, keep_runs, keep_versions, tracking_uri)
    verb = "removing" if yes else "would remove"
    for r in plan.remove:
        where = f" {r.path}" if r.path else ""
        typer.echo(f"{verb} {r.kind} {r.what} ({human(r.bytes)}){where}: {r.why}")
    for note in plan.notes:
        typer.echo(f"note: {note}")
    kept = ", ".join(f"{n} {k}" for k, n in plan.kept.items())
    typer.echo(f"{len(plan.remove)} to remove, {human(plan.bytes)}; kept: {kept}")
    if not yes:
        typer.echo("dry run: nothing removed; rerun with --yes to delete")
        return
    for line in apply_gc(plan, project_dir, tracking_uri):
        typer.echo(line)
