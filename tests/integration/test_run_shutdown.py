"""Clean shutdown of ``grm run`` (``grm_cli.supervise``): SIGINT or SIGTERM stops the run and every descendant
within the grace period, even when the pipeline process ignores the signal (as Prefect's engine did, waiting for
the temporary API server the same signal had stopped)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SUPERVISOR = (
    "import sys; from grm_cli.supervise import run_supervised; "
    "sys.exit(run_supervised([sys.argv[1]], command=[sys.executable, '-m', 'tests.helpers.stubborn']))"
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")  # a zombie is gone


def _start(tmp_path: Path) -> tuple[subprocess.Popen, int]:
    env = {**os.environ, "GRM_STOP_GRACE_S": "1", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, str(tmp_path)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own group, as a shell job: the test signals that group like a terminal does
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (tmp_path / "pids").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the stand-in pipeline did not start"
        time.sleep(0.05)
    time.sleep(0.2)
    return proc, int((tmp_path / "pids").read_text())


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_its_children_within_the_grace(tmp_path, sig, code):
    proc, grandchild = _start(tmp_path)
    try:
        sent = time.monotonic()
        os.killpg(proc.pid, sig)  # what Ctrl-C does: the whole foreground group
        rc = proc.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == code and took < 5, (rc, took)
    assert f"stopped by {signal.Signals(sig).name}" in proc.stderr.read()
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild), "a descendant of the run outlived it"


def test_a_signal_to_the_supervisor_alone_also_stops_everything(tmp_path):
    """``kill PID`` (a service manager, a timeout) reaches only the supervisor, not the pipeline's group."""
    proc, grandchild = _start(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 143
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_without_a_signal_the_childs_exit_code_is_returned():
    from grm_cli.supervise import run_supervised

    assert run_supervised([], command=[sys.executable, "-c", "import sys; sys.exit(3)"]) == 3


def test_user_errors_logged_by_prefect_lose_their_traceback_others_keep_it():
    import logging

    from grm.errors import UserError
    from grm_cli.supervise import UserErrorTracebackFilter

    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            return logging.LogRecord("prefect.task_runs", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())

    class StageError(RuntimeError):  # tasks.engine.runtime.StageError's shape: the cause in .cause
        def __init__(self, cause: BaseException):
            super().__init__(f"stage data.validate failed: {cause}")
            self.cause = cause

    quiet, loud = record(StageError(UserError("bad rows"))), record(ZeroDivisionError())
    assert UserErrorTracebackFilter().filter(quiet) and quiet.exc_info is None
    assert UserErrorTracebackFilter().filter(loud) and loud.exc_info is not None
