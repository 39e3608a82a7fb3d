"""First use of the project's stores by several processes at once: the MLflow SQLite store is created and migrated
once, under its lock (the race killed one run: ``alembic ... expected to match one row ... 0 found``), and
``.prefect/`` follows the project folder given, not the working directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # three processes importing MLflow: ~10 s

MLFLOW_WORKER = r"""
import sys, time
from pathlib import Path
from tasks.mlflow_store import default_tracking_uri
from tasks.tracking import Tracker
import mlflow  # imported before the start line so that the processes really start together

project, go = Path(sys.argv[1]), Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
t = Tracker(default_tracking_uri(project), "spct_pipeline")
run = t.start_run("p")
t.set_tags(run, {"who": sys.argv[3]})
t.end_run(run)
print(run)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    return env


def test_three_processes_creating_one_mlflow_store_at_once_all_succeed(tmp_path: Path) -> None:
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MLFLOW_WORKER, str(tmp_path), str(go), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
        )
        for i in range(3)
    ]
    time.sleep(6)  # every worker has imported mlflow and waits for the start line
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    from tasks.mlflow_store import default_tracking_uri
    from tasks.tracking import Tracker

    t = Tracker(default_tracking_uri(tmp_path), "spct_pipeline")
    runs = t.client().search_runs([t.experiment_id()])
    assert sorted(r.data.tags["who"] for r in runs) == ["0", "1", "2"]
    assert (tmp_path / "mlruns" / "mlflow.db.lock").exists()


PREFECT_HOME_PROBE = r"""
import json, os, sys
import tasks  # applies the working directory's defaults, as every entry point does first
from tasks import prefect_env
prefect_env.configure_defaults(sys.argv[1])  # what `grm run --project-dir` / `python -m flows --project-dir` do
import prefect.settings
print(json.dumps({"env": os.environ["PREFECT_HOME"], "prefect": str(prefect.settings.get_current_settings().home)}))
"""


def test_prefect_home_follows_the_project_dir_not_the_working_directory(tmp_path: Path) -> None:
    project, cwd = tmp_path / "project", tmp_path / "cwd"
    project.mkdir()
    cwd.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", PREFECT_HOME_PROBE, str(project)],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    homes = json.loads(out.strip().splitlines()[-1])
    assert homes == {"env": str(project / ".prefect"), "prefect": str(project / ".prefect")}
    user = subprocess.run(  # a PREFECT_HOME the user set wins over both
        [sys.executable, "-c", PREFECT_HOME_PROBE, str(project)],
        cwd=cwd,
        env={**_env(), "PREFECT_HOME": str(tmp_path / "mine")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(user.strip().splitlines()[-1])["env"] == str(tmp_path / "mine")
