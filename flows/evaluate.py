"""``evaluate``: a given model (folder, ``models:/name@alias``) or the registry's champion on the test split."""

from __future__ import annotations

from prefect import flow

from tasks import data, evaluation, registry, summary
from tasks.runtime import pipeline_run


@flow(name="evaluate", log_prints=True)
def evaluate(
    model: str = "champion",
    config_path: str | None = None,
    overrides: list[str] | None = None,
    project_dir: str = ".",
) -> dict:
    """Evaluate ``model`` (``champion``, ``challenger``, ``teacher``, ``models:/...`` or a folder)."""
    with pipeline_run("evaluate", config_path, overrides, project_dir) as ctx:
        prepared = data.prepare(ctx)
        validated = data.validate(ctx, prepared)
        dv = data.version(ctx, prepared, validated)
        local = registry.resolve_model(ctx, model)
        name = model if model in ("teacher", "champion", "challenger") else "model"
        report = evaluation.evaluate_model(ctx, name, local, dv)
        summary.publish_results(ctx, report.metrics, stages=[prepared, validated, report], models=[name])
    return {"run_id": ctx.parent_run_id, "metrics": report.metrics}
