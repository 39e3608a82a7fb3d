"""``grm ui`` stops cleanly: SIGINT or SIGTERM ends it and the MLflow server it started (its web server workers
included) within a few seconds, exit 130/143, one line and no traceback, and the port is free again. Before, the
MLflow server outlived a SIGTERM to ``grm ui`` (it kept the port and the store open)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    children = {pid}
    for _ in range(6):  # grm ui -> mlflow server -> uvicorn -> workers
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) in children and fields[0] != "Z":
                children.add(int(stat.parent.name))
    return children - {pid}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # starts a real MLflow server (~10 s)
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_grm_ui_and_its_mlflow_server(tmp_path: Path, sig: int, code: int) -> None:
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "GRM_STOP_GRACE_S": "3"}
    env.pop("MLFLOW_TRACKING_URI", None)
    cmd = [sys.executable, "-c", "from grm_cli.app import app; app(prog_name='grm')", "ui", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the MLflow UI did not answer"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as res:
                    if res.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        children = _descendants(proc.pid)
        assert children, "grm ui started no server process"
        started = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert took < 10, took
    assert "Traceback" not in err and f"grm ui: stopped by {signal.Signals(sig).name}" in err, err
    left = [pid for pid in children if _alive(pid)]
    assert not left, f"still running: {left}"
    with socket.socket() as s:  # the port is free again: a new server binds it (as servers do, past TIME_WAIT)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
