"""Landing folders of data drops, and the rule for what a run trains on (``data.source`` + ``data.window``).

``data.source`` is ``world`` or a folder, read in one of two layouts (docs/data.md):

* **one drop**: the folder holds ``train.jsonl``, ``val.jsonl`` and ``test.jsonl`` itself (+ ``general.jsonl``);
* **a landing folder**: it holds no split file, and every subfolder is a *drop* (one delivery of new data: its own
  ``train/val/test.jsonl``), e.g. ``incoming/2026-w49/``, ``incoming/2026-w50/``. Drops arrive in name order
  (numbers inside names compare as numbers: ``v2`` before ``v10``; dated names ``2026-12-07`` or ``2026-w50`` sort
  by date). General-instruction data, shared by every drop, is the landing folder's own ``general.jsonl``.
  A subfolder whose name starts with ``.`` or ``_`` is not a drop yet: copy a new drop there and rename it when
  complete, so a run never reads half a copy.

``data.window`` picks the drops a run reads: ``all`` (every drop so far), ``last:N`` (the N newest) or
``since:YYYY-MM-DD`` (drops dated on or after that day; every drop name must then start with a date). The selected
drops' splits are concatenated in arrival order; an item id may appear only once across them (a landed drop is
immutable: correct a row by editing the drop that holds it, which changes its content and so the run's data key).

Nothing is skipped silently: an empty or half-copied drop (a split file missing), a stray ``.jsonl`` (a typo such as
``tran.jsonl``), ``general.jsonl`` inside a drop, or a ``since:`` window over an undated drop is refused with the
path and the fix. The window applies to landing folders only; a one-drop folder is always read whole.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from grm.errors import InputFileError, MissingFileError, UserError
from grm.files import iter_lines
from grm.schemas import DataError, Item, read_items

SPLITS = ("train", "val", "test")
SPLIT_FILES = tuple(f"{s}.jsonl" for s in SPLITS)
GENERAL_FILE = "general.jsonl"
WINDOW_FORMS = "'all', 'last:N' (N >= 1) or 'since:YYYY-MM-DD'"
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_WEEK_RE = re.compile(r"^(\d{4})-[wW](\d{1,2})(?!\d)")


@dataclass(frozen=True)
class Window:
    """A parsed ``data.window``: ``kind`` all | last | since, with ``n`` (last) or ``since`` (since)."""

    kind: str
    n: int = 0
    since: dt.date | None = None


def parse_window(text: str) -> Window:
    """Parse ``data.window``.

    Example:
        >>> parse_window("last:2")
        Window(kind='last', n=2, since=None)

    Raises:
        ValueError: naming the accepted forms.
    """
    text = str(text).strip()
    if text == "all":
        return Window("all")
    kind, _, arg = text.partition(":")
    if kind == "last" and arg.isdigit() and int(arg) >= 1:
        return Window("last", n=int(arg))
    if kind == "since":
        try:
            return Window("since", since=dt.date.fromisoformat(arg))
        except ValueError:
            pass
    raise ValueError(f"data.window={text!r}: use {WINDOW_FORMS}")


def drop_date(name: str) -> dt.date | None:
    """The date a drop's name starts with: ``2026-12-07...`` or the Monday of ISO week ``2026-w50...``; else None.

    Example:
        >>> drop_date("2026-w50"), drop_date("2026-12-07-fixes"), drop_date("v3")
        (datetime.date(2026, 12, 7), datetime.date(2026, 12, 7), None)
    """
    m = _DATE_RE.match(name)
    try:
        if m:
            return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        m = _WEEK_RE.match(name)
        if m:
            return dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError:
        return None
    return None


def arrival_key(name: str) -> tuple:
    """Sort key of drop names: numbers compare as numbers (``v2`` < ``v10``), so ISO dates sort by date."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"(\d+)", name) if p)


@dataclass(frozen=True)
class Drop:
    """One drop: its name (``2026-w50``; the folder's own name for a one-drop source) and folder."""

    name: str
    path: Path

    def split(self, split: str) -> Path:
        return self.path / f"{split}.jsonl"


