"""The Prefect server of the stack on PostgreSQL (``postgresql+asyncpg://.../prefect``) with an auth string
(``PREFECT_SERVER_API_AUTH_STRING``: clients send it as ``PREFECT_API_AUTH_STRING``), a process work pool
``grm-process`` (the pool ``prefect.yaml``'s deployments name) and one worker polling it.
"""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

from grm.errors import UserError
from tasks.team import postgres, processes

NAME = "prefect"
WORKER = "worker"
WORK_POOL = "grm-process"


def api_url(host: str, port: int) -> str:
    return f"http://{host}:{port}/api"


def _prefect() -> list[str]:
    return [sys.executable, "-m", "prefect"]


def server_env(state_dir: Path, pg: dict[str, object], auth: str, base_env: dict[str, str]) -> dict[str, str]:
    return {
        **base_env,
        "PREFECT_HOME": str(state_dir / "prefect-home"),
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres.url(
            pg["host"], pg["port"], pg["password"], "prefect", driver="asyncpg"
        ),
        "PREFECT_SERVER_API_AUTH_STRING": auth,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "true",
    }


def client_env(state_dir: Path, host: str, port: int, auth: str, base_env: dict[str, str]) -> dict[str, str]:
    """Environment of a Prefect client (the worker, ``prefect work-pool create``)."""
    return {
        **base_env,
        "PREFECT_HOME": str(state_dir / "prefect-home"),
        "PREFECT_API_URL": api_url(host, port),
        "PREFECT_API_AUTH_STRING": auth,
    }


def start(state_dir: Path, host: str, port: int, env: dict[str, str]) -> int:
    cmd = [*_prefect(), "server", "start", "--host", host, "--port", str(port)]
    return processes.start(state_dir, NAME, cmd, env)


def ready(host: str, port: int, auth: str) -> bool:
    token = base64.b64encode(auth.encode()).decode()
    status = processes.http_status(f"{api_url(host, port)}/health", {"Authorization": f"Basic {token}"})
    return status == 200


def create_work_pool(env: dict[str, str]) -> None:
    proc = subprocess.run(
        [*_prefect(), "work-pool", "create", WORK_POOL, "--type", "process", "--overwrite"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode != 0:
        raise UserError(f"prefect work-pool create {WORK_POOL} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def start_worker(state_dir: Path, env: dict[str, str]) -> int:
    cmd = [*_prefect(), "worker", "start", "--pool", WORK_POOL, "--type", "process", "--name", "grm-team-worker"]
    return processes.start(state_dir, WORKER, cmd, env)
