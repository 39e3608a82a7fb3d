"""``grm team up|down|status``: the reference single-host team stack (docs/team.md).

State folder (default ``~/.grm-team``; ``--dir``): ``stack.json`` (host, ports, generated credentials; mode 0600),
``logs/<service>.log``, ``run/<service>.pid``, the object store's data, MLflow's auth ini, Prefect's home; the
PostgreSQL cluster in ``postgres/`` (or linked from there, see ``tasks.team.postgres``).

``up`` is idempotent: a first call picks free ports and credentials and keeps them; later calls start only what is
not running (so ``up`` after a crash or a stopped service brings back the same endpoints). Services bind
127.0.0.1 unless ``--host`` says otherwise; every service needs credentials in any case (a shared host has other
users): PostgreSQL passwords, S3 keys, MLflow basic-auth, Prefect's auth string.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grm.errors import UserError
from tasks.team import mlflow_server, objectstore, postgres, prefect_server, processes

DEFAULT_DIR = Path(os.environ.get("GRM_TEAM_DIR", Path.home() / ".grm-team"))
LOOPBACK = ("127.0.0.1", "localhost", "::1")
SERVICES = ("postgres", objectstore.NAME, mlflow_server.NAME, prefect_server.NAME, prefect_server.WORKER)
START_TIMEOUT_S = 180  # Prefect's server migrates its database on the first start: ~40 s on a busy 2-core host


@dataclass
class StackState:
    """What ``stack.json`` holds: enough to reach (and restart) every service with the same endpoints."""

    host: str = "127.0.0.1"
    advertise: str = ""  # the host name clients use (defaults to host; for --host 0.0.0.0 give the machine's name)
    ports: dict[str, int] = field(default_factory=dict)
    pg_password: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    mlflow_password: str = ""
    prefect_auth: str = ""
    mlflow_secret: str = ""  # MLflow's Flask secret (CSRF tokens of the basic-auth app); stable across restarts

    @property
    def client_host(self) -> str:
        return self.advertise or self.host

    @property
    def s3_ports(self) -> dict[str, int]:
        return {k: self.ports[f"s3_{k}" if not k.startswith("s3") else k] for k in objectstore.PORT_KEYS}

    @property
    def mlflow_url(self) -> str:
        return mlflow_server.url(self.client_host, self.ports["mlflow"])

    @property
    def prefect_api_url(self) -> str:
        return prefect_server.api_url(self.client_host, self.ports["prefect"])

    @property
    def s3_endpoint(self) -> str:
        return objectstore.endpoint(self.client_host, self.s3_ports)

    def pg(self) -> dict[str, object]:
        return {"host": _local(self.host), "port": self.ports["postgres"], "password": self.pg_password}

    def s3(self) -> dict[str, object]:
        return {
            "host": _local(self.host),
            "ports": self.s3_ports,
            "access_key": self.s3_access_key,
            "secret_key": self.s3_secret_key,
        }


def _local(host: str) -> str:
    """The address a process on this host uses to reach a service bound to ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "localhost") else host


def state_path(state_dir: Path) -> Path:
    return state_dir / "stack.json"


def load(state_dir: Path) -> StackState:
    """The stack recorded in ``state_dir`` (a UserError naming the folder when there is none)."""
    path = state_path(state_dir)
    if not path.is_file():
        raise UserError(
            f"no team stack in {state_dir} (no stack.json): start one with `grm team up --dir {state_dir}`"
        )
    return StackState(**json.loads(path.read_text()))


def _save(state_dir: Path, state: StackState) -> None:
    tmp = state_path(state_dir).with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(state), f, indent=2)
    os.replace(tmp, state_path(state_dir))


def _new_state(host: str, advertise: str) -> StackState:
    bind = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    ports = {"postgres": processes.free_port(bind), "mlflow": processes.free_port(bind)}
    ports["prefect"] = processes.free_port(bind)
    for key in objectstore.PORT_KEYS:
        ports[key if key.startswith("s3") else f"s3_{key}"] = processes.free_port(bind)
    return StackState(
        host=host,
        advertise=advertise,
        ports=ports,
        pg_password=secrets.token_urlsafe(18),
        s3_access_key="GRM" + secrets.token_hex(8).upper(),
        s3_secret_key=secrets.token_urlsafe(30),
        mlflow_password=secrets.token_urlsafe(18),
        prefect_auth=f"grm:{secrets.token_urlsafe(18)}",
        mlflow_secret=secrets.token_urlsafe(32),
    )


def check_bind(host: str, advertise: str) -> None:
    """A non-loopback bind is allowed (every service authenticates) but needs the name clients will use."""
    if host not in LOOPBACK and not advertise and host in ("0.0.0.0", "::"):
        raise UserError(
            f"--host {host} listens on every interface: give --advertise HOSTNAME, the name the other machines "
            "use to reach this one (it goes into the clients' settings and MLflow's --allowed-hosts)"
        )


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_"))}
    env.update({"DO_NOT_TRACK": "1", "MLFLOW_ENABLE_ASYNC_LOGGING": "false"})
    return env


