"""``grm ui``: the MLflow UI on a project's embedded store, and its clean shutdown.

``mlflow server`` starts its own web server processes (uvicorn/gunicorn workers). It runs here in its own process
group that dies with ``grm ui`` (``PR_SET_PDEATHSIG``); SIGINT (Ctrl-C) or SIGTERM to ``grm ui`` sends SIGTERM to
that whole group, SIGKILL after ``GRM_STOP_GRACE_S`` seconds (default 5), and exits 130 or 143 with one line and no
traceback: no server is left holding the port.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from grm_cli.supervise import die_with_parent, grace_seconds, killpg
from tasks import mlflow_store, tracking


class _Stopped(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def serve_ui(project_dir: str | Path = ".", host: str = "127.0.0.1", port: int = 5000) -> subprocess.Popen:
    """Start ``mlflow server`` on the embedded store (SQLite + ``mlruns/artifacts``) in its own process group;
    returns the process (stop it with ``stop_group``).

    Equivalent to ``mlflow server --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root
    mlruns/artifacts --host 127.0.0.1``.
    """
    root = Path(project_dir).resolve()
    (root / "mlruns" / "artifacts").mkdir(parents=True, exist_ok=True)
    uri = mlflow_store.default_tracking_uri(root)
    mlflow_store.init_store(uri)  # created here, crash-safe, not by the server's workers at once
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri]
    cmd += ["--default-artifact-root", str(root / "mlruns" / "artifacts"), "--host", host, "--port", str(port)]
    cmd += ["--workers", "1"]
    return subprocess.Popen(  # noqa: PLW1509 (preexec_fn: only prctl, no locks taken)
        cmd,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def stop_group(proc: subprocess.Popen, grace: float | None = None) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after ``grace`` seconds; reap the leader."""
    killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + (grace_seconds() if grace is None else grace)
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    killpg(proc.pid, signal.SIGKILL)  # the leader's children (workers) too, whether or not it exited
    proc.wait()


def experiment_links(uri: str, base: str) -> dict[str, str]:
    """Each experiment of store ``uri`` -> its runs table in the UI at ``base`` (model-training view)."""
    names = [e.name for e in mlflow_store.retrying_client(uri).search_experiments() if e.name != "Default"]
    return {name: tracking.Tracker(uri, name).ui_url(base) for name in sorted(names)}


def ui_command(port: int = 5000, host: str = "127.0.0.1", project_dir: str | Path = ".") -> int:
    """``grm ui``: browse the embedded MLflow store at http://HOST:PORT until SIGINT or SIGTERM.

    Returns:
        The server's exit code if it ended by itself, else 128 + the signal that stopped it.
    """

    def on_signal(signum: int, _frame: object) -> None:
        raise _Stopped(signum)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    proc = None
    try:
        proc = serve_ui(project_dir, host, port)
        uri, base = mlflow_store.default_tracking_uri(project_dir), f"http://{host}:{port}"
        print(f"MLflow UI on {base} (store: {uri}); Ctrl-C stops it", flush=True)
        for name, url in experiment_links(uri, base).items():  # MLflow 3.17 opens the GenAI view without the link
            print(f"  {name}: {url}", flush=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
        return proc.wait()
    except _Stopped as stop:
        if proc is not None:
            stop_group(proc)
        print(f"grm ui: stopped by {signal.Signals(stop.signum).name}", file=sys.stderr, flush=True)
        return 128 + stop.signum
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if proc is not None and proc.poll() is None:
            stop_group(proc, grace=0)
