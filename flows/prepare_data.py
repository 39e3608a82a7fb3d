"""``prepare_data``: embedded world or local JSONL -> staged splits -> GX validation -> data/ + DVC version."""

from __future__ import annotations

from prefect import flow

from tasks import data
from tasks.engine.runtime import pipeline_run


@flow(name="prepare_data", log_prints=True)
def prepare_data(config_path: str | None = None, overrides: list[str] | None = None, project_dir: str = ".") -> dict:
    """Prepare, validate and version the datasets; returns the data version (md5s, remote)."""
    with pipeline_run("prepare_data", config_path, overrides, project_dir) as ctx:
        prepared = data.prepare(ctx)
        validated = data.validate(ctx, prepared)
        dv = data.version(ctx, prepared, validated)
    return {"run_id": ctx.parent_run_id, "data": dv.tags()}
