"""A stand-in rank for launcher tests: ``python -m tests.helpers.sleeper DIR`` writes ``DIR/rank{RANK}.pid`` and
sleeps (at most 120 s, so nothing outlives a broken test for long)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    Path(sys.argv[1], f"rank{os.environ.get('RANK', '0')}.pid").write_text(str(os.getpid()))
    time.sleep(120)
