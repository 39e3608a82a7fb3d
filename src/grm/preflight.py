"""Checks of a pipeline config's inputs that run before any orchestration starts (``grm run``'s first step).

A bad ``data.source`` folder (a landing folder's drops: ``grm.drops``), a bad row in one of its splits, rows the
configured teacher cannot judge (``grm.source_check``), or an incomplete model folder (``model.base``, a local
``model.teacher``) is refused here with the file, row and field, before Prefect, MLflow or DVC touch the project
(nothing is created or published). The flow and the stages check the same things again when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grm.model_files import check_model_dir
from grm.pipeline_config import check_benchdata, check_data_files
from grm.source_check import check_source

NON_PATH_SAMPLERS = ("world-teacher", "http://", "https://", "vllm:")


def check_run_inputs(cfg: Any, project_dir: str | Path = ".") -> None:
    """Refuse a config whose data or model inputs cannot work; returns None when they look usable.

    Args:
        cfg: a ``PipelineConfig``.
        project_dir: the folder relative ``data.source`` paths are resolved against (as the stages do).

    Raises:
        UserError: a missing or bad ``data.source`` folder/drop/split/row, rows the teacher cannot judge, or a bad
            model folder.
    """
    check_source(cfg, project_dir, training=True)  # drops, every selected row, ids across drops, the teacher
    check_data_files(cfg, project_dir, training=True)  # general.jsonl when the training mix needs it
    if cfg.model.base != "embedded":
        check_model_dir(cfg.model.base)
    teacher = cfg.model.teacher
    if not teacher.startswith(NON_PATH_SAMPLERS):
        check_model_dir(teacher)
    check_benchdata(cfg, project_dir)  # every eval.benchmarks copy under eval.benchdata
