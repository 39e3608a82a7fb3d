"""The MLflow store of a project: where it is, its safe creation, and waiting out another process's lock.

- Where: ``tracking.tracking_uri`` > ``$MLFLOW_TRACKING_URI`` > the embedded ``sqlite:///{project}/mlruns/mlflow.db``
  with artifacts under ``mlruns/artifacts/`` (``resolve_tracking_uri``, ``artifact_root_for``); a copied project's
  store is refused (``check_artifact_location``).
- Creation (``init_store``): MLflow creates ~40 tables and runs ~60 alembic migrations the first time a store is
  opened (2-4 s). A process killed in the middle used to leave a half-made ``mlflow.db`` that every later open
  failed on (``table webhooks already exists``), for good. A new store is now built as ``mlflow.db.creating`` and
  renamed into place when complete, so ``mlflow.db`` is either absent or whole; a half-made store left by an older
  version is moved aside and rebuilt when it holds no runs, experiments or models (it says so), and refused with the
  fix otherwise.
- Locks (``retrying_client``): SQLite lets one writer at a time; a second process that holds the file longer than
  SQLite's 5 s busy timeout made every call fail with ``database is locked``. Calls are retried with backoff for
  ``$GRM_STORE_LOCK_WAIT_S`` seconds (default 60), then ``StoreLockedError`` (exit 2) names the store, the
  processes that have it open and the fix. One try lasts up to ~20 s (MLflow's SQLite busy wait), so the default
  makes three tries.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from grm.errors import UserError

log = logging.getLogger("grm.mlflow_store")
T = TypeVar("T")
LOCK_WAIT_ENV = "GRM_STORE_LOCK_WAIT_S"
DEFAULT_LOCK_WAIT_S = 60.0
CREATING_SUFFIX = ".creating"
# rows in any of these tables make a store worth keeping (the Default experiment, id 0, does not count)
_CONTENT_QUERIES = (
    "SELECT count(*) FROM runs",
    "SELECT count(*) FROM experiments WHERE experiment_id != 0",
    "SELECT count(*) FROM registered_models",
)


def default_tracking_uri(project_dir: str | Path = ".") -> str:
    """The embedded store of a project: ``sqlite:///{abs}/mlruns/mlflow.db``."""
    db = Path(project_dir).resolve() / "mlruns" / "mlflow.db"
    return f"sqlite:///{db}"


def resolve_tracking_uri(configured: str | None, project_dir: str | Path = ".") -> str:
    """Config value > ``$MLFLOW_TRACKING_URI`` > the embedded SQLite store under ``project_dir``."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(project_dir)


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` store; None for a server."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_root_for(uri: str) -> str | None:
    """``mlruns/artifacts`` beside a local SQLite store; None lets a server decide."""
    db = sqlite_path(uri)
    return (db.parent / "artifacts").resolve().as_uri() if db is not None else None


def check_artifact_location(uri: str, experiment: str, location: str | None) -> None:
    """Refuse an embedded store whose experiment keeps its artifacts outside this store's ``mlruns/artifacts``: a
    copied project's ``mlflow.db`` still names the original folder (MLflow stores absolute locations), so every
    run of the copy would write its models and reports into the other project.

    Raises:
        UserError: naming the store, the experiment, both folders and the fix.
    """
    root = artifact_root_for(uri)
    if root is None or not location or not location.startswith("file:"):
        return
    from urllib.parse import unquote, urlparse

    own = Path(unquote(urlparse(root).path)).resolve()
    where = Path(unquote(urlparse(location).path)).resolve()
    if where != own and own not in where.parents:
        raise UserError(
            f"experiment {experiment!r} of {uri.removeprefix('sqlite:///')} keeps its artifacts in {where}, outside "
            f"this project's {own}: the store was copied from another project, whose folder every run would write "
            "into",
            field="tracking.experiment",
            fix=f"use a new experiment in this store (--set tracking.experiment={experiment}-copy), or move "
            "mlruns/ aside to start a fresh store",
        )


# ---- waiting out a lock -------------------------------------------------------------------------------------------
class StoreLockedError(UserError):
    """Another process held the SQLite store's write lock for longer than ``$GRM_STORE_LOCK_WAIT_S``."""


def is_locked(exc: BaseException) -> bool:
    """SQLite's busy errors, raw or wrapped by SQLAlchemy/MLflow."""
    text = str(exc)
    return "database is locked" in text or "database table is locked" in text


def _lock_wait() -> float:
    try:
        return max(0.0, float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_S)))
    except ValueError:
        return DEFAULT_LOCK_WAIT_S


def store_holders(db: Path) -> list[str]:
    """Other processes with the store (or its journal) open: ``pid 123 (sqlite3 mlflow.db)``. Linux ``/proc``."""
    names = {str(db.resolve()) + suffix for suffix in ("", "-journal", "-wal", "-shm")}
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        if proc.name == str(os.getpid()):
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in names for fd in (proc / "fd").iterdir()):
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                found.append(f"pid {proc.name} ({cmd[:80]})")
    return found


def locked_error(db: Path, waited: float) -> StoreLockedError:
    holders = store_holders(db)
    who = ", ".join(holders) if holders else "no process visible to this user has it open now"
    return StoreLockedError(
        f"the MLflow store stayed locked by another process for {waited:.0f} s ({who})",
        path=db,
        fix="wait for that process to finish or stop it, then rerun; a team that runs in parallel should use an "
        f"MLflow server (tracking.tracking_uri=http://...) instead of one SQLite file; {LOCK_WAIT_ENV} sets how "
        "long grm waits",
    )


