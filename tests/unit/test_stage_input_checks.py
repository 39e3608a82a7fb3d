"""A stage reads the data its key names: an input whose content changed since the key was computed (before the
build, or while it ran) fails the stage, and nothing is published under that key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from grm.config import PipelineConfig
from tasks import data_store
from tasks.engine.runtime import RunContext, StageError, run_stage
from tasks.engine.stages import BuildContext, FileInput, HashedFile, Stage, StageOutput, StageStore, file_md5
from tasks.tracking import NullTracker


@dataclass(frozen=True)
class _Slice:
    tamper: str  # "" | "split" | "general": what the build overwrites while it runs


def _select(cfg: PipelineConfig, tamper: str = "") -> _Slice:
    return _Slice(tamper)


def _files(cfg: PipelineConfig, tamper: str = "") -> dict[str, FileInput]:
    return {"general.jsonl": FileInput("general.jsonl", "data.source", required=False)}


def _build(s: _Slice, b: BuildContext) -> StageOutput:
    text = Path(b.inputs["train"].path).read_text()
    if s.tamper == "split":  # another run republishing the file mid-build
        Path(b.inputs["train"].path).write_text('{"other": 1}\n')
    if s.tamper == "general":
        Path(b.project_dir / "general.jsonl").write_text('{"edited": 1}\n')
    (b.out / "rows.txt").write_text(text)
    return StageOutput({"rows": "rows.txt"})


READER = Stage("reader.{tamper}", _select, _build, inputs=("train",), files=_files)


def _ctx(tmp_path: Path) -> RunContext:
    return RunContext("t", str(tmp_path), PipelineConfig(), NullTracker(), "", str(tmp_path / "stages"), "code-0")


def _train(tmp_path: Path, text: str = '{"v": 1}\n') -> HashedFile:
    path = tmp_path / "train.jsonl"
    path.write_text(text)
    return HashedFile(str(path), file_md5(path))


def test_a_stage_reads_its_input_when_the_content_matches_the_key(tmp_path: Path) -> None:
    result = run_stage(_ctx(tmp_path), READER, {"train": _train(tmp_path)}, tamper="")
    assert result is not None and result.output("rows").read_text() == '{"v": 1}\n'


def test_an_input_changed_before_the_build_is_refused(tmp_path: Path) -> None:
    train = _train(tmp_path)
    Path(train.path).write_text('{"v": 2}\n')  # the key still names v1
    with pytest.raises(StageError, match=r"inputs changed since the key was computed: input train .* the key has"):
        run_stage(_ctx(tmp_path), READER, {"train": train}, tamper="")
    assert not list((tmp_path / "stages").glob("reader.*/*"))  # no completed (or tmp) folder


@pytest.mark.parametrize("tamper", ["split", "general"])
def test_an_input_changed_during_the_build_publishes_nothing(tmp_path: Path, tamper: str) -> None:
    (tmp_path / "general.jsonl").write_text('{"g": 1}\n')  # a file input hashed at key time
    with pytest.raises(StageError, match="inputs changed since the key was computed") as err:
        run_stage(_ctx(tmp_path), READER, {"train": _train(tmp_path)}, tamper=tamper)
    assert ("general.jsonl" in str(err.value)) == (tamper == "general")
    store = StageStore(tmp_path / "stages")
    assert not [p for p in (tmp_path / "stages" / f"reader.{tamper}").iterdir()], "a folder was left behind"
    assert store.root.exists()


def test_the_data_store_refuses_a_copy_whose_md5_differs(tmp_path: Path) -> None:
    src = tmp_path / "train.jsonl"
    src.write_text('{"v": 1}\n')
    with pytest.raises(data_store.DataVersionError, match="do not match the version's md5s"):
        data_store.from_files(tmp_path / "store", "ab" * 16 + ".dir", {"train.jsonl": src}, {"train.jsonl": "0" * 32})
    assert not [p for p in (tmp_path / "store").iterdir() if not p.name.startswith(".")]
    folder = data_store.from_files(tmp_path / "store", "ab" * 16 + ".dir", {"train.jsonl": src},
                                   {"train.jsonl": file_md5(src)})  # fmt: skip
    assert folder.name == "ab" * 16 and (folder / "train.jsonl").read_text() == '{"v": 1}\n'
    assert not list((tmp_path / "store").glob(".*"))  # no tmp folder left
