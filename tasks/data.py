"""Data stages: ``data.prepare`` (world or local JSONL), ``data.validate`` (GX) and ``data.version`` (DVC).

Prepared splits are staged in the stage folder and checked there by everything that can fail on them later: the
strict loader (``grm.schemas.read_items``: JSON, encoding, row rules) in ``data.prepare`` and the GX suite (row
rules, per-split minimum counts, decontamination) in ``data.validate``. Only a dataset that passed both is
published into ``data/`` and pushed; ``data.version`` itself is all or nothing (``versioning.Snapshot``), so after
any failed run ``data/``, ``data.dvc`` and the DVC remote are byte for byte what they were.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm import drops as drops_mod
from grm.config import DataMinItemsConfig, PipelineConfig
from grm.files import project_path, write_json_atomic
from grm.schemas import read_items, write_items
from grm.world.generator import WorldConfig
from tasks import data_store, validation, versioning
from tasks.engine import timings
from tasks.engine.runtime import TASK_OPTIONS, RunContext, logger, run_stage
from tasks.engine.stages import (
    BuildContext,
    FileInput,
    HashedFile,
    Stage,
    StageOutput,
    StageResult,
    file_md5,
    register,
)

SPLITS = ("train", "val", "test")
GENERAL = "general.jsonl"  # optional, beside the splits of a data.source folder


def _count_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


@dataclass(frozen=True)
class PrepareSlice:
    """``data.prepare`` reads ``world`` to generate the splits, or (``world`` None) copies the ``data.source``
    folder's splits, which are file inputs keyed by content (moving the folder does not recompute). For a landing
    folder the file inputs are the splits of the drops ``data.window`` selected (``{drop}/{split}.jsonl``), so a new
    drop recomputes and the same drops reuse (``grm.drops``); their order is a function of their names."""

    world: WorldConfig | None


def _selection(cfg: PipelineConfig, project_dir: str | Path) -> drops_mod.Selection | None:
    if cfg.data.source == "world":
        return None
    root = project_path(project_dir, cfg.data.source)
    if not drops_mod.is_landing(root) or not root.exists():
        return None  # one folder of splits (a missing one fails as a missing file input)
    return drops_mod.select_drops(root, cfg.data.window, project_path(project_dir, cfg.data.data_dir))


def select_prepare(cfg: PipelineConfig) -> PrepareSlice:
    return PrepareSlice(cfg.world if cfg.data.source == "world" else None)


def prepare_files(cfg: PipelineConfig, project_dir: str | Path = ".") -> dict[str, FileInput]:
    """The split files read: a folder's three, or every selected drop's (``data.window``), keyed ``drop/split``."""
    if cfg.data.source == "world":
        return {}
    fix = "point data.source at a folder with train/val/test JSONL files or use data.source=world"
    sel = _selection(cfg, project_dir)
    if sel is None:
        files = {f"{s}.jsonl": FileInput(str(Path(cfg.data.source) / f"{s}.jsonl"), "data.source", fix=fix)
                 for s in SPLITS}  # fmt: skip
    else:
        files = {f"{d.name}/{s}.jsonl": FileInput(str(d.split(s)), "data.source", fix=fix)
                 for d in sel.selected for s in SPLITS}  # fmt: skip
    # general.jsonl (beside the splits, or at a landing folder's root) is data too: versioned with the splits, so
    # `grm reproduce` restores what the run mixed in
    files[GENERAL] = FileInput(str(Path(cfg.data.source) / GENERAL), "data.source", required=False)
    return files


def concatenate(sources: list[Path], dst: Path) -> None:
    """``sources`` byte for byte, one after the other (a newline added where a file does not end with one)."""
    with dst.open("wb") as out:
        for src in sources:
            data = src.read_bytes()
            out.write(data if not data or data.endswith(b"\n") else data + b"\n")


def build_prepare(s: PrepareSlice, b: BuildContext) -> StageOutput:
    """Write ``{train,val,test}.jsonl`` from the embedded world, or copy them byte for byte from a local folder, or
    concatenate the selected drops' splits in arrival order.

    A folder's splits are first read with the strict loader the training and evaluation stages use, so a JSON,
    encoding or row error fails here as that error (``DataError`` naming the source file, line and field), not as
    GX rows without an id, and never after ``data.version`` published the data. Empty splits pass the loader of a
    one-folder source; the GX suite counts rows against ``data.min_items``. Drops are read as ``grm run`` checks
    them (``grm.drops.read_selection``: no empty split, ids unique across drops).
    """
    info: dict[str, Any] = {"source": "world" if s.world is not None else "folder"}
    if s.world is not None:
        from grm.world import generate_world

        for split, items in generate_world(s.world).items():
            write_items(b.out / f"{split}.jsonl", items)
    elif any("/" in name for name in b.files):  # the selected drops of a landing folder
        files = {name: path for name, path in b.files.items() if path is not None and "/" in name}  # not general
        names = sorted({name.split("/")[0] for name in files}, key=drops_mod.arrival_key)
        found = tuple(drops_mod.Drop(d, files[f"{d}/train.jsonl"].parent) for d in names)
        rows = drops_mod.read_selection(drops_mod.Selection(found[0].path.parent, True, "", found, found, None))
        for split in SPLITS:
            concatenate([files[f"{d}/{split}.jsonl"] for d in names], b.out / f"{split}.jsonl")
        info = {"source": "drops", "drops": names,
                "items": {d: {sp: len(r) for sp, r in rows[d].items()} for d in names}}  # fmt: skip
    else:
        for split in SPLITS:
            src = b.files[f"{split}.jsonl"]
            assert src is not None  # required file inputs
            read_items(src, allow_empty=True)
            shutil.copyfile(src, b.out / f"{split}.jsonl")
    outputs = {sp: f"{sp}.jsonl" for sp in SPLITS}
    general = b.files.get(GENERAL)
    if general is not None:  # the source folder's general-instruction data, published with the splits
        shutil.copyfile(general, b.out / GENERAL)
        outputs["general"] = GENERAL
    metrics = {f"data/{sp}/items": float(_count_lines(b.out / f"{sp}.jsonl")) for sp in SPLITS}
    return StageOutput(outputs, metrics, info | {"md5": {sp: file_md5(b.out / f"{sp}.jsonl") for sp in SPLITS}})


def source_overrides(data: str | None, window: str | None) -> list[str]:
    """The overrides a flow's ``data``/``window`` parameters stand for (None: keep the config's value)."""
    return [f"{k}={v}" for k, v in (("data.source", data), ("data.window", window)) if v is not None]


def drop_tags(names: list[str], window: str) -> dict[str, str]:
    """The parent run's tags naming the drops a run trained on (``grm.data.drops``: first, last and count when the
    list would pass MLflow's tag length)."""
    joined = ",".join(names)
    if len(joined) > 4000:
        joined = f"{names[0]},...,{names[-1]} ({len(names)} drops)"
    return {"grm.data.drops": joined, "grm.data.drop_count": str(len(names)), "grm.data.window": window}