@dataclass(frozen=True)
class Selection:
    """What a run reads from ``data.source``: every drop found and the ones ``data.window`` selects.

    ``landing`` is False for a one-drop folder (split files at its root; ``drops == selected == (that folder,)``).
    ``general`` is the source's ``general.jsonl`` (None when absent).
    """

    root: Path
    landing: bool
    window: str
    drops: tuple[Drop, ...]
    selected: tuple[Drop, ...]
    general: Path | None

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.selected]


def is_landing(root: Path) -> bool:
    """A folder without any split file at its root is a landing folder (its subfolders are drops)."""
    return root.is_dir() and not any((root / f).exists() for f in SPLIT_FILES)


def _check_drop(drop: Drop, landing: bool) -> None:
    """A drop holds the three split files, nothing that looks like a misnamed one, no general.jsonl (landing)."""
    entries = sorted(p.name for p in drop.path.iterdir()) if drop.path.is_dir() else []
    allowed = {*SPLIT_FILES} | (set() if landing else {GENERAL_FILE})
    stray = [n for n in entries if n.endswith(".jsonl") and n not in allowed]
    if landing and GENERAL_FILE in entries:
        raise InputFileError(
            "general.jsonl inside a drop: general-instruction data is shared by every drop",
            path=drop.path / GENERAL_FILE,
            fix=f"move it to the landing folder's root ({drop.path.parent / GENERAL_FILE}); see docs/data.md",
        )
    if stray:
        raise InputFileError(
            f"{stray[0]} is not a data file this pipeline reads (a drop holds {', '.join(SPLIT_FILES)})",
            path=drop.path / stray[0],
            fix="rename it to the split it holds, or move it out of the drop",
        )
    missing = [f for f in SPLIT_FILES if not (drop.path / f).is_file()]
    if missing:
        what = "empty" if not entries else "incomplete (half-copied?)"
        raise MissingFileError(
            f"drop {drop.name!r} is {what}: no such file {', '.join(missing)}",
            path=drop.path,
            field="data.source",
            fix="every drop holds train.jsonl, val.jsonl and test.jsonl; copy a new drop into a folder named "
            "'.NAME' (hidden: not read) and rename it to NAME when complete",
        )


