"""MLflow logging of a ``grm eval`` run (the tracking boundary; the core never imports mlflow)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import mlflow

DEFAULT_EXPERIMENT = "grm-eval"


def log_eval_report(
    report_dir: str | Path,
    metrics: dict[str, float | None],
    params: dict[str, Any],
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
) -> str:
    """Log one evaluation to MLflow: params, the flat metrics and the report folder as artifacts.

    The tracking URI comes from ``MLFLOW_TRACKING_URI`` (MLflow's default when unset).

    Args:
        report_dir: folder written by ``grm.eval.report.benchmark.write_reports``.
        metrics: ``eval/{benchmark}/{model}/{method}_k{k}/{metric}`` -> value; None values are skipped.
        params: run parameters (values are stringified; None becomes "").
        experiment: MLflow experiment name.
        run_name: MLflow run name (default: the report folder's name).

    Returns:
        The MLflow run id.
    """
    report_dir = Path(report_dir)
    if os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    exp = mlflow.set_experiment(experiment)
    if exp.tags.get("mlflow.experimentKind") != "custom_model_development":  # model comparison, not GenAI traces
        mlflow.MlflowClient().set_experiment_tag(
            exp.experiment_id, "mlflow.experimentKind", "custom_model_development"
        )
    with mlflow.start_run(run_name=run_name or report_dir.name) as run:
        mlflow.log_params({k: "" if v is None else str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v is not None})
        mlflow.log_artifacts(str(report_dir), artifact_path="eval_report")
        return run.info.run_id
