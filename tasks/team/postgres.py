"""PostgreSQL for the team stack: one cluster (``initdb``), TCP only on the stack's host, password (SCRAM) auth,
databases ``mlflow`` (tracking + registry), ``mlflow_auth`` (MLflow's basic-auth users) and ``prefect`` (with the
``pg_trgm`` extension Prefect's server uses).

The binaries come from Debian's ``postgresql`` package (``/usr/lib/postgresql/<major>/bin``) or ``$PATH``.
PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user, in a folder that user can
reach (``/var/lib/grm-team/<id>`` when the state folder cannot be reached by it, linked from the state folder).
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path

from grm.errors import UserError

DATABASES = ("mlflow", "mlflow_auth", "prefect")
SUPERUSER = "grm"
ROOT_DATA_PARENT = Path(os.environ.get("GRM_TEAM_PG_ROOT", "/var/lib/grm-team"))
INSTALL_HINT = "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql) or put its bin/ folder on PATH"


def bin_dir() -> Path:
    """The folder holding ``initdb``/``pg_ctl`` (newest Debian install first, then ``$PATH``)."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True):
        if (Path(found) / "pg_ctl").exists():
            return Path(found)
    which = shutil.which("pg_ctl")
    if which:
        return Path(which).resolve().parent
    raise UserError(f"PostgreSQL's pg_ctl was not found: {INSTALL_HINT}")


def _run_as() -> str | None:
    """The user the server runs as: ``postgres`` when we are root (PostgreSQL refuses root), else ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise UserError(
            "running as root needs a 'postgres' system user (apt-get install postgresql makes it)"
        ) from exc
    return "postgres"


def _reachable_by_others(path: Path) -> bool:
    """Every folder above ``path`` lets other users through (o+x), so the ``postgres`` user can reach it."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())


def data_dir(state_dir: Path) -> Path:
    """Where the cluster of the stack at ``state_dir`` lives (see the module docstring)."""
    state_dir = state_dir.resolve()
    if _run_as() is None or _reachable_by_others(state_dir):
        return state_dir / "postgres"
    key = hashlib.sha256(str(state_dir).encode()).hexdigest()[:12]
    return ROOT_DATA_PARENT / f"pg-{key}"


def _pg(args: list[str], check: bool = True) -> subprocess.CompletedProcess:
    user = _run_as()
    proc = subprocess.run(
        [str(bin_dir() / args[0]), *args[1:]],
        user=user,
        group=user,
        extra_groups=[] if user else None,
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise UserError(f"PostgreSQL {args[0]} failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc


def init_cluster(state_dir: Path, password: str, host: str) -> Path:
    """``initdb`` once (SCRAM passwords, superuser ``grm``); remote hosts allowed in ``pg_hba.conf`` when the
    stack binds beyond loopback. Returns the data folder."""
    data = data_dir(state_dir)
    if (data / "PG_VERSION").exists():
        return data
    user = _run_as()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    if data.parent == ROOT_DATA_PARENT:
        os.chmod(ROOT_DATA_PARENT, 0o755)
        link = state_dir / "postgres"
        if not link.exists():
            link.symlink_to(data, target_is_directory=True)
    pwfile = data.parent / f".{data.name}.pw"
    pwfile.write_text(password + "\n")
    if user:
        shutil.chown(data, user, user)
        shutil.chown(pwfile, user, user)
    os.chmod(pwfile, 0o600)
    try:
        _pg(["initdb", "-D", str(data), "-U", SUPERUSER, "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
             "--locale=C"])  # fmt: skip
    finally:
        pwfile.unlink(missing_ok=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        with (data / "pg_hba.conf").open("a") as f:
            f.write("host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n")
    return data


def start(state_dir: Path, host: str, port: int) -> None:
    """``pg_ctl start`` (waits until it accepts connections): TCP on ``host:port`` only, no unix socket."""
    data = data_dir(state_dir)
    options = f"-c listen_addresses={host} -p {port} -c unix_socket_directories='' -c max_connections=60"
    _pg(["pg_ctl", "start", "-w", "-t", "60", "-D", str(data), "-l", str(data / "server.log"), "-o", options])


def stop(state_dir: Path) -> bool:
    """``pg_ctl stop -m fast``; False when it was not running."""
    data = data_dir(state_dir)
    if not (data / "postmaster.pid").exists():
        return False
    return _pg(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(data)], check=False).returncode == 0


def running(state_dir: Path) -> bool:
    data = data_dir(state_dir)
    return (data / "PG_VERSION").exists() and _pg(["pg_ctl", "status", "-D", str(data)], check=False).returncode == 0


def url(host: str, port: int, password: str, database: str, driver: str = "psycopg2") -> str:
    """A SQLAlchemy URL of ``database`` (``driver``: psycopg2 for MLflow, asyncpg for Prefect)."""
    return f"postgresql+{driver}://{SUPERUSER}:{password}@{host}:{port}/{database}"


def create_databases(host: str, port: int, password: str) -> None:
    """Create the stack's databases and Prefect's ``pg_trgm`` extension when missing (idempotent)."""
    import psycopg2

    conn = psycopg2.connect(host=host, port=port, user=SUPERUSER, password=password, dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in DATABASES:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    conn = psycopg2.connect(host=host, port=port, user=SUPERUSER, password=password, dbname="prefect")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    finally:
        conn.close()


def remove(state_dir: Path) -> None:
    """Delete the cluster's folder (after ``stop``)."""
    data = data_dir(state_dir)
    shutil.rmtree(data, ignore_errors=True)
    link = state_dir / "postgres"
    if link.is_symlink():
        link.unlink()
