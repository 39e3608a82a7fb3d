"""A stand-in pipeline for the shutdown tests: ``python -m tests.helpers.stubborn DIR`` starts a grandchild, writes
both pids to ``DIR/pids``, ignores SIGINT and SIGTERM (as a run waiting on a stopped Prefect server did) and sleeps
(at most 120 s, so nothing outlives a broken test for long)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    Path(sys.argv[1], "pids").write_text(f"{child.pid}\n")
    time.sleep(120)
