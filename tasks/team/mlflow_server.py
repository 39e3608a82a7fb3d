"""The MLflow tracking server of the stack: tracking + registry on PostgreSQL, artifacts proxied to S3
(``--artifacts-destination s3://grm-mlflow``: only this server holds the S3 keys; clients read and write through
``mlflow-artifacts:/``), ``--allowed-hosts`` (MLflow >= 3.5 refuses other Host headers), and its basic-auth app
(users in the ``mlflow_auth`` database; the stack's admin account is what ``.grm/services.env`` names).
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

from tasks.team import objectstore, postgres, processes

NAME = "mlflow"
ADMIN_USER = "grm-admin"


def url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def write_auth_config(state_dir: Path, database_url: str, admin_password: str) -> Path:
    """MLflow's basic-auth ini (mode 0600): users in PostgreSQL, new experiments readable by every user."""
    path = state_dir / "mlflow-auth.ini"
    text = (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database_url}\n"
        f"admin_username = {ADMIN_USER}\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # a checked password is cached for a minute: without it every request pays a PBKDF2 hash (~0.4 s per
        # request on a busy 2-core host; logging a pyfunc model makes hundreds of requests)
        "auth_cache_ttl_seconds = 60\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path


def allowed_hosts(host: str, port: int, extra: tuple[str, ...] = ()) -> str:
    names = {host, "127.0.0.1", "localhost", *extra}
    return ",".join(sorted(f"{n}:{port}" for n in names) + sorted(names))


def command(host: str, port: int, backend_url: str, extra_hosts: tuple[str, ...] = ()) -> list[str]:
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", backend_url,
        "--artifacts-destination", f"s3://{objectstore.MLFLOW_BUCKET}",
        "--host", host, "--port", str(port),
        "--allowed-hosts", allowed_hosts(host, port, extra_hosts),
        "--workers", "1",
        "--app-name", "basic-auth",
    ]  # fmt: skip


def start(
    state_dir: Path,
    host: str,
    port: int,
    pg: dict[str, object],
    s3: dict[str, object],
    admin_password: str,
    base_env: dict[str, str],
    extra_hosts: tuple[str, ...] = (),
) -> int:
    """Start the server (``pg``: host/port/password of PostgreSQL; ``s3``: host/ports/keys of the store)."""
    auth_ini = write_auth_config(
        state_dir, postgres.url(pg["host"], pg["port"], pg["password"], "mlflow_auth"), admin_password
    )
    env = {
        **base_env,
        "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
        "AWS_ACCESS_KEY_ID": str(s3["access_key"]),
        "AWS_SECRET_ACCESS_KEY": str(s3["secret_key"]),
        "AWS_DEFAULT_REGION": objectstore.REGION,
        "MLFLOW_S3_ENDPOINT_URL": objectstore.endpoint(str(s3["host"]), s3["ports"]),
    }
    backend = postgres.url(pg["host"], pg["port"], pg["password"], "mlflow")
    return processes.start(state_dir, NAME, command(host, port, backend, extra_hosts), env)


def auth_header(password: str) -> dict[str, str]:
    token = base64.b64encode(f"{ADMIN_USER}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def ready(host: str, port: int, password: str) -> bool:
    """``/health`` answers 200 and an authenticated API call works (the auth app and the database are up)."""
    base = url(host, port)
    if processes.http_status(f"{base}/health") != 200:
        return False
    probe = f"{base}/api/2.0/mlflow/experiments/search?max_results=1"
    return processes.http_status(probe, auth_header(password)) == 200