def up(state_dir: Path, host: str = "127.0.0.1", advertise: str = "", log=print) -> StackState:  # noqa: T202
    """Create (first time) and start every service not already running; returns the stack's state."""
    state_dir = state_dir.expanduser().resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if state_path(state_dir).exists():
        state = load(state_dir)
        if (host, advertise) != (state.host, state.advertise) and (host != "127.0.0.1" or advertise):
            raise UserError(
                f"the stack in {state_dir} binds {state.host} (advertised as {state.client_host!r}); "
                "`grm team down --purge` first to change it"
            )
    else:
        check_bind(host, advertise)
        state = _new_state(host, advertise)
        _save(state_dir, state)
    env = _base_env()
    pg, s3 = state.pg(), state.s3()
    bind = state.host

    if not postgres.running(state_dir):
        postgres.init_cluster(state_dir, state.pg_password, bind)
        postgres.start(state_dir, bind, state.ports["postgres"])
        log(f"postgres     started on {bind}:{state.ports['postgres']}")
    postgres.create_databases(str(pg["host"]), state.ports["postgres"], state.pg_password)

    if processes.running_pid(state_dir, objectstore.NAME) is None:
        objectstore.write_identities(state_dir, state.s3_access_key, state.s3_secret_key)
        objectstore.start(state_dir, bind, state.s3_ports, env)
        log(f"objectstore  started on {bind}:{state.ports['s3']} (SeaweedFS S3)")
    processes.wait_until(
        lambda: objectstore.ready(str(s3["host"]), state.s3_ports, state.s3_access_key, state.s3_secret_key),
        "the object store (SeaweedFS S3)", START_TIMEOUT_S, state_dir, objectstore.NAME,
    )  # fmt: skip
    objectstore.create_buckets(str(s3["host"]), state.s3_ports, state.s3_access_key, state.s3_secret_key)

    started = []
    if processes.running_pid(state_dir, mlflow_server.NAME) is None:
        extra = (state.advertise,) if state.advertise else ()
        mlflow_env = {**env, "MLFLOW_FLASK_SERVER_SECRET_KEY": state.mlflow_secret}
        mlflow_server.start(state_dir, bind, state.ports["mlflow"], pg, s3, state.mlflow_password, mlflow_env, extra)
        started.append(mlflow_server.NAME)
    penv = prefect_server.server_env(state_dir, pg, state.prefect_auth, env)
    if processes.running_pid(state_dir, prefect_server.NAME) is None:
        prefect_server.start(state_dir, bind, state.ports["prefect"], penv)
        started.append(prefect_server.NAME)
    local = _local(bind)
    processes.wait_until(
        lambda: mlflow_server.ready(local, state.ports["mlflow"], state.mlflow_password),
        "the MLflow server", START_TIMEOUT_S, state_dir, mlflow_server.NAME,
    )  # fmt: skip
    if mlflow_server.NAME in started:
        log(f"mlflow       started on {state.mlflow_url} (PostgreSQL, artifacts s3://{objectstore.MLFLOW_BUCKET})")
    processes.wait_until(
        lambda: prefect_server.ready(local, state.ports["prefect"], state.prefect_auth),
        "the Prefect server", START_TIMEOUT_S, state_dir, prefect_server.NAME,
    )  # fmt: skip
    if prefect_server.NAME in started:
        log(f"prefect      started on {state.prefect_api_url} (PostgreSQL)")
    cenv = prefect_server.client_env(state_dir, local, state.ports["prefect"], state.prefect_auth, env)
    if processes.running_pid(state_dir, prefect_server.WORKER) is None:
        prefect_server.create_work_pool(cenv)
        prefect_server.start_worker(state_dir, cenv)
        log(f"worker       started on work pool {prefect_server.WORK_POOL}")
    return state


def stop_service(state_dir: Path, name: str) -> bool:
    """Stop one service (``SERVICES``); False when it was not running."""
    state_dir = state_dir.expanduser().resolve()
    if name == "postgres":
        return postgres.stop(state_dir)
    if name not in SERVICES:
        raise UserError(f"unknown service {name!r}; known: {', '.join(SERVICES)}")
    return processes.stop(state_dir, name)


def down(state_dir: Path, purge: bool = False, log=print) -> None:  # noqa: T202
    """Stop every service (worker first, PostgreSQL last); ``purge`` also deletes the state folder and data."""
    state_dir = state_dir.expanduser().resolve()
    load(state_dir)
    for name in reversed(SERVICES):
        if stop_service(state_dir, name):
            log(f"{name:<12} stopped")
    if purge:
        postgres.remove(state_dir)
        import shutil

        shutil.rmtree(state_dir, ignore_errors=True)
        log(f"deleted {state_dir}")


def status(state_dir: Path) -> list[tuple[str, bool, str]]:
    """(service, up, detail) for every service: its endpoint and pid, or the log to read when it is down."""
    state_dir = state_dir.expanduser().resolve()
    state = load(state_dir)
    local = _local(state.host)
    rows = []
    pg_up = postgres.running(state_dir)
    rows.append(("postgres", pg_up, f"{state.client_host}:{state.ports['postgres']} databases mlflow, prefect"))
    checks = {
        objectstore.NAME: (
            lambda: objectstore.ready(local, state.s3_ports, state.s3_access_key, state.s3_secret_key),
            f"{state.s3_endpoint} buckets {', '.join(objectstore.BUCKETS)}",
        ),
        mlflow_server.NAME: (
            lambda: mlflow_server.ready(local, state.ports["mlflow"], state.mlflow_password),
            state.mlflow_url,
        ),
        prefect_server.NAME: (
            lambda: prefect_server.ready(local, state.ports["prefect"], state.prefect_auth),
            state.prefect_api_url,
        ),
        prefect_server.WORKER: (lambda: True, f"work pool {prefect_server.WORK_POOL}"),
    }
    for name, (ready, detail) in checks.items():
        pid = processes.running_pid(state_dir, name)
        ok = pid is not None and ready()
        where = f"pid {pid}" if pid else f"log {processes.log_file(state_dir, name)}"
        rows.append((name, ok, f"{detail} ({where})"))
    return rows


def wait_all_up(state_dir: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(ok for _, ok, _ in status(state_dir)):
            return
        time.sleep(1)
    raise UserError(f"the team stack in {state_dir} is not all up after {timeout:.0f} s: `grm team status`")