def with_lock_retry(call: Callable[[], T], db: Path, wait_s: float | None = None) -> T:
    """``call()``, retried with backoff (0.5 s doubling to 8 s) while the store is locked, for ``wait_s`` seconds.

    Raises:
        StoreLockedError: the lock outlasted the wait (no ``database is locked`` in its text: not retried again).
    """
    wait_s = _lock_wait() if wait_s is None else wait_s
    start, delay = time.monotonic(), 0.5
    while True:
        try:
            return call()
        except Exception as exc:
            waited = time.monotonic() - start
            if not is_locked(exc):
                raise
            if waited + delay > wait_s:
                raise locked_error(db, waited) from exc
            log.warning("the MLflow store %s is locked by another process; retrying in %.1f s", db, delay)
            time.sleep(delay)
            delay = min(delay * 2, 8.0)


class RetryingClient:
    """An ``MlflowClient`` whose every method call waits out another process's lock (``with_lock_retry``)."""

    def __init__(self, client: Any, db: Path):
        self._client, self._db = client, db

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return with_lock_retry(lambda: attr(*args, **kwargs), self._db)

        return call


class _QuietLockErrors(logging.Filter):
    """MLflow logs each failed statement with its traceback (``mlflow.store.db.utils``): a lock that is waited out
    and then reported once needs none of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not ((exc is not None and is_locked(exc)) or is_locked(Exception(record.getMessage())))


def retrying_client(uri: str) -> Any:
    """``MlflowClient(uri)`` (created/migrated first: ``init_store``); lock-retrying for a SQLite store."""
    from mlflow import MlflowClient

    mlflow_log = logging.getLogger("mlflow.store.db.utils")
    if not any(isinstance(f, _QuietLockErrors) for f in mlflow_log.filters):
        mlflow_log.addFilter(_QuietLockErrors())
    init_store(uri)
    db = sqlite_path(uri)
    client = MlflowClient(uri)
    return RetryingClient(client, db) if db is not None else client


# ---- crash-safe creation ------------------------------------------------------------------------------------------
_READY_STORES: set[str] = set()  # SQLite stores this process has created/migrated (or found current)


def _open(uri: str) -> None:
    """Open the tracking and registry stores of ``uri`` (MLflow creates and migrates the schema on first open)."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    client.search_experiments(max_results=1)
    client.search_registered_models(max_results=1)


def _close_engines(uri: str) -> None:
    """Dispose MLflow's cached SQLAlchemy engines of ``uri``: their files are about to be renamed."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    for store in (TrackingStore, RegistryStore):
        engine = store._engine_map.pop(uri, None)
        if engine is not None:
            engine.dispose()


def _create(db: Path) -> None:
    """Build a new store as ``{db}.creating`` and rename it into place once complete (a kill leaves no ``db``)."""
    tmp = db.with_name(db.name + CREATING_SUFFIX)
    for leftover in (tmp, *(tmp.with_name(tmp.name + s) for s in ("-journal", "-wal", "-shm"))):
        leftover.unlink(missing_ok=True)  # a creation killed earlier; we hold the creation lock
    uri = f"sqlite:///{tmp}"
    try:
        _open(uri)
    finally:
        _close_engines(uri)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, db)
    with contextlib.suppress(OSError):
        fd = os.open(db.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def holds_content(db: Path) -> bool:
    """Whether a store has runs, experiments other than Default, or registered models (True when unreadable)."""
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return True
    try:
        for query in _CONTENT_QUERIES:
            with contextlib.suppress(sqlite3.OperationalError):  # a table a half-made store lacks holds nothing
                if con.execute(query).fetchone()[0]:
                    return True
        return False
    finally:
        con.close()


def _repair(db: Path, uri: str, err: Exception) -> None:
    """An existing store failed to open: rebuild it when it is empty (a creation cut short), else refuse."""
    if holds_content(db):
        raise UserError(
            f"the MLflow store cannot be opened ({type(err).__name__}: {str(err).splitlines()[0][:200]}) and it "
            "holds runs or models, so grm leaves it as it is",
            path=db,
            fix=f"run `mlflow db upgrade {uri}` to complete its schema, or move mlruns/ aside to start a fresh store",
        ) from err
    aside = db.with_name(f"{db.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(db, aside)
    log.warning(
        "the MLflow store %s was left half-created by an interrupted first run and holds no runs: "
        "moved it to %s and created a new one",
        db,
        aside.name,
    )
    _create(db)


def init_store(uri: str) -> None:
    """Create (crash-safe) or migrate an embedded SQLite store once per process, under ``{db}.lock``.

    Two processes opening a new file at once raced in MLflow's migrations; the first here creates while holding
    the lock, the second waits, then finds the schema current. Servers (``http://...``) migrate themselves.

    Raises:
        StoreLockedError: another process held the store locked for longer than ``$GRM_STORE_LOCK_WAIT_S``.
        UserError: an existing store with runs cannot be opened (with the fix).
    """
    db = sqlite_path(uri)
    if uri in _READY_STORES or db is None:
        return
    from tasks.engine.locks import file_lock

    db.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(db.with_name(db.name + ".lock"), f"the MLflow store {db} (first use: schema migration)"):
        if not db.exists():
            with_lock_retry(lambda: _create(db), db)
        else:
            try:
                with_lock_retry(lambda: _open(uri), db)
            except StoreLockedError:
                raise
            except Exception as err:  # a half-made store: MLflow's migration fails on the tables it already has
                _close_engines(uri)
                _repair(db, uri, err)
    _READY_STORES.add(uri)
