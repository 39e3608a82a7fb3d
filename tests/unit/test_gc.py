"""``grm gc``'s selection rules (``tasks.gc``) and its refusal without a store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from grm_cli.app import app
from tasks.gc import VersionInfo, versions_to_delete


def test_versions_with_an_alias_the_newest_and_pending_ones_stay() -> None:
    vs = [VersionInfo("grm", 1, True), VersionInfo("grm", 2, False), VersionInfo("grm", 3, False, pending=True)]
    vs += [VersionInfo("grm", 4, False), VersionInfo("grm", 5, False)]
    assert [v.version for v in versions_to_delete(vs, keep=1)] == [2, 4]
    assert versions_to_delete(vs, keep=5) == []


def test_a_meta_rm_version_follows_its_grm_version() -> None:
    grm = [VersionInfo("grm", 1, True), VersionInfo("grm", 2, False), VersionInfo("grm", 3, False)]
    meta = [VersionInfo("meta", v, v == 1, grm_version=str(v)) for v in (1, 2, 3)]
    doomed = versions_to_delete(grm + meta, keep=1, linked={"meta": "grm"})
    assert sorted((v.name, v.version) for v in doomed) == [("grm", 2), ("meta", 2)]
    doomed0 = versions_to_delete(grm + meta, keep=0, linked={"meta": "grm"})  # only the alias holders stay
    assert sorted((v.name, v.version) for v in doomed0) == [("grm", 2), ("grm", 3), ("meta", 2), ("meta", 3)]
    orphan = versions_to_delete([VersionInfo("meta", 7, False, grm_version="9")], keep=0, linked={"meta": "grm"})
    assert [v.version for v in orphan] == [7]  # its GRM version is gone


def test_gc_without_a_store_removes_nothing_and_says_why(tmp_path: Path) -> None:
    stage = tmp_path / "artifacts" / "stages" / "eval.rl" / "abc"
    stage.mkdir(parents=True)
    out = CliRunner().invoke(app, ["gc", "--project-dir", str(tmp_path), "--yes"], env={"MLFLOW_TRACKING_URI": ""})
    assert out.exit_code == 2 and "no MLflow store" in out.output and stage.exists()


def test_gc_refuses_contradicting_flags(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["gc", "--project-dir", str(tmp_path), "--yes", "--dry-run"])
    assert out.exit_code == 2 and "--yes and --dry-run" in out.output


@pytest.mark.parametrize("flag", ["--keep-runs", "--keep-versions"])
def test_gc_refuses_negative_counts(tmp_path: Path, flag: str) -> None:
    out = CliRunner().invoke(app, ["gc", "--project-dir", str(tmp_path), flag, "-1"])
    assert out.exit_code == 2 and "must be >= 0" in out.output
