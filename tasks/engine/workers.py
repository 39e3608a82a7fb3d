"""Stage builds that run at once: the CPU cores they share, and a process of their own for each build.

``runtime.parallel_stages`` > 1 lets the flow run independent stages together (RFT's variants beside ``rl.train``,
the evaluations side by side). Tiny models scale poorly to a second thread, so two stages on one thread each
finish sooner than the same two one after the other on two threads (``bench/stage_concurrency.py``). Two things
make that safe and result-neutral:

* ``CpuPool``: at most ``parallel_stages`` builds run at a time and they split the cores; a build that finds
  others ready beside it gets ``free cores // ready builds`` threads (at least one), a build alone gets them all.
  The count is a cap (``grm.threads``) under the stage's own ``num_threads``; it never changes a result (on the
  tested CPUs 1 and 2 threads give bitwise the same numbers, with MKL's strict reproducibility mode that
  ``import grm`` sets; ``tests/integration/test_thread_count.py``), so no
  stage key holds it (``runtime`` is in no slice).
* ``run_build``: the build runs in a fresh process forked from a server that imported torch, transformers, TRL and
  the stage modules once (``multiprocessing`` forkserver), so a build starts in milliseconds, its torch threads,
  environment (the MLflow variables TRL's callback reads) and memory are its own, and nothing of one build leaks
  into another. Everything else stays in the flow's process: the stage lock, the tmp folder and its atomic rename,
  tracking and timing (``tasks.engine.stages``, ``tasks.engine.runtime``). The child dies with the flow (SIGKILL included: a
  parent-death signal plus a watchdog on the flow's pid), so a killed run never completes a stage behind a rerun.

With ``parallel_stages: 1`` builds run one at a time in the flow's process, all on one thread (``BuildThread``:
after a second thread has run torch kernels, a 2-thread build runs at about its 1-thread speed).

Example:
    >>> pool = CpuPool(cores=2, max_builds=2, settle_s=0)
    >>> with pool.slot("a") as threads:
    ...     threads
    2
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tasks.engine.stage_code import STAGE_MODULES

log = logging.getLogger("grm.workers")

# Imported once by the fork server: what a build needs (a child only imports what it uses beyond these).
PRELOAD = ("torch", "transformers", "trl", "datasets", *STAGE_MODULES)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def cpu_count() -> int:
    """The cores this process may run on (its affinity mask; a container's CPU set)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class CpuPool:
    """At most ``max_builds`` builds at a time, sharing ``cores`` threads.

    A build's thread count is decided when it starts: the free cores split evenly over the builds ready then (at
    least one each). A stage counts as ready from the moment its task starts (``expected``, before its key is
    planned and its MLflow run opened), and a build waits ``settle_s`` before it takes cores, so stages the flow
    starts together (``.submit()`` within milliseconds) see each other instead of the first taking every core.
    """

    def __init__(self, cores: int, max_builds: int, settle_s: float = 0.25):
        if cores < 1 or max_builds < 1:
            raise ValueError(f"CpuPool(cores={cores}, max_builds={max_builds}): both must be >= 1")
        self.cores, self.max_builds, self.settle_s = cores, max_builds, settle_s
        self._cond = threading.Condition()
        self._used = 0
        self._running = 0
        self._ready = 0
        self._local = threading.local()

    @contextlib.contextmanager
    def expected(self) -> Iterator[None]:
        """Count this thread's stage as ready for the block (its build, if any, calls ``slot`` inside it)."""
        with self._cond:
            self._ready += 1
        self._local.expected = True
        try:
            yield
        finally:
            if getattr(self._local, "expected", False):  # no build (a reused stage): withdraw
                self._local.expected = False
                with self._cond:
                    self._ready -= 1
                    self._cond.notify_all()

    @contextlib.contextmanager
    def slot(self, what: str) -> Iterator[int]:
        """Wait for a turn; yields the build's thread count, returned to the pool at exit."""
        arrived = time.monotonic()
        if getattr(self._local, "expected", False):
            self._local.expected = False  # counted since ``expected``
        else:
            with self._cond:
                self._ready += 1
        if self.settle_s > 0:
            time.sleep(self.settle_s)
        with self._cond:
            while self._running >= self.max_builds or self._used >= self.cores:
                self._cond.wait()
            free = self.cores - self._used
            sharing = min(self._ready, self.max_builds - self._running, free)
            threads = max(1, free // max(1, sharing))
            self._ready -= 1
            self._running += 1
            self._used += threads
        waited = time.monotonic() - arrived - self.settle_s
        if waited > 1:
            log.info("%s waited %.1f s for a CPU slot", what, waited)
        try:
            yield threads
        finally:
            with self._cond:
                self._running -= 1
                self._used -= threads
                self._cond.notify_all()


_POOL: CpuPool | None = None


def configure(parallel_stages: int, cores: int | None = None) -> CpuPool:
    """Set this process's pool for a flow run (``runtime.parallel_stages``); starts the fork server when > 1."""
    global _POOL
    _POOL = CpuPool(cores or cpu_count(), parallel_stages, settle_s=0.25 if parallel_stages > 1 else 0.0)
    if parallel_stages > 1:
        start_server()
    return _POOL


def pool() -> CpuPool:
    """The pool of the current flow run (one build at a time on every core when none was configured)."""
    global _POOL
    if _POOL is None:
        _POOL = CpuPool(cpu_count(), 1, settle_s=0.0)
    return _POOL


# --- one thread for the builds that stay in this process -------------------------------------------------------


class BuildThread:
    """One daemon thread that runs every build of this process that does not get a process of its own.

    Torch's CPU kernels run on OpenMP, and libgomp keeps a team of worker threads for every thread that ever ran a
    parallel region. Measured on 2 cores (``bench/build_thread.py``), 60 RFT steps on 2 threads take 1.45x as long
    when a second thread runs them after the first as when one thread runs every kernel (about the 1-thread
    speed); most likely because libgomp cuts the spinning of idle workers short once a process holds more OpenMP
    threads than cores, so every small kernel pays a wake-up (``OMP_WAIT_POLICY=PASSIVE`` slows a lone caller
    alike). The flow calls stages from its own thread and from Prefect's task threads, so with
    ``runtime.parallel_stages: 1`` every stage used to start its own team; running them all here keeps one (the
    main thread never runs a kernel of a build). Thread-neutral otherwise: the caller's context (Prefect's run
    context, contextvars) goes with the call, and the build's result or exception (``BaseException`` included)
    comes back to the caller. A daemon thread, so a killed or interrupted flow never waits for a build it abandoned
    (its tmp folder is discarded, as after a crash); that is why this is not a one-worker ``ThreadPoolExecutor``,
    whose thread the interpreter joins at exit.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the build thread (directly when called from it); returns its result or raises."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="grm-build", daemon=True)
                self._thread.start()
        done: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((done, contextvars.copy_context(), fn, args))
        return done.result()

    def _loop(self) -> None:
        while True:
            done, context, fn, args = self._jobs.get()
            if not done.set_running_or_notify_cancel():
                continue
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
                done.set_exception(exc)
            else:
                done.set_result(result)


BUILD_THREAD = BuildThread()


# --- a process per build ---------------------------------------------------------------------------------------

_START_LOCK = threading.Lock()


def _context() -> Any:
    return multiprocessing.get_context("forkserver")


def start_server() -> None:
    """Start the fork server (it imports ``PRELOAD`` once; builds fork from it). Idempotent.

    The server gets this process's ``sys.path`` through ``PYTHONPATH`` (Python 3.11's fork server ignores the
    ``sys_path`` it is handed), so it imports the same ``grm`` and ``tasks`` as this process.
    """
    from multiprocessing import forkserver

    with _START_LOCK:
        ctx = _context()
        ctx.set_forkserver_preload(list(PRELOAD))
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        try:
            forkserver.ensure_running()
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved


@dataclass(frozen=True)
class _Job:
    fn: Callable[..., Any]  # a module-level function (pickled by reference)
    args: tuple
    threads: int
    env: dict[str, str]
    sys_path: list[str]
    flow_pid: int


def _die_with_the_flow(flow_pid: int) -> None:
    """SIGKILL this process when its parent (the fork server) dies, and exit when the flow's process is gone
    (the fork server exits when the flow's process does; the watchdog covers a server that outlives it)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(flow_pid, 0)
            except ProcessLookupError:
                os._exit(70)
            except PermissionError:  # pragma: no cover - pid reused by another user's process
                os._exit(70)

    threading.Thread(target=watch, name="grm-flow-watchdog", daemon=True).start()


def _child(conn: Any, job: _Job) -> None:
    _die_with_the_flow(job.flow_pid)
    os.environ.clear()
    os.environ.update(job.env)  # the flow's environment now, not the fork server's at its start
    sys.path[:] = job.sys_path
    from grm import threads

    threads.set_cap(job.threads)
    threads.set_torch_threads(job.threads)  # the default for code that sets none (a sampler without num_threads)
    try:
        result = job.fn(*job.args)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the flow, which raises it
        text = traceback.format_exc()
        try:
            conn.send(("error", exc, text))
        except Exception:  # an exception that does not pickle: its text still names it
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}"), text))
    else:
        conn.send(("ok", result, ""))
    finally:
        conn.close()


class BuildProcessError(RuntimeError):
    """The build's process ended without an answer (killed, out of memory, a crash in native code)."""


def run_build(fn: Callable[..., Any], args: tuple, threads: int, what: str) -> Any:
    """``fn(*args)`` in a process forked from the fork server, capped at ``threads`` torch threads; returns its
    result or raises its exception (with the child's traceback as a note)."""
    start_server()
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    job = _Job(fn, args, threads, dict(os.environ), list(sys.path), os.getpid())
    proc = ctx.Process(target=_child, args=(send, job), name=f"grm-build {what}", daemon=True)
    proc.start()
    send.close()
    try:
        try:
            status, value, text = recv.recv()
        except EOFError:
            proc.join()
            raise BuildProcessError(
                f"{what}: the build process {proc.pid} ended without a result (exit code {proc.exitcode}; "
                "killed or out of memory?)"
            ) from None
    finally:
        recv.close()
    proc.join()
    if status == "ok":
        return value
    if isinstance(value, BaseException):
        value.add_note(f"in the build process of {what}:\n{text}")
    raise value
