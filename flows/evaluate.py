"""``evaluate``: a given model (folder, ``models:/name@alias``) or the registry's champion on a pinned data version.

It never writes ``data/`` or ``data.dvc`` (the weekly training owns them): ``data_version`` names a published
version (``champion``: the one the model was trained on; ``latest``; or an md5), read from its content-addressed
copy. The score of a registered model is appended to its drift run (``tasks.drift``).
"""

from __future__ import annotations

from prefect import flow

from tasks import drift, evaluation, pinned_data, registry, summary
from tasks.engine.runtime import pipeline_run


@flow(name="evaluate", log_prints=True)
def evaluate(
    model: str = "champion",
    config_path: str | None = None,
    overrides: list[str] | None = None,
    project_dir: str = ".",
    data_version: str = "champion",
) -> dict:
    """Evaluate ``model`` (``champion``, ``challenger``, ``teacher``, ``models:/...`` or a folder) on
    ``data_version`` (``champion``, ``latest`` or an md5)."""
    with pipeline_run("evaluate", config_path, overrides, project_dir) as ctx:
        dv = pinned_data.pinned(ctx, data_version, model)
        local = registry.resolve_model(ctx, model)
        name = model if model in ("teacher", "champion", "challenger") else "model"
        report = evaluation.evaluate_model(ctx, name, local, dv)
        named = pinned_data.registered(ctx, model)
        trend = drift.log_drift(ctx.tracker, ctx.parent_run_id, *named, dv.dvc_md5, report.metrics) if named else {}
        summary.publish_results(ctx, report.metrics, stages=[report], models=[name])
    return {"run_id": ctx.parent_run_id, "data_version": dv.dvc_md5, "metrics": report.metrics, "drift": trend}