PREPARE = register(Stage("data.prepare", select_prepare, build_prepare, files=prepare_files))


@task(name="data.prepare", cache_policy=NO_CACHE, **TASK_OPTIONS)
def prepare(ctx: RunContext) -> StageResult:
    """The ``data.prepare`` stage (``build_prepare``); a landing folder's run is tagged with the drops it read."""
    result = run_stage(ctx, PREPARE)
    assert result is not None
    if result.info.get("source") == "drops":
        names = result.info["drops"]
        logger().info("data.prepare: %d drop(s) of %s (data.window=%s): %s", len(names), ctx.cfg.data.source,
                      ctx.cfg.data.window, ", ".join(names))  # fmt: skip
        ctx.tracker.set_tags(ctx.parent_run_id, drop_tags(names, ctx.cfg.data.window))
    return result


@dataclass(frozen=True)
class DataLimits:
    """The limits every dataset is validated against (``data.max_responses``, ``data.max_chars``)."""

    max_responses: int
    max_chars: int


def select_limits(cfg: PipelineConfig) -> DataLimits:
    return DataLimits(cfg.data.max_responses, cfg.data.max_chars)


@dataclass(frozen=True)
class ValidateSlice:
    """``data.validate``: the row limits and the fewest items per split (``data.min_items``)."""

    limits: DataLimits
    min_items: DataMinItemsConfig


def select_validate(cfg: PipelineConfig) -> ValidateSlice:
    return ValidateSlice(select_limits(cfg), cfg.data.min_items)


def build_validate(s: ValidateSlice, b: BuildContext) -> StageOutput:
    """Run the ``preference_items`` GX suite on the staged splits; a failure stops the flow before any training.

    On failure the Data Docs are logged to the stage's MLflow run (``data_docs/``) and kept under
    ``artifacts/validation/{key}/``; the error names every failing expectation and row.
    """
    prepared: StageResult = b.inputs["prepared"]
    files = {sp: prepared.output(sp) for sp in SPLITS}
    summary = validation.validate_items(files, s.limits, b.out / "data_docs", s.min_items)
    write_json_atomic(b.out / "summary.json", summary.__dict__)
    if not summary.success:
        keep = b.store_root.parent / "validation" / f"{prepared.key}"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(b.out / "data_docs", keep / "data_docs")
        b.tracker.log_artifact(b.run_id, b.out / "data_docs", "data_docs")
        b.tracker.log_artifact(b.run_id, b.out / "summary.json", "validation")
        raise validation.DataValidationError(summary.suite, summary.failures, str(keep / "data_docs" / "index.html"))
    return StageOutput(
        {"data_docs": "data_docs", "summary": "summary.json"}, summary.metrics(), {"n_rows": summary.n_rows}
    )


