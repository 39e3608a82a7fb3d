"""The asyncio scoring engine: dynamic batching, fair scheduling, a result cache, back-pressure and group mode.

One worker thread owns the sampler (samplers are not thread-safe) and runs **cycles**. A cycle takes work units
(``grm.serving.scoring.Unit``) from the active jobs **round-robin, one unit per job per round**, up to
``max_batch_size`` generations, so a small request that arrives behind a huge one is in the next cycle instead of
waiting for the whole huge one (bounded per-request work per cycle). The first job of an idle engine waits up to
``max_wait_ms`` for company. With ``batching=False`` a cycle serves exactly one whole request (the baseline).

Identical requests (same items and settings) are answered from a bounded LRU cache, or share the computation still
in flight. When more than ``max_pending_samples`` generations are queued a request waits for room within its
deadline (``request_timeout_s``) and only then gets ``429`` with a ``Retry-After`` estimated from the measured
throughput; a request whose callers all left (timeout, disconnect) has its queued units dropped; a stopped engine
answers ``503``.

**Group mode** (``group_window_ms > 0``): single-response requests with the same query (or the same ``group_id``)
and settings that arrive within the window are judged together as one multi-response item (each sample shuffles
the responses) and each caller gets its own response's score. A group with a ``group_size`` is sent as soon as it
is full; when the window closes first it falls back to pointwise scoring of each member. Without ``group_size`` the
window decides: two or more members are judged together, a lone one pointwise.

**Principles.** An item may carry principles (the caller's): they are written into every judgement prompt of the
item (``grm.method.prompts.with_principles``). With ``principle_mode="query_only"`` the engine first generates principles
from the query alone (``grm.method.prompts.render_principles_prompt``, one sample at the request's temperature, seed and
token budget), once per (query, settings): concurrent requests share one generation and one sampler call, later
ones a bounded cache; every response and every sample of the query is then judged against them. A generation with
no principles in it leaves the item to the default mode (the judge writes its own; reported as source ``model``).

The group window is ``grm.serving.groups``, the query-only principles ``grm.serving.query_principles``, the error
every refusal raises ``grm.serving.errors.EngineError``; this module is the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from grm.sampling.base import Sampler
from grm.serving.errors import EngineError
from grm.serving.groups import GroupWindow
from grm.serving.metrics import Metrics
from grm.serving.query_principles import QueryPrinciples
from grm.serving.scoring import Job, MetaScorer, ScoreSettings, Unit, finish_jobs, make_item, sample_units
from grm.serving.serve_config import DEFAULTS

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Entry:
    job: Job
    future: asyncio.Future
    arrived: float
    key: str
    waiters: int = 1
    counted: bool = True  # its untaken generations are in ``Engine._queued``


@dataclass(frozen=True)
class EngineSettings:
    """Throughput and back-pressure knobs (CLI flags of ``grm serve``)."""

    max_batch_size: int = DEFAULTS["max_batch_size"]  # generations per sampler cycle
    max_wait_ms: float = DEFAULTS["max_wait_ms"]  # how long the first request of an idle engine waits for company
    batching: bool = DEFAULTS["batching"]
    max_pending_samples: int = DEFAULTS["max_pending_samples"]  # queued generations before requests wait
    cache_size: int = DEFAULTS["cache_size"]  # cached results (0 = off)
    request_timeout_s: float = DEFAULTS["request_timeout_s"]  # 504 after this long
    group_window_ms: float = DEFAULTS["group_window_ms"]  # group mode window (0 = off)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size={self.max_batch_size}: must be >= 1")
        if self.max_wait_ms < 0 or self.group_window_ms < 0:
            raise ValueError("max_wait_ms and group_window_ms must be >= 0")
        if self.max_pending_samples < 1 or self.cache_size < 0 or self.request_timeout_s <= 0:
            raise ValueError("max_pending_samples >= 1, cache_size >= 0 and request_timeout_s > 0 are required")


class Engine:
    """Schedules scoring jobs onto one sampler thread (see the module doc)."""

    def __init__(
        self,
        sampler: Sampler,
        *,
        template: str,
        meta: MetaScorer | None = None,
        settings: EngineSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.sampler = sampler
        self.template = template
        self.meta = meta
        self.settings = settings or EngineSettings()
        self.metrics = metrics or Metrics()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="grm-sampler")
        self._entries: list[_Entry] = []
        self._inflight: dict[str, _Entry] = {}
        self._cache: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self.groups = GroupWindow(self.score, self.settings.group_window_ms / 1000, self.metrics)
        self._wake: asyncio.Event | None = None
        self._freed: asyncio.Event | None = None  # set after every cycle (queued requests re-check for room)
        self._task: asyncio.Task | None = None
        self._rate = 0.0  # EWMA generations per second
        self._queued = 0  # untaken generations of the live entries, kept as they change: admission reads it per
        # request, and summing over 1,536 queued requests per admission was O(n^2) on the event loop
        self._stopping = False
        wait_s, timeout_s = self.settings.max_wait_ms / 1000, self.settings.request_timeout_s
        generate = lambda *args: self.sampler.generate(*args)  # noqa: E731 - read late: a stand-in sampler may lack it
        self.principles = QueryPrinciples(self.run_sync, generate, template, self.metrics, wait_s, timeout_s)
        self.metrics.gauges["grm_queue_samples"] = lambda: float(self.pending_samples)
        self.metrics.gauges["grm_queue_requests"] = lambda: float(len(self._entries))

    # ----- lifecycle -----

    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._freed = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name="grm-engine")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for entry in self._entries:
            if not entry.future.done():
                entry.future.set_exception(EngineError("The server is shutting down; retry.", 503, 1))
                entry.future.exception()  # retrieved: its callers may have left (no "never retrieved" noise)
        self._entries.clear()
        self._queued = 0
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def pending_samples(self) -> int:
        """Generations queued and not yet taken by a cycle (requests whose callers all left excluded); O(1)."""
        return self._queued

    def _uncount(self, entry: _Entry) -> None:
        """``entry`` leaves the queue (cancelled, or answered with units left): its untaken generations go."""
        if entry.counted:
            entry.counted = False
            self._queued -= entry.job.remaining_samples

    async def run_sync(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the sampler thread (``/v1/completions``), between cycles."""
        if self._stopping:
            raise EngineError("The server is shutting down; retry.", 503, 1)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # ----- scoring -----

    def _retry_after(self, extra: int) -> int:
        rate = self._rate or 1.0
        return max(1, math.ceil((self.pending_samples + extra) / rate))

    async def score(
        self, items: list[tuple[Any, ...]], ids: list[str | None], settings: ScoreSettings
    ) -> list[dict[str, Any]]:
        """Score items (``(query, responses)`` or ``(query, responses, principles)``) and return one result dict
        per item, ids echoed.

        Raises:
            EngineError: back-pressure (429), shutdown (503), timeout (504) or a sampler failure.
        """
        if self._stopping or self._task is None:
            raise EngineError("The server is not running; retry later.", 503, 1)
        items = [(it[0], it[1], it[2] if len(it) > 2 else None) for it in items]
        if settings.principle_mode == "query_only":
            todo = [q for q, _, p in items if p is None]
            generated = iter(await asyncio.gather(*(self.principles.get(q, settings) for q in todo)))
            items = [(q, r, p if p is not None else next(generated)) for q, r, p in items]
        key = json.dumps([items, settings.__dict__], ensure_ascii=False, sort_keys=True)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self._hit()
            return _with_ids(cached, ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.request_timeout_s
        entry = self._inflight.get(key)
        if entry is None:
            given = [p for _, _, p in items]
            job = Job(
                [make_item(q, r) for q, r, _ in items],
                [None] * len(items),
                settings,
                self.template,
                principles=given if any(p is not None for p in given) else None,
            )
            await self._wait_for_room(job.samples, deadline)
            entry = self._inflight.get(key)  # an identical request may have been admitted meanwhile
        if entry is None:
            entry = _Entry(job, loop.create_future(), time.monotonic(), key)
            self._entries.append(entry)
            self._queued += job.samples
            self._inflight[key] = entry
            assert self._wake is not None
            self._wake.set()
        else:
            entry.waiters += 1
        try:
            results = await asyncio.wait_for(asyncio.shield(entry.future), max(deadline - loop.time(), 0.001))
        except TimeoutError:
            self._release(entry)
            self.metrics.count("rejected", "504")
            raise EngineError(
                f"Scoring took longer than the server's request timeout ({self.settings.request_timeout_s:g} s).", 504
            ) from None
        except asyncio.CancelledError:  # the client left (``routes.state.until_disconnect``)
            self._release(entry)
            raise
        return _with_ids(results, ids)

    def _release(self, entry: _Entry) -> None:
        """One caller of ``entry`` gave up; with none left its queued units are dropped."""
        entry.waiters -= 1
        if entry.waiters <= 0:
            self._uncount(entry)
            entry.job.cancelled = True
            self._inflight.pop(entry.key, None)
            self._freed_set()

    def _freed_set(self) -> None:
        if self._freed is not None:
            self._freed.set()

    async def _wait_for_room(self, samples: int, deadline: float) -> None:
        """Queue the request until ``max_pending_samples`` has room for it (a request larger than the limit waits
        for an empty queue), within the request's deadline; 429 with ``Retry-After`` only past it. Clients that
        retry on a fixed schedule and ignore ``Retry-After`` (OpenRLHF: 5 tries 1 s apart) are served instead of
        refused."""
        loop = asyncio.get_running_loop()
        limit = self.settings.max_pending_samples
        while self.pending_samples and self.pending_samples + samples > limit:
            remaining = deadline - loop.time()
            if remaining <= 0:
                self.metrics.count("rejected", "429")
                raise EngineError(
                    f"The server is busy ({self.pending_samples} generations queued past the request timeout); "
                    "retry later.",
                    429,
                    self._retry_after(samples),
                )
            assert self._freed is not None
            self._freed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._freed.wait(), remaining)
        if self._stopping:
            raise EngineError("The server is shutting down; retry.", 503, 1)

    def _hit(self) -> None:
        with self.metrics._lock:
            self.metrics.cache_hits += 1

    def _store(self, key: str, results: list[dict[str, Any]]) -> None:
        if self.settings.cache_size <= 0:
            return
        self._cache[key] = results
        self._cache.move_to_end(key)
        while len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)

    async def score_in_group(self, query: Any, response: str, sample_id: str | None, *args: Any, **kw: Any) -> dict:
        """One response of a group (``grm.serving.groups.GroupWindow.score``)."""
        return await self.groups.score(query, response, sample_id, *args, **kw)

    async def query_principles(self, query: Any, settings: ScoreSettings) -> str | None:
        """Query-only principles (``grm.serving.query_principles.QueryPrinciples.get``)."""
        return await self.principles.get(query, settings)

    # ----- the scheduler -----

    def _take(self) -> list[Unit]:
        active = [e for e in self._entries if not e.job.cancelled and e.job.next_unit < len(e.job.units)]
        if not active:
            return []
        if not self.settings.batching:
            job = active[0].job
            units = job.units[job.next_unit :]
            job.next_unit = len(job.units)
            self._queued -= sum(u.count for u in units)
            return units
        budget = self.settings.max_batch_size
        units: list[Unit] = []
        progressed = True
        while budget > 0 and progressed:
            progressed = False
            for entry in active:
                job = entry.job
                if job.next_unit >= len(job.units) or budget <= 0:
                    continue
                unit = job.units[job.next_unit]
                if units and unit.count > budget:
                    continue
                units.append(unit)
                job.next_unit += 1
                budget -= unit.count
                self._queued -= unit.count
                progressed = True
        return units

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            live = []
            for e in self._entries:
                if e.future.done() or e.job.cancelled:
                    self._uncount(e)  # answered with units left (a failed job), or its callers left
                else:
                    live.append(e)
            self._entries = live
            if not any(e.job.next_unit < len(e.job.units) for e in self._entries):
                self._wake.clear()
                await self._wake.wait()
                continue
            if self.settings.batching and self.settings.max_wait_ms > 0:
                oldest = min(e.arrived for e in self._entries)
                deadline = oldest + self.settings.max_wait_ms / 1000
                while self.pending_samples < self.settings.max_batch_size and time.monotonic() < deadline:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), deadline - time.monotonic())
                    except TimeoutError:
                        break
            units = self._take()
            if not units:
                continue
            start = time.monotonic()
            try:
                outcome = await loop.run_in_executor(self._executor, self._cycle, units)
            except Exception as exc:  # the executor itself failed (shutdown)
                log.exception("sampler cycle failed")
                outcome = {u.job: exc for u in units}
            elapsed = max(time.monotonic() - start, 1e-6)
            done = sum(u.count for u in units)
            self._rate = done / elapsed if not self._rate else 0.8 * self._rate + 0.2 * done / elapsed
            for entry in list(self._entries):
                if entry.job in outcome:
                    self._resolve(entry, outcome[entry.job])
            self._freed_set()

    def _resolve(self, entry: _Entry, result: list[dict[str, Any]] | Exception) -> None:
        self._inflight.pop(entry.key, None)
        if entry.future.done():
            return
        if isinstance(result, Exception):
            if isinstance(result, ValueError):  # the sampler could not read the rendered prompt: not retryable
                msg = "The sampler rejected this request's prompt (check `query`, `responses` and the server's "
                msg += f"--template): {type(result).__name__}: {result}"
                err = EngineError(msg, 400, param="query")
            else:
                err = EngineError(f"Scoring failed: {type(result).__name__}: {result}", 500)
            entry.future.set_exception(err)
        else:
            self._store(entry.key, result)
            entry.future.set_result(result)

    def _cycle(self, units: list[Unit]) -> dict[Job, list[dict[str, Any]] | Exception]:
        """Sample ``units`` (sampler thread); return the results of the jobs that finished, or their errors. A
        failing combined call is retried per job so that one bad request does not fail the others."""
        jobs = list(dict.fromkeys(u.job for u in units))
        self.metrics.batch(sum(u.count for u in units), len(jobs))
        outcome: dict[Job, list[dict[str, Any]] | Exception] = {}
        try:
            sample_units(self.sampler, units)
        except Exception as exc:
            if len(jobs) == 1:
                outcome[jobs[0]] = exc
            else:
                for job in jobs:
                    try:
                        sample_units(self.sampler, [u for u in units if u.job is job])
                    except Exception as job_exc:
                        outcome[job] = job_exc
        finished = [j for j in jobs if j not in outcome and j.done_sampling and not j.cancelled]
        for job in finished:  # per job: a meta-RM failure on one input must not fail the others
            try:
                (results,) = finish_jobs([job], self.meta)
            except Exception as exc:
                outcome[job] = exc
                continue
            failed = sum(r["parse_failures"]["count"] for r in results)
            self.metrics.parsed(job.samples, failed)
            outcome[job] = results
        return outcome


def _with_ids(results: list[dict[str, Any]], ids: list[str | None]) -> list[dict[str, Any]]:
    return [{**r, "id": i} for r, i in zip(results, ids, strict=True)]
