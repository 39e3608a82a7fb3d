"""``grm run``: the whole SPCT pipeline (Prefect flow ``spct_pipeline``) on a config, then the results table."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


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
    """Run data -> validation -> rejective sampling -> RFT -> RL -> meta RM -> evaluation -> registry."""
    from grm.config import load_config
    from grm.pipeline_config import PipelineConfig
    from grm.preflight import check_run_inputs

    # Config and input errors are reported (exit 2) before Prefect, MLflow or DVC touch the project.
    override = [*(override or []), *[f"{k}={v}" for k, v in (("data.source", data), ("data.window", window)) if v]]
    cfg = load_config(PipelineConfig, [config], override)
    check_run_inputs(cfg, project_dir)
    from tasks import prefect_env

    prefect_env.configure_defaults(project_dir)  # .prefect/ inside --project-dir, whatever the working directory
    prefect_env.start_temporary_server()  # under a lock: two first runs at once raced on its database
    from flows.pipeline import spct_pipeline
    from grm.evaluation import heldout_benchmark
    from grm.report import results_table, single_sample_row

    out = spct_pipeline(str(config), list(override or []), str(project_dir))
    bench = heldout_benchmark(cfg.data.source)
    typer.echo("")
    typer.echo(f"Accuracy on the {bench} test split (%, 95% bootstrap interval), T={cfg.eval.temperature}:")
    typer.echo(results_table(out["metrics"], bench, cfg.eval.ks))
    typer.echo(single_sample_row(out["metrics"], bench))
    if cfg.eval.benchmarks:
        from grm.report import benchmark_table

        typer.echo(
            f"\nReal benchmarks (eval.benchmarks, {cfg.eval.benchmark_limit or 'all'} items each; %, official metric):"
        )
        if cfg.model.base == "embedded":
            typer.echo(
                "protocol check only: the embedded tiny model reads English benchmark text as <unk> tokens and has "
                f"{cfg.model.tiny.max_position_embeddings} positions (items cut to fit, counted); not a quality measure"
            )
        typer.echo(benchmark_table(out["metrics"], cfg.eval.benchmarks, cfg.eval.ks))
    if out.get("gaps_table"):
        typer.echo("\nThe paper's orderings, paired over the same test items (gap in points, 95% bootstrap):")
        typer.echo(out["gaps_table"])
    decision = out.get("registry") or {}
    if decision.get("noop"):  # nothing registered: the same model as an earlier run
        link = decision["same_as"].get("link")
        typer.echo(f"registry: {decision['reason']}" + (f" ({link})" if link else ""))
    elif decision:
        typer.echo(
            f"registry: {decision['model']} v{decision['version']} -> {decision['alias']} ({decision['reason']})"
        )
    typer.echo(f"MLflow run {out['run_id']}: browse with `make mlflow-ui` (http://127.0.0.1:5000)")
