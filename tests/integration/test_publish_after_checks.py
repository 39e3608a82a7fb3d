"""Nothing is published before it is valid: for each kind of failing data, the data stages (prepare -> validate ->
version, called as ``.fn()``) fail with an error naming the file/row or config key, and ``data/``, ``data.dvc`` and
the DVC remote are byte-identical (checksum trees) before and after. A failure inside ``data.version`` itself
(after the push) is rolled back too."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from grm.plan import load_pipeline
from tasks import data, tracking, versioning
from tasks.engine import stages
from tasks.engine.runtime import RunContext, StageError

pytestmark = pytest.mark.slow  # GX + DVC imports: ~15 s for the module

GOOD = {"id": "w/1", "query": "2 + 3 ?", "responses": ["5", "it is 6"], "best": 0}
GOOD1 = {"id": "w/2", "query": "4 + 4 ?", "responses": ["8"], "label": 1}


def _rows(prefix: str, *rows: dict) -> str:
    return "".join(json.dumps(dict(r, id=f"{prefix}/{r['id']}", query=f"{prefix}: {r['query']}")) + "\n" for r in rows)


def _good_splits() -> dict[str, str]:
    return {s: _rows(s, GOOD, GOOD1) for s in ("train", "val", "test")}


def tree(path: Path) -> dict[str, str]:
    """relative path -> md5 of every file under ``path`` (a file: itself; absent: empty)."""
    if path.is_file():
        return {path.name: hashlib.md5(path.read_bytes()).hexdigest()}
    if not path.exists():
        return {}
    return {
        p.relative_to(path).as_posix(): hashlib.md5(p.read_bytes()).hexdigest() for p in path.rglob("*") if p.is_file()
    }


def state(project: Path) -> dict[str, dict[str, str]]:
    return {name: tree(project / name) for name in ("data", "data.dvc", ".dvc-remote", ".gitignore")}


def _ctx(project: Path, source: Path, *overrides: str) -> RunContext:
    cfg = load_pipeline([], [f"data.source={source}", *overrides])
    return RunContext("prepare_data", str(project), cfg, tracking.NullTracker(), "", str(project / "stages"), "c0")


def _run_data_stages(ctx: RunContext) -> versioning.DataVersion:
    prepared = data.prepare.fn(ctx)
    validated = data.validate.fn(ctx, prepared)
    return data.version.fn(ctx, prepared, validated)


def _source(tmp: Path, name: str, splits: dict[str, str]) -> Path:
    folder = tmp / name
    folder.mkdir()
    for split, text in splits.items():
        (folder / f"{split}.jsonl").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose data/ was published and pushed once (the state every failing run must leave alone)."""
    import os

    os.environ.pop(versioning.ENV_REMOTE, None)
    tmp = tmp_path_factory.mktemp("proj")
    project = tmp / "project"
    project.mkdir()
    dv = _run_data_stages(_ctx(project, _source(tmp, "good", _good_splits())))
    assert dv.files.keys() == {"train.jsonl", "val.jsonl", "test.jsonl"}
    assert tree(project / ".dvc-remote")  # pushed
    return project


def _with(split: str, text: str) -> Callable[[], dict[str, str]]:
    return lambda: _good_splits() | {split: text}


# (name, splits, overrides, fragments the error must hold)
CASES = [
    # a JSON error: the loader's error (file:line, <json>), not GX rows with id=nan
    ("bad-json", _with("val", _rows("val", GOOD) + "{oops\n"), (), ["val.jsonl:2", "<json>", "invalid JSON"]),
    # valid for GX (json.loads takes NaN; meta is free-form) but refused by the strict loader the stages use
    ("nan-literal", _with("train", _rows("train", GOOD)[:-2] + ', "meta": {"w": NaN}}\n'), (), ["train.jsonl:1", "NaN"]),
    ("lone-surrogate", _with("test", _rows("test", GOOD)[:-2] + ', "meta": {"n": "\\ud800"}}\n'), (),
     ["test.jsonl:1", "surrogate"]),
    ("huge-int", _with("train", _rows("train", GOOD)[:-2] + ', "meta": {"n": ' + "9" * 400 + "}}\n"), (),
     ["train.jsonl:1", "400 digits"]),
    # empty splits: GX passed them before (the other splits had rows); training/eval failed after the push
    ("empty-train", _with("train", ""), (), ["split=train", "train.jsonl has 0 row(s)", "data.min_items.train"]),
    ("empty-test", _with("test", "\n"), (), ["split=test", "test.jsonl has 0 row(s)", "data.min_items.test"]),
    # a minimum count above what the split holds
    ("below-min", _good_splits, ("data.min_items.test=3",), ["test.jsonl has 2 row(s)", "data.min_items.test"]),
    # a GX row rule (val query shared with train)
    ("leak", _with("val", _rows("train", GOOD).replace("train/", "val/")), (), ["shared_with_train", "val.jsonl:1"]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "splits", "overrides", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_failing_data_leaves_data_dvc_and_remote_byte_identical(
    published: Path,
    tmp_path: Path,
    name: str,
    splits: Callable[[], dict[str, str]],
    overrides: tuple[str, ...],
    fragments: list[str],
) -> None:
    before = state(published)
    ctx = _ctx(published, _source(tmp_path, name, splits()), *overrides)
    with pytest.raises(StageError) as err:
        _run_data_stages(ctx)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{name}: {fragment!r} not in {message}"
    assert "id=nan" not in message and "id=None" not in message
    assert state(published) == before, f"{name} changed data/, data.dvc or the remote"


class FailingTracker(tracking.NullTracker):
    """Fails when data.version tags the run: after the copy into data/, ``dvc add`` and ``dvc push``."""

    def set_tags(self, run_id: str, tags: dict) -> None:
        raise ConnectionError("tracking store unreachable")


def test_a_failure_inside_data_version_rolls_back_data_dvc_file_and_remote(published: Path, tmp_path: Path) -> None:
    before = state(published)
    new = {s: _rows(f"{s}2", GOOD, GOOD1) for s in ("train", "val", "test")}  # valid, different data
    ctx = _ctx(published, _source(tmp_path, "new", new))
    prepared = data.prepare.fn(ctx)
    validated = data.validate.fn(ctx, prepared)
    with pytest.raises(ConnectionError):
        data.version.fn(dataclasses.replace(ctx, tracker=FailingTracker()), prepared, validated)
    assert state(published) == before
    # the same data with a working tracker publishes, and pushes new objects
    dv = data.version.fn(ctx, prepared, validated)
    after = state(published)
    assert after["data"] != before["data"] and len(after[".dvc-remote"]) > len(before[".dvc-remote"])
    assert dv.files["train.jsonl"] == stages.file_md5(published / "data" / "train.jsonl")