def after_validate(s: ValidateSlice, tracker: Any, run_id: str, result: StageResult) -> None:
    tracker.log_artifact(run_id, result.output("data_docs"), "data_docs")


VALIDATE = register(
    Stage(
        "data.validate", select_validate, build_validate, inputs=("prepared",), after=after_validate,
        category="validation",
    )
)  # fmt: skip


@task(name="data.validate", cache_policy=NO_CACHE, **TASK_OPTIONS)
def validate(ctx: RunContext, prepared: StageResult) -> StageResult:
    """The ``data.validate`` stage (``build_validate``)."""
    result = run_stage(ctx, VALIDATE, {"prepared": prepared})
    assert result is not None
    return result


@task(name="data.version", cache_policy=NO_CACHE, **TASK_OPTIONS)
def version(ctx: RunContext, prepared: StageResult, validated: StageResult) -> versioning.DataVersion:
    """Publish the validated splits into ``data/`` (only files that changed), ``dvc add`` + ``dvc push``.

    ``validated`` is taken (not read) so that the flow cannot call this before ``data.validate`` passed. The
    publish is all or nothing: a failure here (DVC, the remote, MLflow) restores ``data/``, ``data.dvc`` and the
    remote folder as they were (``versioning.Snapshot``).

    Tags the parent MLflow run with the ``data.dvc`` md5, per-file md5s and the git commit, and logs ``data.dvc``
    as ``inputs/data.dvc`` (what ``grm reproduce RUN_ID`` restores).
    """
    log = logger()
    sources = {f"{split}.jsonl": prepared.output(split) for split in SPLITS}
    if "general" in prepared.outputs:
        sources[GENERAL] = prepared.output("general")
    data_dir = ctx.cfg.data.data_dir
    lock = Path(ctx.store_root).parent / "locks" / "dvc.lock"
    with versioning.repo_lock(lock):  # one publish at a time per project (dvc init/add/push, rollback)
        with timings.LEDGER.measure("data.version", "versioning"):
            before = versioning.Snapshot.take(ctx.project_dir, data_dir, list(sources))
        try:
            with timings.LEDGER.measure("data.version", "versioning"):
                dv = versioning.publish_data(ctx.project_dir, data_dir, sources)
                dv = materialize(ctx, dv, sources)
            with timings.LEDGER.measure("data.version", "tracking"):
                ctx.tracker.set_tags(ctx.parent_run_id, dv.tags())
                ctx.tracker.log_text(ctx.parent_run_id, dv.dvc_file, "inputs/data.dvc")
                ctx.tracker.log_datasets(ctx.parent_run_id, dv, data_dir, ctx.project_dir, ctx.cfg.data.source)
        except BaseException:
            before.restore()
            log.error("data.version failed: %s, data.dvc and the DVC remote are restored as they were", data_dir)
            raise
    log.info(
        "data versioned: data.dvc md5 %s, remote %s (commit data.dvc and .dvc/config to pin it in git)",
        dv.dvc_md5,
        dv.remote,
    )
    return dv


def store_root(ctx: RunContext) -> Path:
    """``artifacts/datasets``: the content-addressed copies of data versions (``tasks.data_store``)."""
    return Path(ctx.store_root).parent / data_store.STORE


def materialize(ctx: RunContext, dv: versioning.DataVersion, sources: dict[str, Path]) -> versioning.DataVersion:
    """Copy the just published version into ``artifacts/datasets/{md5}/`` (verified against ``dv.files``); the stages
    of this run read that copy, which no later publish of ``data/`` can change."""
    folder = data_store.from_files(store_root(ctx), dv.dvc_md5, sources, dv.files)
    return dataclasses.replace(dv, local_dir=str(folder))


def split(ctx: RunContext, dv: versioning.DataVersion, name: str) -> HashedFile:
    """Split ``name`` of data version ``dv`` as an upstream input, keyed by its DVC md5: the content-addressed copy
    (``dv.local_dir``), never the live ``data/`` folder another run of the project may republish meanwhile. The
    stage verifies the file's md5 against the key before and after its build (``tasks.engine.stages.verify_inputs``)."""
    if not dv.local_dir:
        raise ValueError(f"data version {dv.dvc_md5} has no local copy; get it from data.version or data.pinned")
    return HashedFile(str(Path(dv.local_dir) / f"{name}.jsonl"), dv.files[f"{name}.jsonl"])


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
