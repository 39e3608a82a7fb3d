"""Inter-process file locks (``fcntl.flock``) for what two runs in one project must not do at once.

The kernel holds an ``flock`` for as long as the holder's file descriptor is open, so a lock is always held by a
live process: when the holder exits or is killed (SIGKILL included) the lock is free for the next waiter. Nothing
is ever left to clean up by hand; lock files stay (empty but for the last holder's pid, which the wait message
names) and are never deleted (deleting a lock file that a waiter has open would let a third process take a second
lock on a new file of the same name).

Used for: a stage key being built (``tasks.engine.stages.StageStore``), the MLflow SQLite store's first use (its schema
migration, ``tasks.tracking``), Prefect's temporary-server database (``tasks.prefect_env``) and the DVC repository
(``dvc init``, ``dvc add``/``push`` and the rollback of ``data.version``).

Example:
    >>> import tempfile, pathlib
    >>> lock = pathlib.Path(tempfile.mkdtemp()) / "x.lock"
    >>> with file_lock(lock, "demo"):
    ...     lock.read_text().strip() == str(os.getpid())
    True
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger("grm.locks")


def _holder(fd: int) -> str:
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
    except OSError:
        return "?"


@contextmanager
def file_lock(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block; wait while another process
    (or another thread of this one) holds it, logging once who holds it and what for.

    Args:
        path: the lock file.
        what: what the lock protects, for the wait message (``stage rft.sample 3f2a...``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            start = time.monotonic()
            log.info("waiting for %s: pid %s holds %s", what, _holder(fd), path)
            fcntl.flock(fd, fcntl.LOCK_EX)
            log.info("%s: lock acquired after %.1f s", what, time.monotonic() - start)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
