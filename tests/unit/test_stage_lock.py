"""Two processes asking the stage store for the same key: one builds, the other waits and reuses the folder; a
builder killed with SIGKILL leaves the lock free, and the waiter takes over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tasks.engine.locks import file_lock
from tasks.engine.stages import StageOutput, StageStore

WORKER = r"""
import json, os, sys, time
from pathlib import Path
from tasks.engine.stages import StageOutput, StageStore

root, key, counter, sleep = sys.argv[1], sys.argv[2], Path(sys.argv[3]), float(sys.argv[4])

def build(out):
    with counter.open("a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(sleep)
    (out / "x.txt").write_text("v")
    return StageOutput({"x": "x.txt"}, {"m": 1.0})

r = StageStore(root).run("demo", key, build)
print(json.dumps({"cached": r.cached, "path": r.path, "x": (Path(r.path) / "x.txt").read_text()}))
"""


def _start(tmp: Path, key: str, sleep: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    cmd = [sys.executable, "-c", WORKER, str(tmp / "store"), key, str(tmp / "calls.txt"), str(sleep)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _result(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _calls(tmp: Path) -> list[str]:
    path = tmp / "calls.txt"
    return path.read_text().split() if path.exists() else []


def _wait_for(cond, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.02)


def test_two_processes_building_one_key_build_it_once(tmp_path: Path) -> None:
    a, b = _start(tmp_path, "k1", 0.6), _start(tmp_path, "k1", 0.6)
    ra, rb = _result(a), _result(b)
    assert len(_calls(tmp_path)) == 1  # the build function ran once
    assert sorted([ra["cached"], rb["cached"]]) == [False, True]
    assert ra["path"] == rb["path"] and ra["x"] == rb["x"] == "v"
    assert not list((tmp_path / "store" / "demo").glob("*.tmp"))


def test_a_sigkilled_builder_frees_the_key_and_the_waiter_builds_it(tmp_path: Path) -> None:
    a = _start(tmp_path, "k2", 120)
    _wait_for(lambda: len(_calls(tmp_path)) == 1)  # a holds the lock, mid-build
    b = _start(tmp_path, "k2", 0)
    time.sleep(0.5)
    assert b.poll() is None and len(_calls(tmp_path)) == 1  # b waits, it does not build beside a
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=10)
    rb = _result(b)
    assert rb["cached"] is False and rb["x"] == "v"
    assert _calls(tmp_path) == [str(a.pid), str(b.pid)]
    assert not list((tmp_path / "store" / "demo").glob("*.tmp"))  # a's half-built folder was cleared
    # and the next lookup reuses b's folder (the resume after SIGKILL stays exact)
    again = StageStore(tmp_path / "store").run("demo", "k2", lambda out: StageOutput())
    assert again.cached and again.path == rb["path"]


def test_threads_of_one_process_also_wait_for_each_other(tmp_path: Path) -> None:
    store, calls, results = StageStore(tmp_path), [], []

    def build(out: Path) -> StageOutput:
        calls.append(1)
        time.sleep(0.2)
        return StageOutput(metrics={"m": 2.0})

    threads = [threading.Thread(target=lambda: results.append(store.run("t", "k", build))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and sorted(r.cached for r in results) == [False, True, True]


def test_file_lock_names_the_holder_while_waiting(tmp_path: Path, caplog) -> None:
    import logging

    caplog.set_level(logging.INFO, logger="grm.locks")
    lock = tmp_path / "x.lock"
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with file_lock(lock, "first"):
            entered.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    entered.wait(5)
    threading.Timer(0.2, release.set).start()
    with file_lock(lock, "second"):
        assert lock.read_text().strip() == str(os.getpid())
    t.join()
    assert f"waiting for second: pid {os.getpid()} holds {lock}" in caplog.text