def select_drops(source: Path, window: str = "all", data_dir: Path | None = None) -> Selection:
    """Find the drops of ``source`` (an absolute folder) and the ones ``window`` selects.

    Every drop's layout is checked (three split files, no stray ``.jsonl``), selected or not: a broken drop is
    reported the first time a run sees it. Rows are not read here (``read_selection``).

    Args:
        source: the ``data.source`` folder, resolved.
        window: ``data.window``.
        data_dir: ``data.data_dir`` resolved; a source inside it is refused (``data.version`` rewrites that folder).

    Raises:
        UserError: the folder is missing, inside ``data_dir``, holds no drop, or a drop is empty, half-copied or
            holds a stray file; a ``since:`` window over an undated drop or selecting nothing.
    """
    win = parse_window(window)
    if not source.exists():
        raise MissingFileError(
            "the data.source folder does not exist",
            path=source,
            field="data.source",
            fix="point data.source at a folder with train/val/test.jsonl or a landing folder of drops "
            "(docs/data.md), or use data.source=world",
        )
    if not source.is_dir():
        raise InputFileError(
            "data.source must be a folder (train/val/test.jsonl, or drops in subfolders)", path=source
        )
    if data_dir is not None and (source == data_dir or data_dir in source.parents):
        raise InputFileError(
            f"data.source is inside data.data_dir ({data_dir}), the folder DVC versions and data.version rewrites",
            path=source,
            field="data.source",
            fix="keep new data outside it, e.g. a landing folder 'incoming/' at the project root",
        )
    general = source / GENERAL_FILE if (source / GENERAL_FILE).is_file() else None
    if not is_landing(source):
        drop = Drop(source.name, source)
        _check_drop(drop, landing=False)
        return Selection(source, False, window, (drop,), (drop,), general)
    names = sorted((p.name for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
                   key=arrival_key)  # fmt: skip
    stray = sorted(p.name for p in source.iterdir() if p.is_file() and p.suffix == ".jsonl" and p.name != GENERAL_FILE)
    if stray:
        raise InputFileError(
            f"{stray[0]} at the root of a landing folder (only general.jsonl may sit there)",
            path=source / stray[0],
            fix="put split files in a drop subfolder (e.g. incoming/2026-12-07/train.jsonl), or all three "
            "train/val/test.jsonl at the root for a one-drop folder",
        )
    if not names:
        raise MissingFileError(
            "holds no train.jsonl/val.jsonl/test.jsonl and no drop subfolder",
            path=source,
            field="data.source",
            fix="add a drop: a subfolder such as 2026-12-07/ with train.jsonl, val.jsonl and test.jsonl "
            "(docs/data.md), or put the three split files in the folder itself",
        )
    drops = tuple(Drop(n, source / n) for n in names)
    for d in drops:
        _check_drop(d, landing=True)
    return Selection(source, True, window, drops, _apply_window(win, drops, source), general)


def _apply_window(win: Window, drops: tuple[Drop, ...], source: Path) -> tuple[Drop, ...]:
    if win.kind == "all":
        return drops
    if win.kind == "last":
        return drops[-win.n :]
    undated = [d.name for d in drops if drop_date(d.name) is None]
    if undated:
        raise UserError(
            f"data.window=since:{win.since} needs dated drops, but {undated[0]!r} does not start with a date",
            path=source,
            field="data.window",
            fix="name drops YYYY-MM-DD or YYYY-wNN (ISO week), or use data.window=all / last:N",
        )
    assert win.since is not None
    chosen = tuple(d for d in drops if (drop_date(d.name) or win.since) >= win.since)
    if not chosen:
        raise UserError(
            f"data.window=since:{win.since} selects no drop; the newest is {drops[-1].name!r}",
            path=source,
            field="data.window",
            fix="choose an earlier date, or data.window=all",
        )
    return chosen


@dataclass(frozen=True)
class Row:
    """One loaded item and where it is: (file, 1-based line)."""

    item: Item
    path: Path
    line: int


def read_drop_split(path: Path, allow_empty: bool = False) -> list[Row]:
    """The strict loader (``grm.schemas.read_items``) on one split file, with each item's line.

    Raises:
        DataError: bad rows, or an empty file unless ``allow_empty`` (``file:line: field: problem``).
    """
    items = read_items(path, allow_empty=allow_empty)
    lines = [n for n, text in iter_lines(path, "JSONL file of items") if text.strip()]
    return [Row(it, path, n) for it, n in zip(items, lines, strict=True)]


def read_selection(selection: Selection) -> dict[str, dict[str, list[Row]]]:
    """Every selected drop's splits through the strict loader: ``{drop: {split: rows}}``, in arrival order.

    An item id found in two drops is refused (any split; within one drop the GX suite checks ids across splits, as
    for any folder): a landed drop is immutable, so a repeat is a re-delivery or a correction that belongs in the
    drop that holds the row. A drop's split file may be empty (no rows of that split this time), a drop may not;
    a one-drop folder's split files may not be empty (as before drops existed).

    Raises:
        DataError: bad rows, an empty drop or one-drop split, or ``file:line: id: ... already in drop ...``.
    """
    out: dict[str, dict[str, list[Row]]] = {}
    first: dict[str, tuple[str, Row]] = {}
    errors: list[str] = []
    for drop in selection.selected:
        # a drop may bring no rows for a split (an empty file, deliberately there); data.min_items counts the total
        out[drop.name] = {split: read_drop_split(drop.split(split), selection.landing) for split in SPLITS}
        if not any(out[drop.name].values()):
            errors.append(f"{drop.path}: <drop>: drop {drop.name!r} has no rows in any split (a failed export?)")
        for split in SPLITS:
            for row in out[drop.name][split]:
                seen = first.setdefault(row.item.id, (drop.name, row))
                if seen[0] != drop.name:
                    errors.append(
                        f"{row.path}:{row.line}: id: {row.item.id!r} is already in drop {seen[0]!r} "
                        f"({seen[1].path}:{seen[1].line}); ids are unique across the drops a run reads (correct a "
                        "row by editing the drop that holds it)"
                    )
    if errors:
        raise DataError(selection.root, errors)
    return out
