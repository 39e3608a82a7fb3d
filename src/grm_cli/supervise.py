"""Clean shutdown of ``grm run``: the pipeline runs in a child process group that this process supervises.

A terminal's Ctrl-C (SIGINT to the foreground process group) or a SIGTERM used to leave ``grm run`` running for
minutes or for ever: Prefect's engine and its events worker wait for the temporary API server, which the same
signal had stopped. Now ``grm run`` checks the config and inputs in this process (exit 2 before anything starts),
then starts the pipeline as ``grm run`` in a child that leads its own process group (``GRM_SUPERVISED=1``), and
waits. On SIGINT or SIGTERM it sends SIGINT to the child's group (each stage marks its MLflow run KILLED, Python
unwinds), and SIGKILL to the whole group after ``GRM_STOP_GRACE_S`` seconds (default 5) or at a second signal:
the temporary Prefect server, build workers, launchers and every other descendant stop with it. What is left is
what a SIGKILL of the run leaves, which the stage store resumes from (completed stages are kept; a rerun of the same
command continues at the first incomplete stage). The child ends with this process too (``PR_SET_PDEATHSIG``).
Exit code: the child's, or 128 + the signal number when stopped (130 for SIGINT, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

SUPERVISED_ENV = "GRM_SUPERVISED"  # set in the child: run the pipeline in this process
GRACE_ENV = "GRM_STOP_GRACE_S"
DEFAULT_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def supervised() -> bool:
    """Whether this process is the supervised child (it runs the pipeline itself)."""
    return os.environ.get(SUPERVISED_ENV) == "1"


def grace_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S)))
    except ValueError:
        return DEFAULT_GRACE_S


def _root_debug() -> bool:
    """Whether ``grm --debug`` was given (the child shows tracebacks too)."""
    import click

    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def die_with_parent() -> None:  # runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_supervised(
    argv: Sequence[str], *, echo: Callable[..., object] = print, command: Sequence[str] | None = None
) -> int:
    """Run ``grm *argv`` in a child process group and stop it promptly on SIGINT/SIGTERM (module docstring).

    Args:
        argv: the ``grm`` arguments the child runs (``run --config ...``).
        echo: prints the one line said when a signal stopped the run.
        command: the child's command instead of ``python -c <grm> *argv`` (tests).

    Returns:
        The child's exit code, or 128 + the signal number when a signal stopped it.
    """
    cmd = (
        list(command)
        if command is not None
        else [sys.executable, "-c", "from grm_cli.app import app; app(prog_name='grm')"]
    )
    cmd += list(argv)
    env = {**os.environ, SUPERVISED_ENV: "1"}
    if _root_debug():
        env["GRM_DEBUG"] = "1"
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, preexec_fn=die_with_parent)  # noqa: PLW1509
    received: list[int] = []
    first_at = [0.0]

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        if len(received) == 1:
            first_at[0] = time.monotonic()
            killpg(proc.pid, signal.SIGINT)
        else:
            killpg(proc.pid, signal.SIGKILL)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        while True:
            try:
                rc = proc.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if received and time.monotonic() - first_at[0] > grace_seconds():
                    killpg(proc.pid, signal.SIGKILL)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not received:
        return rc
    killpg(proc.pid, signal.SIGKILL)  # whatever of the group outlived its leader (the Prefect server, workers)
    name = signal.Signals(received[0]).name
    echo(
        f"grm run: stopped by {name}; completed stages are kept, rerun the same command to resume",
        file=sys.stderr,
    )
    return 128 + received[0]


class UserErrorTracebackFilter:
    """A ``logging`` filter that keeps a record but drops its traceback when the exception is a user error
    (``grm_cli.app.is_user_error``: bad data, a bad config, a full disk): Prefect logs a failing task's and flow's
    exception with its traceback at every level, which buried the one message ``grm run`` then prints."""

    def filter(self, record: logging.LogRecord) -> bool:
        from grm_cli.app import is_user_error

        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and is_user_error(exc):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_user_error_tracebacks() -> None:
    """Add ``UserErrorTracebackFilter`` to every handler of the root and ``prefect*`` loggers (call after Prefect
    has configured its logging, i.e. after ``import prefect``)."""
    names = ["", *[n for n in logging.root.manager.loggerDict if n.startswith("prefect")]]
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, UserErrorTracebackFilter) for f in handler.filters):
                handler.addFilter(UserErrorTracebackFilter())
