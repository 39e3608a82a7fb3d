"""e2e fixtures: one real Prefect server per session (127.0.0.1, free port, tmp PREFECT_HOME) shared by every
flow subprocess, and throw-away project folders (git repo + tiny config). Nothing is written into the repo."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks import prefect_env
from tests.helpers.processes import stop

REPO = Path(__file__).resolve().parents[2]
TINY_CONFIG = Path(__file__).parents[2] / "configs" / "tiny.yaml"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll ``url`` until it answers 200 (fails early if ``proc`` died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


@dataclass
class PrefectServer:
    api_url: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = prefect_env.server_env(self.api_url, self.home)
        env.pop("MLFLOW_TRACKING_URI", None)  # every project uses its own embedded store
        env.pop("GRM_ARTIFACTS_DIR", None)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
        env.update(extra)
        return env


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    """``prefect server start`` on a free port; started once (7-30 s on a shared 2-core machine)."""
    root = tmp_path_factory.mktemp("prefect_server")
    port = free_port()
    server = PrefectServer(f"http://127.0.0.1:{port}/api", root / ".prefect")
    log = (root / "server.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server.env(),
        cwd=root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"{server.api_url}/health", 120, proc)
        yield server
    finally:
        stop(proc)
        log.close()


def prefect_cli(args: list[str], server: PrefectServer, cwd: Path, timeout: float = 240) -> str:
    """``prefect ARGS`` against ``server`` from ``cwd``; returns stdout + stderr (the test fails on a non-zero exit)."""
    proc = subprocess.run(
        [str(BIN / "prefect"), *args], cwd=cwd, env=server.env(), capture_output=True, text=True, timeout=timeout
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{out[-4000:]}"
    return out


def mlflow_runs_of(client, experiment: str, flow_run_id: str, timeout: float = 60) -> list:
    """The MLflow runs of ``experiment`` tagged with Prefect flow run ``flow_run_id`` (a worker's run is logged by
    another process: polled until one shows or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    runs: list = []
    while time.monotonic() < deadline and not runs:
        exp = client.get_experiment_by_name(experiment)
        if exp is not None:
            runs = client.search_runs([exp.experiment_id], f"tags.`prefect.flow_run_id` = '{flow_run_id}'")
        time.sleep(1)
    return runs


def make_project(path: Path) -> Path:
    """A git repo holding the tiny config (DVC initialises inside it on the first run)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    shutil.copy(TINY_CONFIG, path / "tiny.yaml")
    return path


def flow_cmd(flow: str, project: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "flows",
        flow,
        "--config",
        str(project / "tiny.yaml"),
        "--project-dir",
        str(project),
        *args,
    ]


def run_flow(server: PrefectServer, flow: str, project: Path, *args: str, timeout: float = 300) -> dict:
    """Run a flow in a subprocess against the shared server; returns its JSON result (the last stdout line)."""
    proc = subprocess.run(
        flow_cmd(flow, project, *args), cwd=REPO, env=server.env(), capture_output=True, text=True, timeout=timeout
    )
    (project / f"{flow}.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, f"{flow} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def uninterrupted(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One plain tiny run (local executor, every training in process), shared by the tests that compare to it."""
    project = make_project(tmp_path_factory.mktemp("clean") / "project")
    result = run_flow(prefect_server, "spct_pipeline", project)
    return {**result, "log": (project / "spct_pipeline.log").read_text(), "project": project}  # stdout + stderr
