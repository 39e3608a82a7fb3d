"""DVC versioning, ``grm reproduce`` and ``grm data versions|pull``: a run's exact data comes back from the remote
(``$GRM_DVC_REMOTE`` honoured), hash-verified, in this project or a fresh clone; bad ids exit 2 with one message."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grm_cli.app import app
from tasks import data_store, mlflow_store, tracking, versioning
from tasks.reproduce import reproduce_command

pytestmark = pytest.mark.slow  # DVC + an MLflow SQLite store: ~10 s a test

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
runner = CliRunner()


def _logged_run(project: Path, dv: versioning.DataVersion, config: str = "name: x\n") -> str:
    """An MLflow run tagged and logged as ``data.version`` does."""
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(project), "spct_pipeline")
    run = tracker.start_run("p")
    tracker.set_tags(run, dv.tags())
    tracker.log_text(run, dv.dvc_file, "inputs/data.dvc")
    tracker.log_text(run, config, "inputs/config.yaml")
    tracker.end_run(run)
    return run


def _cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output + (str(res.exception) if res.exception and res.exit_code != 2 else "")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(versioning.ENV_REMOTE, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("GRM_ARTIFACTS_DIR", raising=False)
    root = tmp_path / "project"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "data").mkdir()
    return root


def test_reproduce_restores_the_data_a_run_used(project: Path) -> None:
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data")
    assert v1.dvc_md5 == data_store.dir_md5(v1.files)  # our .dir md5 is DVC's
    assert (project / "data.dvc").exists() and (project / ".dvc-remote").is_dir()
    assert "../.dvc-remote" in (project / ".dvc" / "config").read_text()  # relative: works in any clone
    run = _logged_run(project, v1)

    (project / "data" / "train.jsonl").write_text('{"v": 2}\n')  # a newer version
    v2 = versioning.version_data(project, "data")
    assert v2.dvc_md5 != v1.dvc_md5

    out = reproduce_command(run, project_dir=str(project))
    assert (project / "data" / "train.jsonl").read_text() == '{"v": 1}\n'
    assert out["data_dvc_md5"] == v1.dvc_md5 and out["files"] == v1.files
    assert Path(out["config"]).read_text() == "name: x\n"
    assert versioning.workspace_clean(project)  # data/ matches the restored data.dvc


def test_reproduce_rerun_config_reads_the_pulled_copy_not_the_live_source(project: Path) -> None:
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data")
    run = _logged_run(project, v1, "name: x\ndata:\n  source: incoming\n")
    code, output = _cli("reproduce", run, "--project-dir", str(project))
    assert code == 0, output
    assert output.count('"run_id"') == 1, output  # the JSON is printed once
    result = json.loads(output[output.index("{\n") :])  # (MLflow's download progress goes to stderr first)
    assert result["data_source"] == f"reproduce/{run}/incoming"
    linked = project / result["data_source"]
    assert linked.resolve() == data_store.version_dir(project / "artifacts" / "datasets", v1.dvc_md5)
    assert (linked / "train.jsonl").read_text() == '{"v": 1}\n'
    assert result["rerun"].endswith(f"grm run --config reproduce/{run}/config.yaml")


def test_reproduce_and_pull_exit_2_with_one_message_for_unknown_ids(project: Path) -> None:
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data")
    _logged_run(project, v1)
    code, output = _cli("reproduce", "0" * 32, "--project-dir", str(project))
    assert code == 2 and "no MLflow run '000" in output and "Traceback (most" not in output, output
    code, output = _cli("data", "pull", "--version", "feed", "--project-dir", str(project))
    assert code == 2 and "no data version(s) match 'feed'" in output and v1.dvc_md5 in output, output
    code, output = _cli("data", "pull", "--as-of", "2001-01-01", "--project-dir", str(project))
    assert code == 2 and "on or before 2001-01-01" in output and v1.dvc_md5 in output, output
    code, output = _cli("data", "pull", "--run", "nope", "--project-dir", str(project))
    assert code == 2 and "no run 'nope'" in output, output


def _log_inputs(project: Path, dv: versioning.DataVersion, files: dict[str, str]) -> str:
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(project), "spct_pipeline")
    run = tracker.start_run("p")
    tracker.set_tags(run, dv.tags())
    for name, text in files.items():
        tracker.log_text(run, text, f"inputs/{name}")
    tracker.end_run(run)
    return run


def test_every_reproduce_error_is_exit_2_with_one_message_and_creates_nothing(project: Path, tmp_path: Path) -> None:
    """Beyond the unknown id: a malformed id, a missing or non-folder --project-dir, a project without a store, a
    run that logged no config (it used to be reproduced as a world run with an empty config) and a run whose
    logged data.dvc is not YAML (a traceback)."""
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data")
    no_config = _log_inputs(project, v1, {"data.dvc": v1.dvc_file})
    bad_dvc = _log_inputs(project, v1, {"data.dvc": ": : not yaml [\n", "config.yaml": "name: x\n"})
    empty, a_file = tmp_path / "empty", tmp_path / "a-file"
    empty.mkdir()
    a_file.write_text("x")
    cases = [
        (["../" * 40 + "etc/passwd", str(project)], "is not an MLflow run id (32 lowercase hexadecimal"),
        ([no_config, str(tmp_path / "missing")], "is not a folder"),
        ([no_config, str(a_file)], "is not a folder"),
        ([no_config, str(empty)], f"no MLflow store at {empty}/mlruns/mlflow.db"),
        ([no_config, str(project)], "did not log inputs/config.yaml"),
        ([bad_dvc, str(project)], "its logged inputs/data.dvc cannot be read"),
    ]
    for (run_id, where), fragment in cases:
        code, output = _cli("reproduce", run_id, "--project-dir", where)
        assert code == 2 and fragment in output and "Traceback" not in output, (run_id, where, output)
        assert output.count("error:") == 1 and len(output) < 1000, output
    assert not (tmp_path / "missing").exists() and list(empty.iterdir()) == []  # no store created by the check
    assert not (project / "reproduce").exists()  # no rerun config written for the run without one


def test_reproduce_of_a_version_missing_from_the_remote_exits_2_and_changes_nothing(project: Path) -> None:
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data")
    run = _logged_run(project, v1)
    (project / "data" / "train.jsonl").write_text('{"v": 2}\n')
    versioning.version_data(project, "data")
    before = (project / "data.dvc").read_text()
    blob = v1.files["train.jsonl"]
    (project / ".dvc-remote" / "files" / "md5" / blob[:2] / blob[2:]).unlink()  # lost from the remote ...
    cached = project / ".dvc" / "cache" / "files" / "md5" / blob[:2] / blob[2:]
    cached.chmod(0o644)
    cached.unlink()  # ... and from the local cache
    code, output = _cli("reproduce", run, "--project-dir", str(project))
    assert code == 2 and f"data version {v1.dvc_md5} is not in the DVC remote" in output, output
    lines = [x for x in output.strip().splitlines() if "Downloading artifacts" not in x]  # MLflow's progress bar
    assert "Traceback (most recent" not in output and len(lines) <= 3, output
    assert (project / "data.dvc").read_text() == before and (
        project / "data" / "train.jsonl"
    ).read_text() == '{"v": 2}\n'


def test_reproduce_honours_grm_dvc_remote(project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared-remote"
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data", remote=str(shared))
    run = _logged_run(project, v1)
    (project / ".dvc" / "config").write_text("[core]\n    remote = local\n['remote \"local\"']\n    url = /nowhere\n")
    subprocess.run(["rm", "-rf", str(project / ".dvc" / "cache"), str(project / "data")], check=True)
    monkeypatch.setenv(versioning.ENV_REMOTE, str(shared))
    out = reproduce_command(run, project_dir=str(project))
    assert out["files"] == v1.files and (project / "data" / "train.jsonl").read_text() == '{"v": 1}\n'


def test_versions_lists_every_version_with_its_runs_and_pull_restores_one(project: Path, tmp_path: Path) -> None:
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(project, "data")
    run1 = _logged_run(project, v1)
    (project / "data" / "train.jsonl").write_text('{"v": 2}\n')
    v2 = versioning.version_data(project, "data")
    run2 = _logged_run(project, v2)
    code, output = _cli("data", "versions", "--json", "--project-dir", str(project))
    assert code == 0, output
    listed = {v["md5"]: v for v in json.loads(output[output.index("[") :])}
    assert listed[v1.dvc_md5]["runs"] == [run1] and listed[v2.dvc_md5]["runs"] == [run2]
    assert listed[v1.dvc_md5]["size"] == 9 and listed[v1.dvc_md5]["in_remote"] is True
    code, table = _cli("data", "versions", "--project-dir", str(project))
    assert code == 0 and v1.dvc_md5 in table and run2 in table and "date (UTC)" in table

    code, output = _cli("data", "pull", "--run", run1, "--out", str(tmp_path / "v1"), "--project-dir", str(project))
    assert code == 0, output
    assert (tmp_path / "v1" / "train.jsonl").read_text() == '{"v": 1}\n'
    assert (project / "data" / "train.jsonl").read_text() == '{"v": 2}\n'  # --out leaves data/ alone
    (project / "data" / "train.jsonl").write_text('{"v": "local edit"}\n')
    code, output = _cli("data", "pull", "--version", v1.dvc_md5[:8], "--project-dir", str(project))
    assert code == 2 and "not recorded in data.dvc" in output and "--force" in output, output
    code, output = _cli("data", "pull", "--version", v1.dvc_md5[:8], "--force", "--project-dir", str(project))
    assert code == 0, output
    assert (project / "data" / "train.jsonl").read_text() == '{"v": 1}\n'
    assert versioning.dvc_md5(project / "data.dvc") == v1.dvc_md5


def test_versioning_prints_no_dvc_shell_hints(
    project: Path, capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import dvc  # noqa: F401  (its import sets the dvc logger's level; compare against that)

    caplog.set_level(logging.INFO)
    (project / "data" / "train.jsonl").write_text('{"v": 1}\n')
    level = logging.getLogger("dvc").level
    versioning.version_data(project, "data")  # dvc init + add + push inside a git repo: DVC's hint paths
    out, err = capfd.readouterr()
    seen = out + err + caplog.text
    for hint in ("Initialized DVC repository", "You can now commit", "To track the changes with git", "autostage"):
        assert hint not in seen, f"DVC printed {hint!r}"
    assert (project / "data.dvc").exists()
    assert logging.getLogger("dvc").level == level  # restored after the call


def test_a_fresh_clone_can_dvc_pull_and_grm_data_pull_as_of(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's path: a project whose runs push to a shared folder remote is committed; a clone elsewhere (no
    data/, no DVC cache, no MLflow store) gets the committed version with plain `dvc pull`, and an older one by date
    with `grm data pull --as-of`; `grm reproduce RUN_ID` against the shared MLflow store works there too."""
    monkeypatch.delenv(versioning.ENV_REMOTE, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    orig, clone, remote = tmp_path / "orig", tmp_path / "clone", tmp_path / "shared-remote"
    subprocess.run(["git", "init", "-q", str(orig)], check=True)
    (orig / "data").mkdir()
    (orig / "data" / "train.jsonl").write_text('{"v": 1}\n')
    v1 = versioning.version_data(orig, "data", remote=str(remote))  # a shared remote (S3/SSH/NFS in real life)
    run = _logged_run(orig, v1)
    (orig / "data" / "train.jsonl").write_text('{"v": 2}\n')  # main moves on to a newer data version
    v2 = versioning.version_data(orig, "data", remote=str(remote))
    subprocess.run([*GIT, "-C", str(orig), "add", "data.dvc", ".dvc/config", ".gitignore"], check=True)
    subprocess.run([*GIT, "-C", str(orig), "commit", "-qm", "data v2"], check=True)

    subprocess.run(["git", "clone", "-q", str(orig), str(clone)], check=True)
    assert not (clone / "data").exists()
    dvc = Path(__import__("sys").executable).parent / "dvc"
    pulled = subprocess.run([str(dvc), "pull"], cwd=clone, capture_output=True, text=True, timeout=120)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (clone / "data" / "train.jsonl").read_text() == '{"v": 2}\n'

    today = __import__("datetime").datetime.now(__import__("datetime").UTC).date().isoformat()
    code, output = _cli("data", "pull", "--as-of", today, "--out", str(tmp_path / "asof"), "--project-dir", str(clone))
    assert code == 0, output
    assert json.loads(output[output.index("{\n") :])["md5"] == v2.dvc_md5  # the newest version on that day
    code, output = _cli("data", "pull", "--version", v1.dvc_md5, "--project-dir", str(clone))
    assert code == 0, output
    assert (clone / "data" / "train.jsonl").read_text() == '{"v": 1}\n'

    out = reproduce_command(run, project_dir=str(clone), tracking_uri=mlflow_store.default_tracking_uri(orig))
    assert out["data_dvc_md5"] == v1.dvc_md5 and out["files"] == v1.files
