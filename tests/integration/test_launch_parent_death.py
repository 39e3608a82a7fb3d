"""A stage process that dies, even by SIGKILL, takes its launched ranks with it: torchrun runs inside
``grm.training.launch --end-with-parent``, gets SIGTERM from the kernel when its parent dies, and stops its ranks
(otherwise they go on training, holding GPUs and writing into the dead stage's temp folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,  # torchrun and 2 ranks start (a few seconds of imports)
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only"),
]

PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from grm.training.launch import ending_with_parent
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "tests.helpers.sleeper", sys.argv[1]]
    proc = subprocess.Popen(ending_with_parent(cmd))
    print(proc.pid, flush=True)
    time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie has exited: it only waits for its parent to reap it
        return fh.read().split(") ", 1)[1][0] != "Z"


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_sigkilling_the_stage_process_ends_the_ranks(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    launcher = int(parent.stdout.readline())
    ranks: list[int] = []
    try:
        assert _wait(lambda: len(list(tmp_path.glob("rank*.pid"))) == 2, 90), "the 2 ranks did not start"
        ranks = [int(p.read_text()) for p in sorted(tmp_path.glob("rank*.pid"))]
        assert all(_alive(pid) for pid in ranks)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        assert _wait(lambda: not any(_alive(pid) for pid in ranks), 60), "ranks outlived the killed stage process"
    finally:
        for pid in [launcher, *ranks]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()
