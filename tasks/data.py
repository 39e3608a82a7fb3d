"""Data stages: ``data.prepare`` (world or local JSONL), ``data.validate`` (GX) and ``data.version`` (DVC).

Prepared splits are staged in the stage folder and validated there; only a passing dataset is published into
``data/`` and versioned, so a failing suite leaves ``data/`` and the DVC-versioned data untouched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.files import write_json_atomic
from grm.schemas import write_items
from tasks import bench, validation, versioning
from tasks.runtime import TASK_OPTIONS, RunContext, logger, run_stage
from tasks.stages import StageResult, file_md5

SPLITS = ("train", "val", "test")


def _count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


@task(name="data.prepare", cache_policy=NO_CACHE, **TASK_OPTIONS)
def prepare(ctx: RunContext) -> StageResult:
    """Write ``{train,val,test}.jsonl`` from the embedded world (``cfg.world``) or copy them from a local folder.

    Local files are copied byte for byte (no parsing): the GX suite, not the loader, judges them.
    """
    data_cfg = ctx.cfg.data
    if data_cfg.source == "world":
        config: dict[str, Any] = {"source": "world", "world": ctx.cfg.world}
        inputs: dict[str, str] = {}
    else:
        src = ctx.path(data_cfg.source)
        missing = [s for s in SPLITS if not (src / f"{s}.jsonl").exists()]
        if missing:
            raise FileNotFoundError(
                f"data.source={data_cfg.source!r}: {src} lacks {', '.join(f'{m}.jsonl' for m in missing)}; "
                "point data.source at a folder with train/val/test JSONL files or use data.source=world"
            )
        config = {"source": "folder"}
        inputs = {s: file_md5(src / f"{s}.jsonl") for s in SPLITS}

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        if data_cfg.source == "world":
            from grm.world import generate_world

            for split, items in generate_world(ctx.cfg.world).items():
                write_items(out / f"{split}.jsonl", items)
        else:
            for split in SPLITS:
                shutil.copyfile(src / f"{split}.jsonl", out / f"{split}.jsonl")
        outputs = {s: f"{s}.jsonl" for s in SPLITS}
        metrics = {f"data/{s}/items": float(_count_lines(out / f"{s}.jsonl")) for s in SPLITS}
        return outputs, metrics, {"source": data_cfg.source, "md5": {s: file_md5(out / f"{s}.jsonl") for s in SPLITS}}

    return run_stage(ctx, "data.prepare", config=config, inputs=inputs, build=build)


@task(name="data.validate", cache_policy=NO_CACHE, **TASK_OPTIONS)
def validate(ctx: RunContext, prepared: StageResult) -> StageResult:
    """Run the ``preference_items`` GX suite on the staged splits; a failure stops the flow before any training.

    On failure the Data Docs are logged to the stage's MLflow run (``data_docs/``) and kept under
    ``artifacts/validation/{key}/``; the error names every failing expectation and row.
    """
    files = {s: prepared.output(s) for s in SPLITS}

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        summary = validation.validate_items(files, ctx.cfg.data, out / "data_docs")
        write_json_atomic(out / "summary.json", summary.__dict__)
        if not summary.success:
            keep = Path(ctx.store_root).parent / "validation" / f"{prepared.key}"
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(out / "data_docs", keep / "data_docs")
            ctx.tracker.log_artifact(run_id, out / "data_docs", "data_docs")
            ctx.tracker.log_artifact(run_id, out / "summary.json", "validation")
            raise validation.DataValidationError(
                summary.suite, summary.failures, str(keep / "data_docs" / "index.html")
            )
        return {"data_docs": "data_docs", "summary": "summary.json"}, summary.metrics(), {"n_rows": summary.n_rows}

    def after(run_id: str, result: StageResult) -> None:
        ctx.tracker.log_artifact(run_id, result.output("data_docs"), "data_docs")

    return run_stage(
        ctx,
        "data.validate",
        config={"max_responses": ctx.cfg.data.max_responses, "max_chars": ctx.cfg.data.max_chars},
        inputs={"prepared": prepared},
        build=build,
        category="validation",
        after=after,
    )


@task(name="data.version", cache_policy=NO_CACHE, **TASK_OPTIONS)
def version(ctx: RunContext, prepared: StageResult, validated: StageResult) -> versioning.DataVersion:
    """Publish the validated splits into ``data/`` (only files that changed), ``dvc add`` + ``dvc push``.

    Tags the parent MLflow run with the ``data.dvc`` md5, per-file md5s and the git commit, and logs ``data.dvc``
    as ``inputs/data.dvc`` (what ``grm reproduce RUN_ID`` restores).
    """
    log = logger()
    data_dir = ctx.path(ctx.cfg.data.data_dir)
    with bench.LEDGER.measure("data.version", "versioning"):
        data_dir.mkdir(parents=True, exist_ok=True)
        for split in SPLITS:
            src, dst = prepared.output(split), data_dir / f"{split}.jsonl"
            if not dst.exists() or file_md5(dst) != file_md5(src):
                shutil.copyfile(src, dst)
        dv = versioning.version_data(ctx.project_dir, ctx.cfg.data.data_dir)
    with bench.LEDGER.measure("data.version", "tracking"):
        ctx.tracker.set_tags(ctx.parent_run_id, dv.tags())
        ctx.tracker.log_text(ctx.parent_run_id, dv.dvc_file, "inputs/data.dvc")
        ctx.tracker.log_datasets(ctx.parent_run_id, dv, ctx.cfg.data.data_dir, ctx.project_dir, ctx.cfg.data.source)
    log.info(
        "data versioned: data.dvc md5 %s, remote %s (commit data.dvc and .dvc/config to pin it in git)",
        dv.dvc_md5,
        dv.remote,
    )
    return dv


def split_path(ctx: RunContext, split: str) -> Path:
    """The published (DVC-tracked) file of ``split``."""
    return ctx.path(ctx.cfg.data.data_dir) / f"{split}.jsonl"


def split_inputs(ctx: RunContext, dv: versioning.DataVersion, *splits: str) -> dict[str, str]:
    """Input hashes of the splits a stage reads (part of its key)."""
    return {s: dv.files[f"{s}.jsonl"] for s in splits}


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
