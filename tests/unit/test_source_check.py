"""What a run checks about ``data.source`` before it publishes anything (``grm.source_check``), and ``data.prepare``
on a landing folder: the selected drops concatenated, keyed by their content, the run tagged with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import get_run_logger  # noqa: F401  (pipeline_run's logger() imports it: pay that at collection)
from typer.testing import CliRunner

from grm.config import PipelineConfig
from grm.errors import UserError
from grm.plan import load_pipeline
from grm.schemas import DataError
from grm.source_check import TeacherCannotJudgeError, check_source
from tasks import data, tracking
from tasks.engine.runtime import RunContext, pipeline_run
from tests.unit.test_drops import drop

REAL = {"responses": ["Yes.", "No, it is green."], "best": 0}
GENERAL = '{"prompt": "Query: 2 + 3 ?\\nAnswer:", "completion": " 5"}\n'


def real_folder(root: Path) -> Path:
    """A one-drop folder of real text (what a user's own data looks like)."""
    root.mkdir(parents=True)
    for split in ("train", "val", "test"):
        rows = [json.dumps({"id": f"{split}-{i}", "query": f"Is the sky blue ({split} {i})?", **REAL}) + "\n"
                for i in range(3)]  # fmt: skip
        (root / f"{split}.jsonl").write_text("".join(rows), encoding="utf-8")
    (root / "general.jsonl").write_text(GENERAL, encoding="utf-8")
    return root


def cfg_of(*overrides: str) -> PipelineConfig:
    return load_pipeline([], list(overrides))


def test_real_text_with_the_world_teacher_names_rows_and_the_teacher_keys(tmp_path: Path) -> None:
    real_folder(tmp_path / "mine")
    with pytest.raises(TeacherCannotJudgeError) as info:
        check_source(cfg_of("data.source=mine"), tmp_path)
    message = str(info.value)
    assert "model.teacher='world-teacher' cannot judge 6 of 6 train/test rows" in message
    assert f"{tmp_path / 'mine' / 'train.jsonl'}:1: query: 'Is the sky blue" in message
    assert "... and 1 more" in message  # five rows quoted, the rest counted
    for key in ("model.teacher=http://", "model.teacher_model_name", "model.teacher=vllm:", "model.base"):
        assert key in message
    assert "Nothing was published" in message


def test_world_rows_pass_and_other_teachers_are_not_asked(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")  # world arithmetic rows
    (inc / "general.jsonl").write_text(GENERAL, encoding="utf-8")
    report = check_source(cfg_of("data.source=incoming"), tmp_path)
    assert report is not None and report.totals() == {"train": 2, "val": 2, "test": 2} and report.general_rows == 1
    real_folder(tmp_path / "mine")
    assert check_source(cfg_of("data.source=mine", "model.teacher=http://127.0.0.1:9/v1"), tmp_path) is not None
    assert check_source(cfg_of("data.source=mine"), tmp_path, training=False) is not None  # evaluation only
    assert check_source(cfg_of(), tmp_path) is None  # the embedded world


def test_a_world_fact_about_an_unknown_country_is_refused(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    fact = json.dumps({"id": "f", "query": "capital of Nowhereland ?", "responses": ["Lima", "Kelt"], "best": 0})
    drop(inc, "2026-w49", train=fact + "\n")
    (inc / "general.jsonl").write_text(GENERAL, encoding="utf-8")
    with pytest.raises(
        TeacherCannotJudgeError, match=r"'capital of Nowhereland \?' names something the embedded world"
    ):
        check_source(cfg_of("data.source=incoming"), tmp_path)


def test_the_selected_drops_must_hold_data_min_items(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")
    drop(inc, "2026-w50", n=1)
    (inc / "general.jsonl").write_text(GENERAL, encoding="utf-8")
    with pytest.raises(UserError, match=r"hold 1 train item\(s\), fewer than data.min_items.train=2[\s\S]*last:1"):
        check_source(cfg_of("data.source=incoming", "data.window=last:1", "data.min_items.train=2"), tmp_path)
    assert check_source(cfg_of("data.source=incoming", "data.min_items.train=2"), tmp_path) is not None


def test_general_data_is_read_strictly_and_must_have_rows_when_the_mix_needs_it(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")
    (inc / "general.jsonl").write_text('{"prompt": "q", "response": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        check_source(cfg_of("data.source=incoming"), tmp_path)
    assert "general.jsonl:1: response: unknown field(s) ['response']" in str(info.value)
    assert "general.jsonl:1: completion: missing" in str(info.value)
    (inc / "general.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"rft.general_ratio=0.5.*has no rows[\s\S]*rft.general_ratio=0"):
        check_source(cfg_of("data.source=incoming"), tmp_path)
    check_source(cfg_of("data.source=incoming", "rft.general_ratio=0", "rl.general_coef=0"), tmp_path)


def test_the_training_flow_refuses_real_text_before_it_opens_a_run(tmp_path: Path) -> None:
    real_folder(tmp_path / "mine")
    with (
        pytest.raises(TeacherCannotJudgeError),
        pipeline_run("spct_pipeline", None, ["data.source=mine"], tmp_path),
    ):
        pytest.fail("the flow body must not run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no mlruns/, artifacts/, data/, data.dvc


def test_grm_run_refuses_real_text_at_preflight_and_creates_nothing(tmp_path: Path) -> None:
    from grm_cli.app import app

    real_folder(tmp_path / "mine")
    project = tmp_path / "project"
    res = CliRunner().invoke(app, ["run", "--project-dir", str(project), "--data", str(tmp_path / "mine")])
    assert res.exit_code == 2, res.output
    assert "cannot judge 6 of 6 train/test rows" in res.stderr and "model.teacher=vllm:" in res.stderr
    assert not project.exists()  # no data/, data.dvc, DVC remote, mlruns/ or .prefect/


class TagTracker(tracking.NullTracker):
    def __init__(self) -> None:
        self.tags: dict[str, str] = {}

    def set_tags(self, run_id: str, tags: dict) -> None:
        self.tags.update(tags)


def prepare(project: Path, *overrides: str) -> tuple:
    cfg = cfg_of("data.source=incoming", *overrides)
    tracker = TagTracker()
    ctx = RunContext("spct_pipeline", str(project), cfg, tracker, "", str(project / "stages"), "c0")
    return data.prepare.fn(ctx), tracker.tags


def test_prepare_concatenates_the_selected_drops_and_a_new_drop_recomputes(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")
    week1, tags = prepare(tmp_path)
    assert week1.info["drops"] == ["2026-w49"] and tags["grm.data.drops"] == "2026-w49"
    again, _ = prepare(tmp_path)
    assert again.cached and again.key == week1.key  # the same drops: reused
    drop(inc, "2026-w50", n=1)
    week2, tags = prepare(tmp_path)
    assert not week2.cached and week2.key != week1.key
    assert week2.info["drops"] == ["2026-w49", "2026-w50"] and tags["grm.data.drop_count"] == "2"
    assert week2.info["items"]["2026-w50"] == {"train": 1, "val": 1, "test": 1}
    lines = week2.output("train").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["2026-w49/train/0", "2026-w49/train/1", "2026-w50/train/0"]
    last, tags = prepare(tmp_path, "data.window=last:1")
    assert last.info["drops"] == ["2026-w50"] and tags["grm.data.window"] == "last:1"
    (inc / "2026-w49" / "val.jsonl").write_text(Path(inc / "2026-w49" / "val.jsonl").read_text() + "\n")
    assert prepare(tmp_path, "data.window=last:1")[0].key == last.key  # an unselected drop is not read
    assert prepare(tmp_path)[0].key != week2.key  # a selected drop's content is keyed


def test_a_bad_drop_fails_prepare_with_its_file_and_line(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")
    drop(inc, "2026-w50", test='{"id": "x"}\n')
    with pytest.raises(Exception, match=r"2026-w50/test\.jsonl:1: query"):
        prepare(tmp_path)
