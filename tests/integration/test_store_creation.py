"""The embedded MLflow store survives a kill during its creation and waits out another process's lock.

Before: a SIGKILL 3-4 s into a project's first run (while MLflow created its tables and ran its migrations) left a
half-made ``mlflow.db`` on which every later run failed with ``table ... already exists``, for good; and a second
process holding the SQLite write lock made calls fail with ``database is locked`` after ~20 s (exit 1).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
FIRST_USE = "import sys; from tasks.tracking import Tracker; Tracker(sys.argv[1], 'x').experiment_id(); print('ok')"


def _uri(project: Path) -> str:
    return f"sqlite:///{project.resolve()}/mlruns/mlflow.db"


def _first_use(uri: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FIRST_USE, uri], env=ENV, capture_output=True, text=True)


def _half_made_store(db: Path, with_experiment: bool = False) -> None:
    """What a kill mid-creation left (seen with MLflow 3.17): the ``webhooks`` migration had created its first table
    when the process died, before alembic recorded the migration, so every later open re-ran it and failed."""
    from mlflow import MlflowClient

    MlflowClient(f"sqlite:///{db}").search_experiments()  # a complete store, built by MLflow alone
    for store in ("tracking", "model_registry"):
        module = __import__(f"mlflow.store.{store}.sqlalchemy_store", fromlist=["SqlAlchemyStore"])
        engine = module.SqlAlchemyStore._engine_map.pop(f"sqlite:///{db}", None)
        if engine is not None:
            engine.dispose()
    with sqlite3.connect(db) as con:
        con.execute("UPDATE alembic_version SET version_num = 'de4033877273'")  # before 1a0cddfcaa16 (webhooks)
        con.execute("DROP TABLE webhook_events")
        if with_experiment:
            con.execute(
                "INSERT INTO experiments (experiment_id, name, artifact_location, lifecycle_stage) "
                "VALUES (1, 'kept', 'file:///x', 'active')"
            )


@pytest.mark.slow  # three subprocesses that each import MLflow and create a store (~15 s)
@pytest.mark.parametrize("after_s", [0.3, 1.2])
def test_a_kill_during_store_creation_leaves_a_store_the_next_run_opens(tmp_path: Path, after_s: float) -> None:
    uri, mlruns = _uri(tmp_path), tmp_path / "mlruns"
    child = subprocess.Popen([sys.executable, "-c", FIRST_USE, uri], env=ENV)
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("mlflow.db") and p.stat().st_size for p in mlruns.glob("mlflow.db*")):
        assert child.poll() is None and time.monotonic() < deadline, "store creation did not start"
        time.sleep(0.02)
    time.sleep(after_s)  # creation takes 2-4 s: the kill lands inside it
    child.send_signal(signal.SIGKILL)
    child.wait()
    rerun = _first_use(uri)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert rerun.stdout.strip() == "ok"


@pytest.mark.slow  # creates a store (~5 s)
def test_a_half_made_store_without_runs_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    db = tmp_path / "mlruns" / "mlflow.db"
    _half_made_store(db)
    rerun = _first_use(_uri(tmp_path))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert "half-created" in rerun.stderr and "holds no runs" in rerun.stderr
    assert len(list(db.parent.glob("mlflow.db.broken-*"))) == 1  # kept aside, not deleted
    assert _first_use(_uri(tmp_path)).returncode == 0  # and the rebuilt one opens again


def test_a_store_that_cannot_be_opened_but_holds_experiments_is_left_alone(tmp_path: Path) -> None:
    from grm.errors import UserError
    from tasks.mlflow_store import init_store

    db = tmp_path / "mlruns" / "mlflow.db"
    _half_made_store(db, with_experiment=True)
    before = db.read_bytes()
    with pytest.raises(UserError, match="holds runs or models") as err:
        init_store(_uri(tmp_path))
    assert "mlflow db upgrade" in str(err.value) and str(db) in str(err.value)
    assert db.read_bytes() == before


def _hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    code = (
        "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
        "c.execute('BEGIN EXCLUSIVE'); print('held', flush=True); time.sleep(float(sys.argv[2])); c.execute('COMMIT')"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.slow  # creates a store (~5 s) and waits out one try (MLflow's SQLite busy wait: ~20 s)
def test_a_store_locked_by_another_process_is_waited_for_then_refused_naming_the_holder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from grm_cli.app import is_user_error
    from tasks.tracking import Tracker

    uri, db = _uri(tmp_path), tmp_path / "mlruns" / "mlflow.db"
    tracker = Tracker(uri, "x")
    tracker.experiment_id()
    holder = _hold_lock(db, 60)  # far longer than the wait (one try: ~20 s)
    monkeypatch.setenv("GRM_STORE_LOCK_WAIT_S", "1")
    try:
        with pytest.raises(Exception) as err:
            tracker.start_run("r")
    finally:
        holder.kill()
        holder.wait()
    assert is_user_error(err.value), repr(err.value)  # exit 2, one message
    text = str(err.value)
    assert str(db) in text and f"pid {holder.pid}" in text and "GRM_STORE_LOCK_WAIT_S" in text
    assert "database is locked" not in text  # Prefect's transient-error retry would wait it out again
    assert "Traceback" not in capsys.readouterr().err  # MLflow's logged tracebacks of each try are dropped


@pytest.mark.slow  # creates a store (~5 s) and waits through one failed try (~20 s)
def test_a_lock_released_within_the_wait_is_retried_and_the_call_succeeds(tmp_path: Path) -> None:
    from tasks.tracking import Tracker

    uri, db = _uri(tmp_path), tmp_path / "mlruns" / "mlflow.db"
    tracker = Tracker(uri, "x")
    tracker.experiment_id()
    holder = _hold_lock(db, 24)  # longer than one try (~20 s): it fails, the retry succeeds
    try:
        run_id = tracker.start_run("r")
    finally:
        holder.kill()
        holder.wait()
    assert tracker.client().get_run(run_id).info.run_name == "r"
