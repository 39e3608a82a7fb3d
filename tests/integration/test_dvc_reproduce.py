"""DVC versioning + ``reproduce_command``: a run's exact data comes back from the local remote, hash-verified."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tasks import tracking, versioning

pytestmark = pytest.mark.slow  # DVC + an MLflow SQLite store: ~10 s


def test_reproduce_restores_the_data_a_run_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(versioning.ENV_REMOTE, raising=False)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(tmp_path, "data")
    assert (tmp_path / "data.dvc").exists() and (tmp_path / ".dvc-remote").is_dir()
    assert "../.dvc-remote" in (tmp_path / ".dvc" / "config").read_text()  # relative: works in any clone

    tracker = tracking.Tracker(tracking.default_tracking_uri(tmp_path), "spct_pipeline")
    run = tracker.start_run("p")
    tracker.set_tags(run, v1.tags())
    tracker.log_text(run, v1.dvc_file, "inputs/data.dvc")
    tracker.log_text(run, "name: x\n", "inputs/config.yaml")
    tracker.end_run(run)

    (tmp_path / "data" / "train.jsonl").write_text('{"v": 2}\n')  # a newer version
    v2 = versioning.version_data(tmp_path, "data")
    assert v2.dvc_md5 != v1.dvc_md5

    out = versioning.reproduce_command(run, project_dir=str(tmp_path))
    assert (tmp_path / "data" / "train.jsonl").read_text() == '{"v": 1}\n'
    assert out["data_dvc_md5"] == v1.dvc_md5 and out["files"] == v1.files
    assert Path(out["config"]).read_text() == "name: x\n"

    with pytest.raises(versioning.ReproduceError, match="no MLflow run"):
        versioning.reproduce_command("0" * 32, project_dir=str(tmp_path))


def test_versioning_prints_no_dvc_shell_hints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import dvc  # noqa: F401  (its import sets the dvc logger's level; compare against that)

    monkeypatch.delenv(versioning.ENV_REMOTE, raising=False)
    caplog.set_level(logging.INFO)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.jsonl").write_text('{"v": 1}\n')
    level = logging.getLogger("dvc").level
    versioning.version_data(tmp_path, "data")  # dvc init + add + push inside a git repo: DVC's hint paths
    out, err = capfd.readouterr()
    seen = out + err + caplog.text
    for hint in ("Initialized DVC repository", "You can now commit", "To track the changes with git", "autostage"):
        assert hint not in seen, f"DVC printed {hint!r}"
    assert (tmp_path / "data.dvc").exists()
    assert logging.getLogger("dvc").level == level  # restored after the call


def test_reproduce_in_a_fresh_clone_pulls_the_runs_data_from_the_remote(tmp_path: Path) -> None:
    """The user's path: clone the repo (no data/, no DVC cache), `grm reproduce RUN_ID` against the shared store."""
    orig, clone, remote = tmp_path / "orig", tmp_path / "clone", tmp_path / "shared-remote"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(orig)], check=True)
    (orig / "data").mkdir()
    (orig / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(orig, "data", remote=str(remote))  # a shared remote (S3/SSH/NFS in real life)
    tracker = tracking.Tracker(tracking.default_tracking_uri(orig), "spct_pipeline")
    run = tracker.start_run("p")
    tracker.set_tags(run, v1.tags())
    tracker.log_text(run, v1.dvc_file, "inputs/data.dvc")
    tracker.log_text(run, "name: x\n", "inputs/config.yaml")
    tracker.end_run(run)
    (orig / "data" / "train.jsonl").write_text('{"v": 2}\n')  # main moves on to a newer data version
    versioning.version_data(orig, "data", remote=str(remote))
    subprocess.run([*git, "-C", str(orig), "add", "data.dvc", ".dvc/config", ".gitignore"], check=True)
    subprocess.run([*git, "-C", str(orig), "commit", "-qm", "data v2"], check=True)

    subprocess.run(["git", "clone", "-q", str(orig), str(clone)], check=True)
    assert not (clone / "data").exists()
    out = versioning.reproduce_command(run, project_dir=str(clone), tracking_uri=tracking.default_tracking_uri(orig))
    assert (clone / "data" / "train.jsonl").read_text() == '{"v": 1}\n'
    assert out["data_dvc_md5"] == v1.dvc_md5 and out["files"] == v1.files
