"""``grm data check FOLDER``: a landing folder or one drop checked as a run would read it, without training.

Exit 0 prints the items per split per drop; exit 2 is one message naming the file, line and field (GX failures are
named back in the drop files, not the combined split). Nothing is written anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grm_cli.app import app
from tests.unit.test_drops import drop, row
from tests.unit.test_source_check import GENERAL, real_folder

pytestmark = pytest.mark.slow  # the GX suite: great_expectations import + an ephemeral context, ~10 s

runner = CliRunner()


def check(folder: Path, *args: str):
    return runner.invoke(app, ["data", "check", str(folder), "--set", "eval.benchmarks=[]", *args])


def landing(tmp_path: Path) -> Path:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49", n=3)
    drop(inc, "2026-w50", n=2)
    (inc / "general.jsonl").write_text(GENERAL, encoding="utf-8")
    return inc


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_good_landing_folder_passes_with_items_per_split_per_drop(tmp_path: Path) -> None:
    inc = landing(tmp_path)
    before = tree(tmp_path)
    res = check(inc)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert "landing folder, 2 drop(s); data.window=all reads 2: 2026-w49, 2026-w50" in lines[0]
    assert lines[2].split() == ["2026-w49", "3", "3", "3"] and lines[3].split() == ["2026-w50", "2", "2", "2"]
    assert lines[4].split() == ["total", "5", "5", "5"] and "general.jsonl: 1 examples" in res.stdout
    assert "GX suite preference_items" in res.stdout and "model.teacher=world-teacher can judge" in res.stdout
    assert tree(tmp_path) == before  # nothing written
    res = check(inc, "--set", "data.window=last:1")
    assert res.exit_code == 0 and "reads 1: 2026-w50" in res.stdout


def test_a_gx_failure_is_named_in_the_drop_file(tmp_path: Path) -> None:
    inc = landing(tmp_path)
    leak = json.loads(row("2026-w49/train/0")) | {"id": "w50-leak"}  # a train row's query: decontamination
    (inc / "2026-w50" / "test.jsonl").write_text(row("2026-w50/test/0") + json.dumps(leak) + "\n", encoding="utf-8")
    res = check(inc)
    assert res.exit_code == 2
    assert f"{inc / '2026-w50' / 'test.jsonl'}:2 id=w50-leak" in res.stderr, res.stderr
    assert "shared_with_train" in res.stderr and "Traceback" not in res.output


def test_a_response_over_the_limit_fails_the_gx_rules(tmp_path: Path) -> None:
    inc = landing(tmp_path)
    res = check(inc, "--set", "data.max_chars=1")
    assert res.exit_code == 2 and "2026-w49/train.jsonl:1" in res.stderr, res.stderr


def test_real_text_with_the_world_teacher_fails_with_the_keys_to_set(tmp_path: Path) -> None:
    res = check(real_folder(tmp_path / "mine"))
    assert res.exit_code == 2 and "cannot judge 6 of 6" in res.stderr and "model.teacher=http://" in res.stderr
    ok = check(tmp_path / "mine", "--set", "model.teacher=http://127.0.0.1:9/v1")
    assert ok.exit_code == 0 and "one drop (split files in the folder)" in ok.stdout, ok.output


def test_a_half_copied_drop_is_one_clear_error(tmp_path: Path) -> None:
    inc = landing(tmp_path)
    (inc / "2026-w50" / "test.jsonl").unlink()
    res = check(inc)
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert "drop '2026-w50' is incomplete (half-copied?): no such file test.jsonl" in res.stderr


def test_one_drop_of_a_landing_folder_is_checked_with_the_landing_folders_general_data(tmp_path: Path) -> None:
    """The documented order: land a drop hidden, check it alone, publish it. Its general.jsonl is the landing
    folder's (a drop holding none must not fail for it)."""
    inc = landing(tmp_path)
    hidden = drop(inc, ".2026-w51", n=2)
    res = check(hidden)
    assert res.exit_code == 0, res.output
    assert (
        "one drop" in res.stdout
        and f"general.jsonl: 1 examples (the landing folder's {inc / 'general.jsonl'})" in (res.stdout)
    )
    (inc / "general.jsonl").unlink()  # no general data anywhere: the training mix needs it, the check says so
    res = check(hidden)
    assert res.exit_code == 2 and "general.jsonl" in res.output
