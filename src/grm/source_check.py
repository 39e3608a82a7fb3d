"""Everything about a ``data.source`` that can be checked before a run publishes or trains anything.

``check_source`` is what ``grm run``'s preflight, the ``spct_pipeline`` flow (before ``data.prepare``, so before
``data.version`` publishes) and ``grm data check`` run: the landing layout and the ``data.window`` selection
(``grm.drops``), the strict row loader on every selected split (file, line, field), ids unique across drops, the
``general.jsonl`` format (and that it has rows when the training mix needs it), and that the configured teacher can
judge the rows it will be asked to judge. The GX suite (counts, limits, decontamination) needs the combined splits
and great_expectations, so it runs in ``data.validate`` and ``grm data check``, not here.

Why the teacher check: the default teacher (``model.teacher: world-teacher``) is a program that judges only the
embedded world's queries. Without this check a folder of real text passed preflight, was published to DVC and
failed at ``rft.sample``. The check asks the world teacher's own input rule (``grm.world.teacher.item_problem``)
and its oracle (``World.solve``) about every train/test row (the splits it samples and is evaluated on): cheap
(regexes and a dict lookup) and exactly what would fail later. Other teachers (a model folder, ``vllm:PATH``, an
HTTP server) read any text; they are not contacted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm.drops import SPLITS, Row, Selection, read_selection, select_drops
from grm.errors import UserError
from grm.files import project_path
from grm.sampling.spec import is_world_teacher

JUDGED_SPLITS = ("train", "test")  # rft.sample judges train; the teacher's own evaluation judges test
SHOWN = 5  # rows quoted in the teacher error


class TeacherCannotJudgeError(UserError, ValueError):
    """The configured teacher cannot judge the data's rows; the message names rows and the config keys to set."""


@dataclass(frozen=True)
class SourceReport:
    """What a run on this source reads: the selection, items per split per drop, general rows (None: no file)."""

    selection: Selection
    counts: dict[str, dict[str, int]]
    general_rows: int | None
    notes: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        return {s: sum(c[s] for c in self.counts.values()) for s in SPLITS}


def source_folder(cfg: Any, project_dir: str | Path) -> Path:
    return project_path(project_dir, cfg.data.source)


def check_source(cfg: Any, project_dir: str | Path = ".", *, training: bool = True) -> SourceReport | None:
    """Check ``cfg.data.source`` as a run would read it; None for ``world``.

    Args:
        cfg: a ``PipelineConfig``.
        project_dir: the folder a relative ``data.source`` is resolved against.
        training: the run trains (``spct_pipeline``): general data is required when the mix needs it, and the teacher
            must be able to judge the rows.

    Raises:
        UserError: layout (``grm.drops``), rows (``DataError``), general data, or ``TeacherCannotJudgeError``.
    """
    from grm.config import general_data_needed
    from grm.general_data import read_general

    if cfg.data.source == "world":
        return None
    data_dir = project_path(project_dir, cfg.data.data_dir)
    selection = select_drops(source_folder(cfg, project_dir), cfg.data.window, data_dir)
    rows = read_selection(selection)
    counts = {drop: {s: len(r) for s, r in splits.items()} for drop, splits in rows.items()}
    totals = {s: sum(c[s] for c in counts.values()) for s in SPLITS}
    short = [s for s in SPLITS if totals[s] < getattr(cfg.data.min_items, s)]
    if short:
        s = short[0]
        raise UserError(
            f"the {len(selection.selected)} selected drop(s) {selection.names} hold {totals[s]} {s} item(s), fewer "
            f"than data.min_items.{s}={getattr(cfg.data.min_items, s)}",
            path=selection.root,
            field=f"data.min_items.{s}",
            fix=f"add {s} rows to a drop, widen data.window (now {cfg.data.window!r}), or lower data.min_items.{s}",
        )
    general_rows = len(read_general(selection.general)) if selection.general is not None else None
    needed = general_data_needed(cfg) if training else []
    if needed and general_rows == 0:  # a missing file: check_data_files names the keys and the fix
        where = selection.general or selection.root / "general.jsonl"
        raise UserError(
            f"{', '.join(needed)} mix general-instruction data into training, but it has no rows",
            path=where,
            field="data.source",
            fix='add rows {"prompt": ..., "completion": ...} (docs/data.md), or train on judgements only with '
            "--set rft.general_ratio=0 --set rl.general_coef=0",
        )
    if training:
        check_teacher_can_judge(cfg, [r for splits in rows.values() for s in JUDGED_SPLITS for r in splits[s]])
    notes = []
    if not selection.landing and cfg.data.window != "all":
        notes.append(
            f"data.window={cfg.data.window} ignored: {selection.root} holds the split files itself (one drop)"
        )
    return SourceReport(selection, counts, general_rows, notes)


def world_problem(row: Row, world: Any) -> str | None:
    """Why the world teacher cannot judge ``row`` (``field: problem``), or None."""
    from grm.world.teacher import item_problem

    problem = item_problem(row.item)
    if problem is not None:
        return problem
    try:
        world.solve(row.item.query)
    except (KeyError, ValueError):
        return f"query: {row.item.query[:60]!r} names something the embedded world does not know"
    return None


def check_teacher_can_judge(cfg: Any, rows: list[Row]) -> None:
    """Refuse rows the configured teacher cannot judge (only the world teacher has a rule to ask).

    Raises:
        TeacherCannotJudgeError: naming the first rows (file:line: field: problem), the count, and the config keys
            that set a real teacher.
    """
    from grm.world.generator import World

    if not is_world_teacher(cfg.model.teacher) or not rows:
        return
    world = World(cfg.world)
    bad = [(r, p) for r in rows if (p := world_problem(r, world)) is not None]
    if not bad:
        return
    shown = "\n".join(f"  {r.path}:{r.line}: {p}" for r, p in bad[:SHOWN])
    more = f"\n  ... and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    student = (
        "; the student too: model.base=embedded knows only the world's words, set model.base to a model folder"
        if cfg.model.base == "embedded"
        else ""
    )
    raise TeacherCannotJudgeError(
        f"model.teacher={cfg.model.teacher!r} cannot judge {len(bad)} of {len(rows)} train/test rows of "
        f"data.source={cfg.data.source!r}: the world teacher is a program that judges only the embedded world's "
        f"queries (e.g. '2 + 3 ?'), not real text. Nothing was published.\n{shown}{more}",
        field="model.teacher",
        fix="set a teacher that reads your data: --set model.teacher=http://HOST:PORT/v1 (an OpenAI-compatible "
        "server; model.teacher_model_name picks the served model), --set model.teacher=vllm:MODEL_FOLDER, or "
        f"--set model.teacher=MODEL_FOLDER (a local HF model){student}; or use data.source=world",
    )
