"""``grm run``: the whole SPCT pipeline (Prefect flow ``spct_pipeline``) on a config, then the results table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grm_cli import supervise


def run_command(
    config: Annotated[Path, typer.Option(help="pipeline YAML (configs/default.yaml: the embedded world, CPU)")] = Path(
        "configs/default.yaml"
    ),
    override: Annotated[
        list[str] | None, typer.Option("--set", help="dotted override, e.g. --set rl.beta=0.04")
    ] = None,
    project_dir: Annotated[Path, typer.Option(help="root of data/, artifacts/, mlruns/")] = Path("."),
    data: Annotated[
        str | None,
        typer.Option(help="train on this landing folder of drops or folder of splits (= --set data.source=DATA)"),
    ] = None,
    window: Annotated[
        str | None, typer.Option(help="which drops: all | last:N | since:YYYY-MM-DD (= --set data.window=WINDOW)")
    ] = None,
) -> None:
    """Run data -> validation -> rejective sampling -> RFT -> RL -> meta RM -> evaluation -> registry.

    Ctrl-C or SIGTERM stops the run within a few seconds, children included (``grm_cli.supervise``); a rerun of the
    same command resumes at the first stage that had not completed.
    """
    from grm.plan import load_pipeline
    from grm.preflight import check_run_inputs

    # Config and input errors are reported (exit 2) before Prefect, MLflow or DVC touch the project.
    override = [*(override or []), *[f"{k}={v}" for k, v in (("data.source", data), ("data.window", window)) if v]]
    cfg = load_pipeline([config], override)
    if not supervise.supervised():  # the supervising parent: check, then run the pipeline in a child process group
        check_run_inputs(cfg, project_dir)
        argv = ["run", "--config", str(config), "--project-dir", str(project_dir)]
        argv += [arg for text in override for arg in ("--set", text)]
        raise typer.Exit(supervise.run_supervised(argv, echo=typer.echo))
    from tasks import prefect_env

    prefect_env.configure_defaults(project_dir)  # .prefect/ inside --project-dir, whatever the working directory
    from tasks.service_checks import preflight

    # a server that is down or refuses the credentials: exit 2 naming it now, not after minutes of retries
    needs = ("mlflow", "prefect", "dvc") if cfg.tracking.enabled else ("prefect", "dvc")
    preflight(needs, project_dir, cfg.tracking.tracking_uri)
    prefect_env.start_temporary_server()  # under a lock: two first runs at once raced on its database
    from flows.pipeline import spct_pipeline

    supervise.quiet_user_error_tracebacks()  # bad data found inside the flow: one message, exit 2 (not 4 tracebacks)
    from grm.eval.report.results import results_report
    from tasks import summary, tracking

    out = spct_pipeline(str(config), list(override or []), str(project_dir))
    typer.echo("")
    typer.echo(results_report(out["metrics"], cfg, out.get("gaps_table")))  # also the MLflow run's description
    decision = out.get("registry") or {}
    if decision.get("noop"):  # nothing registered: the same model as an earlier run
        link = decision["same_as"].get("link")
        typer.echo(f"registry: {decision['reason']}" + (f" ({link})" if link else ""))
    elif decision:
        typer.echo(
            f"registry: {decision['model']} v{decision['version']} -> {decision['alias']} ({decision['reason']})"
        )
    tracker = tracking.make_tracker(cfg.tracking, cfg.tracking.experiment, project_dir)
    links = summary.run_links(tracker, out["run_id"])
    if links:
        typer.echo(f"MLflow run {out.get('run_name', '')} ({out['run_id']}):")
    for label, key in (("runs table", "runs"), ("this run", "run"), ("compare with the previous run", "compare")):
        if key in links:
            typer.echo(f"  {label}: {links[key]}")
    if links:
        typer.echo(f"  {summary.how_to_open(tracker)}")
