"""Checks of a pipeline config's inputs that run before any orchestration starts (``grm run``'s first step).

A bad ``data.source`` folder, a bad row in one of its splits, or an incomplete model folder (``model.base``, a
local ``model.teacher``) is refused here with the file, row and field, before Prefect, MLflow or DVC touch the
project (nothing is created or published). The stages check the same things again when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grm.errors import InputFileError, MissingFileError
from grm.files import project_path
from grm.model_files import check_model_dir
from grm.pipeline_config import check_benchdata, check_data_files
from grm.schemas import read_items

SPLITS = ("train", "val", "test")
NON_PATH_SAMPLERS = ("world-teacher", "http://", "https://", "vllm:")


def check_run_inputs(cfg: Any, project_dir: str | Path = ".") -> None:
    """Refuse a config whose data or model inputs cannot work; returns None when they look usable.

    Args:
        cfg: a ``PipelineConfig``.
        project_dir: the folder relative ``data.source`` paths are resolved against (as the stages do).

    Raises:
        UserError: a missing or bad ``data.source`` folder/split/row, or a bad model folder.
    """
    if cfg.data.source != "world":
        src = project_path(project_dir, cfg.data.source)
        if not src.exists():
            raise MissingFileError(
                "the data.source folder does not exist",
                path=src,
                field="data.source",
                fix="point data.source at a folder with train.jsonl, val.jsonl and test.jsonl, or use world",
            )
        if not src.is_dir():
            raise InputFileError(
                "data.source must be a folder holding train.jsonl, val.jsonl and test.jsonl", path=src
            )
        for split in SPLITS:
            read_items(src / f"{split}.jsonl")
    check_data_files(cfg, project_dir, training=True)  # general.jsonl when the training mix needs it
    if cfg.model.base != "embedded":
        check_model_dir(cfg.model.base)
    teacher = cfg.model.teacher
    if not teacher.startswith(NON_PATH_SAMPLERS):
        check_model_dir(teacher)
    check_benchdata(cfg, project_dir)  # every eval.benchmarks copy under eval.benchdata
