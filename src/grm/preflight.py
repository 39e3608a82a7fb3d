"""Checks of a pipeline config's inputs that run before any orchestration starts (``grm run``'s first step).

A bad ``data.source`` folder (a landing folder's drops: ``grm.drops``), a bad row in one of its splits, rows the
configured teacher cannot judge (``grm.source_check``), or an incomplete model folder (``model.base``, a local
``model.teacher``) is refused here with the file, row and field, before Prefect, MLflow or DVC touch the project
(nothing is created or published). The flow and the stages check the same things again when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grm.config import ConfigError, general_data_needed
from grm.drops import GENERAL_FILE
from grm.files import project_path
from grm.general_data import read_general
from grm.model_files import check_model_dir
from grm.plan import check_benchdata, check_data_files
from grm.sampling.spec import FOLDER, REGISTRY, SamplerSpecError, parse_model_spec
from grm.schemas import DataError
from grm.source_check import check_source

FOLDER_FIX = "download it (grm serve/score/eval take champion) and set model.teacher to its folder"


def check_run_inputs(cfg: Any, project_dir: str | Path = ".") -> None:
    """Refuse a config whose data or model inputs cannot work; returns None when they look usable.

    Args:
        cfg: a ``PipelineConfig``.
        project_dir: the folder relative ``data.source`` paths are resolved against (as the stages do).

    Raises:
        UserError: a missing or bad ``data.source`` folder/drop/split/row, rows the teacher cannot judge, or a bad
            model folder.
    """
    check_stores_apart(cfg, project_dir)
    check_source(cfg, project_dir, training=True)  # drops, every selected row, ids across drops, the teacher
    check_data_files(cfg, project_dir, training=True)  # general.jsonl when the training mix needs it
    check_general_rows(cfg, project_dir)
    if cfg.model.base != "embedded":
        check_model_dir(cfg.model.base)
    teacher = parse_model_spec(cfg.model.teacher, field_name="model.teacher")
    if teacher.kind == REGISTRY:
        raise SamplerSpecError(
            f"{teacher.location!r}: the teacher cannot be a registry alias", field="model.teacher", fix=FOLDER_FIX
        )
    if teacher.kind == FOLDER:
        check_model_dir(teacher.location)
    check_benchdata(cfg, project_dir)  # every eval.benchmarks copy under eval.benchdata


# What a project's stores hold (relative to the project): MLflow runs and registry, stage outputs, DVC's cache and
# config, git, Prefect's home, the service settings. The data folder DVC versions must not overlap any of them.
STORES = ("mlruns", "artifacts", ".dvc", ".git", ".prefect", ".grm")


def _overlap(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_stores_apart(cfg: Any, project_dir: str | Path = ".") -> None:
    """Refuse a ``data.data_dir`` that is, holds or lies inside one of the project's stores (``data.data_dir=mlruns``
    would make DVC version, and a data switch rewrite, the live MLflow store), or is the project itself.

    Raises:
        ConfigError: naming data.data_dir, the store and the fix.
    """
    root = Path(project_dir).resolve()
    data_dir = project_path(root, cfg.data.data_dir).resolve()
    if data_dir == root or data_dir in root.parents:
        raise ConfigError(
            f"data.data_dir={cfg.data.data_dir!r} is the project folder {root} (or holds it): DVC would version "
            "the whole project, its stores included",
            fix="use a folder of its own, e.g. data.data_dir=data",
        )
    for store in STORES:
        if _overlap(data_dir, root / store):
            raise ConfigError(
                f"data.data_dir={cfg.data.data_dir!r} overlaps the project's {store}/ store: DVC would version (and a "
                "data switch rewrite) what the store keeps",
                fix="use a folder of its own, e.g. data.data_dir=data",
            )
    if cfg.data.source != "world":
        source = project_path(root, cfg.data.source).resolve()
        if data_dir == source or source in data_dir.parents:  # a source inside data_dir is versioned with it: fine
            raise ConfigError(
                f"data.data_dir={cfg.data.data_dir!r} is data.source={cfg.data.source!r} or inside it: the prepared "
                "splits would be written over (or into) the folder they are read from",
                fix="keep the prepared data (data.data_dir) and the incoming data (data.source) in separate folders",
            )


def check_general_rows(cfg: Any, project_dir: str | Path = ".") -> None:
    """Every row of the source's ``general.jsonl`` when the training mix reads it, before anything is published
    (a broken row used to pass, be versioned, and fail at ``rft.train``).

    Raises:
        DataError: every bad row (``file:line: field: problem``), or a file with no rows.
    """
    if cfg.data.source == "world" or not general_data_needed(cfg):
        return
    path = project_path(project_dir, cfg.data.source) / GENERAL_FILE
    if not path.is_file():
        return  # check_data_files names the missing file and the settings that need it
    if not read_general(path):
        raise DataError(
            path,
            [
                f"{path}: <file>: no rows, but {', '.join(general_data_needed(cfg))} mix general examples into "
                "training; add rows or set rft.general_ratio=0 rl.general_coef=0"
            ],
        )
