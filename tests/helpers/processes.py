"""Stopping a server or browser a test started: ask first, then kill, always reaped."""

from __future__ import annotations

import subprocess


def stop(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """``terminate()``, wait up to ``grace_s``, then ``kill()``; returns once the process is reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
