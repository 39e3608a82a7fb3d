"""Background services of the team stack: started detached, one pid file and one log per service in the state
folder, stopped by process group; free ports; waiting until a port or URL answers.

Example:
    >>> port = free_port()
    >>> 1024 < port < 65536
    True
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from grm.errors import UserError


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the OS picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_status(url: str, headers: Mapping[str, str] | None = None, timeout: float = 3.0) -> int | None:
    """The HTTP status ``url`` answers with (4xx/5xx included); None when nothing answers."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _proc_start(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]  # a zombie has exited; field 22 = start time in ticks


def pid_file(state_dir: Path, name: str) -> Path:
    return state_dir / "run" / f"{name}.pid"


def log_file(state_dir: Path, name: str) -> Path:
    return state_dir / "logs" / f"{name}.log"


def running_pid(state_dir: Path, name: str) -> int | None:
    """The pid of service ``name`` when its recorded process still runs (the same process: pid and start time)."""
    path = pid_file(state_dir, name)
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = int(recorded["pid"])
    start = _proc_start(pid)
    return pid if start is not None and start == recorded["start"] else None


def start(state_dir: Path, name: str, cmd: Sequence[str], env: Mapping[str, str], cwd: Path | None = None) -> int:
    """Start ``cmd`` detached (own session, so ``stop`` ends its children too), output appended to
    ``logs/{name}.log``; records ``run/{name}.pid``. Returns the pid."""
    log = log_file(state_dir, name)
    log.parent.mkdir(parents=True, exist_ok=True)
    pid_file(state_dir, name).parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(cmd)}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            list(cmd),
            env=dict(env),
            cwd=cwd or state_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file(state_dir, name).write_text(json.dumps({"pid": proc.pid, "start": _proc_start(proc.pid)}))
    return proc.pid


def stop(state_dir: Path, name: str, grace_s: float = 20) -> bool:
    """SIGTERM the process group of service ``name``, SIGKILL after ``grace_s``; False when it was not running."""
    pid = running_pid(state_dir, name)
    pid_file(state_dir, name).unlink(missing_ok=True)
    if pid is None:
        return False
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and _proc_start(pid) is not None:
        _reap(pid)
        time.sleep(0.2)
    if _proc_start(pid) is not None:
        _signal_group(pid, signal.SIGKILL)
        while _proc_start(pid) is not None:
            _reap(pid)
            time.sleep(0.1)
    _reap(pid)
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # started with start_new_session: its group id is its pid


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):  # our own child (a test starting the stack) must not stay a zombie
        os.waitpid(pid, os.WNOHANG)


def wait_until(
    ready: Callable[[], bool], what: str, timeout: float, state_dir: Path | None = None, name: str | None = None
) -> None:
    """Poll ``ready()`` until it is true; fail early (naming the log) when service ``name`` exits, or at timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if name is not None and state_dir is not None and running_pid(state_dir, name) is None:
            raise UserError(f"{what} exited while starting; see {log_file(state_dir, name)}:\n{tail(state_dir, name)}")
        time.sleep(0.3)
    where = f"; see {log_file(state_dir, name)}" if name and state_dir else ""
    raise UserError(f"{what} did not answer within {timeout:.0f} s{where}")


def tail(state_dir: Path, name: str, lines: int = 15) -> str:
    """The last ``lines`` lines of the log of service ``name``."""
    try:
        return "\n".join(log_file(state_dir, name).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
