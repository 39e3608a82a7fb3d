"""Where sampling runs: in this process (``local``) or on Ray actors (``ray``), with identical results.

A ``ShardedSampler`` cuts every ``generate`` call into fixed shards of ``shard_size`` distinct prompts (in call
order) and gives each shard a seed fixed by the call's seed and the shard's position. The shards and their seeds
are the same whatever runs them, so the executor only decides *where* a shard is sampled:

- ``LocalExecutor``: one sampler in this process, shard after shard;
- ``RayExecutor``: ``workers`` Ray actors, each holding one sampler built from a picklable ``SamplerSpec``
  (model folder, ``world-teacher``, ``http(s)://``, ``vllm:PATH``); shards go to free actors and come back in
  order. A killed actor is restarted and its shard retried (``max_restarts`` / ``max_task_retries``); a shard
  that still fails fails the call, so the stage publishes nothing (the stage store builds in a temporary folder).

Samplers seeded per prompt (the world teacher: ``(seed, prompt, sample)``) get the call's seed for every shard,
so their samples do not even depend on ``shard_size``. Ray is imported only here, and only for ``executor: ray``.

The run's executor is a context value (``using(runtime)`` around a stage build, ``current()`` where samplers are
made): it is not part of any stage key because it cannot change a result.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from grm.method.voting import derive_seed
from grm.sampling.base import Sampler
from grm.sampling.spec import is_world_teacher

log = logging.getLogger(__name__)
_INIT_LOCK = threading.Lock()


@dataclass(frozen=True)
class SamplerSpec:
    """A picklable recipe for a sampler: ``grm.sampling.build_sampler(spec, **options)`` on whichever process, or
    ``factory`` (``"package.module:callable"``, called with ``options``) for a backend of your own."""

    spec: str
    options: dict[str, Any] = field(default_factory=dict)
    factory: str | None = None
    per_prompt: bool | None = None  # None: known from the spec (the world teacher is seeded per prompt)

    @property
    def prompt_seeded(self) -> bool:
        """True when the backend's samples depend only on (seed, prompt, sample index), not on the batch."""
        if self.per_prompt is not None:
            return self.per_prompt
        return is_world_teacher(self.spec)

    def build(self) -> Sampler:
        if self.factory is not None:
            import importlib

            module, _, attr = self.factory.partition(":")
            if not module or not attr:
                raise ValueError(f"sampler factory {self.factory!r}: use 'package.module:callable'")
            return getattr(importlib.import_module(module), attr)(**self.options)
        from grm.sampling import build_sampler

        return build_sampler(self.spec, **self.options)


@dataclass(frozen=True)
class Shard:
    """One unit of work: ``generate(prompts, n, temperature, max_new_tokens, seed)``."""

    index: int
    prompts: tuple[str, ...]
    n: int
    temperature: float
    max_new_tokens: int
    seed: int


def plan_shards(
    prompts: Sequence[str],
    n: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    shard_size: int,
    per_prompt: bool,
) -> list[Shard]:
    """The fixed shards of one call: consecutive runs of ``shard_size`` prompts. Shard 0 keeps the call's seed (a
    call that fits one shard samples exactly as the unsharded sampler); shard ``i > 0`` gets
    ``derive_seed("shard", seed, i)``, or the call's seed for a sampler seeded per prompt (``per_prompt``).

    Example:
        >>> [(s.index, len(s.prompts)) for s in plan_shards(["a", "b", "c"], 1, 0.0, 8, 0, 2, False)]
        [(0, 2), (1, 1)]
    """
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    shards = []
    for i, lo in enumerate(range(0, len(prompts), shard_size)):
        s = seed if per_prompt or i == 0 else derive_seed("shard", seed, i)
        shards.append(Shard(i, tuple(prompts[lo : lo + shard_size]), n, temperature, max_new_tokens, s))
    return shards


def run_shard(sampler: Sampler, shard: Shard) -> list[list[str]]:
    """Sample one shard (the same call on every executor)."""
    return sampler.generate(list(shard.prompts), shard.n, shard.temperature, shard.max_new_tokens, shard.seed)


def local_runtime_env() -> dict[str, Any]:
    """The ``ray.init(runtime_env=...)`` of a local Ray: its workers import the ``grm`` this process imported (and
    the project root above it, for ``tasks`` and ``tests``), not whatever copy the environment has installed."""
    src = Path(__file__).resolve().parents[1]
    parts = [str(src), str(src.parent), os.environ.get("PYTHONPATH"), os.getcwd()]
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in parts if p)}}


class Executor(Protocol):
    """Runs shards of one sampler spec; results in shard order."""

    name: str

    def map_shards(self, spec: SamplerSpec, shards: Sequence[Shard]) -> list[list[list[str]]]: ...

    def sampler(self, spec: SamplerSpec) -> Sampler | None: ...

    def close(self) -> None: ...


class LocalExecutor:
    """Every shard in this process, on one sampler per spec (built once, reused by every call)."""

    name = "local"

    def __init__(self) -> None:
        self._samplers: dict[SamplerSpec | int, Sampler] = {}

    def sampler(self, spec: SamplerSpec) -> Sampler:
        key = _spec_key(spec)
        if key not in self._samplers:
            self._samplers[key] = spec.build()
        return self._samplers[key]

    def map_shards(self, spec: SamplerSpec, shards: Sequence[Shard]) -> list[list[list[str]]]:
        sampler = self.sampler(spec)
        return [run_shard(sampler, s) for s in shards]

    def close(self) -> None:
        self._samplers.clear()


def _spec_key(spec: SamplerSpec) -> tuple[str, str, str | None]:
    return spec.spec, repr(sorted(spec.options.items())), spec.factory


@dataclass
class ShardTiming:
    """What one shard cost on a Ray actor (filled by ``RayExecutor``; ``bench/scaleout.py`` reads it)."""

    index: int
    worker_pid: int
    sample_s: float  # time inside the actor's generate
    round_trip_s: float  # submit -> result in the driver (includes serialisation and scheduling)


class RayExecutor:
    """Shards on ``workers`` Ray actors per sampler spec, each actor holding one sampler.

    Args:
        address: None starts a local Ray (stopped by ``close``); ``auto`` / ``ray://HOST:10001`` joins a cluster.
        workers: actors per sampler spec.
        num_cpus / num_gpus: resources Ray reserves for each actor. Torch threads follow the spec's options
            (``sampling.num_threads``), as in the local executor: the same thread count keeps float sums identical.
        max_retries: restarts of a dead actor and retries of its in-flight shard.
        init_kwargs: extra ``ray.init`` arguments (tests: ``num_cpus``, ``include_dashboard``).
        shutdown: ``close`` also stops a Ray this executor started (False: keep it for the next stage of the run;
            Ray stops it at interpreter exit).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        workers: int = 2,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_retries: int = 3,
        init_kwargs: dict[str, Any] | None = None,
        shutdown: bool = True,
    ) -> None:
        if workers < 1:
            raise ValueError(f"runtime.workers must be >= 1, got {workers}")
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.init_kwargs = dict(init_kwargs or {})
        self.shutdown = shutdown
        self.timings: list[ShardTiming] = []
        self._pools: dict[Any, list[Any]] = {}
        self._started = False
        self._ray: Any = None

    # ---- lifecycle ----
    def _init(self) -> Any:
        if self._ray is not None:
            return self._ray
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("runtime.executor=ray needs Ray: pip install 'grm[ray]'") from exc
        with _INIT_LOCK:  # concurrent Prefect tasks of one run share one Ray
            self._init_locked(ray)
        self._ray = ray
        return ray

    def _init_locked(self, ray: Any) -> None:
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
            kwargs.update(self.init_kwargs)
            if self.address is None:  # workers of a local Ray import this checkout (a cluster has grm installed)
                kwargs.setdefault("runtime_env", local_runtime_env())
                kwargs.setdefault("num_cpus", max(1, int(self.workers * self.num_cpus)))
                ray.init(address="local", **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
            self._started = True

    def close(self) -> None:
        """Kill this executor's actors; stop the Ray it started."""
        if self._ray is None:
            return
        for pool in self._pools.values():
            for actor in pool:
                with contextlib.suppress(Exception):
                    self._ray.kill(actor)
        self._pools.clear()
        if self._started and self.shutdown:
            self._ray.shutdown()
        self._started = False
        self._ray = None

    # ---- work ----
    def pool(self, spec: SamplerSpec) -> list[Any]:
        """The actors of ``spec`` (created on first use)."""
        ray = self._init()
        key = _spec_key(spec)
        if key not in self._pools:
            self._check_resources(ray)
            actor_cls = ray.remote(_SamplerActor).options(
                num_cpus=self.num_cpus,
                num_gpus=self.num_gpus,
                max_restarts=self.max_retries,
                max_task_retries=self.max_retries,
            )
            self._pools[key] = [actor_cls.remote(spec) for _ in range(self.workers)]
        return self._pools[key]

    def _check_resources(self, ray: Any) -> None:
        """Fail clearly, instead of waiting forever for actors that can never be placed."""
        total = ray.cluster_resources()
        for name, per, key in (("CPU", self.num_cpus, "num_cpus"), ("GPU", self.num_gpus, "num_gpus")):
            need = per * self.workers
            if need > total.get(name, 0.0) + 1e-9:
                raise ValueError(
                    f"runtime.workers={self.workers} x runtime.{key}={per} needs {need:g} {name}s; the Ray cluster has "
                    f"{total.get(name, 0.0):g}: lower runtime.workers or runtime.{key}, or add nodes (ray start)"
                )

    def sampler(self, spec: SamplerSpec) -> Sampler | None:
        return None  # the samplers live on the actors

    def map_shards(self, spec: SamplerSpec, shards: Sequence[Shard]) -> list[list[list[str]]]:
        ray = self._init()
        actors = self.pool(spec)
        results: list[list[list[str]] | None] = [None] * len(shards)
        pending: dict[Any, tuple[int, int, float]] = {}  # ref -> (shard position, actor index, submit time)
        todo = list(range(len(shards)))
        free = list(range(len(actors)))
        while todo or pending:
            while todo and free:
                pos, a = todo.pop(0), free.pop(0)
                pending[actors[a].run.remote(shards[pos])] = (pos, a, time.perf_counter())
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pos, a, t0 = pending.pop(ref)
                try:
                    texts, pid, sample_s = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    raise RuntimeError(
                        f"shard {shards[pos].index} ({len(shards[pos].prompts)} prompts) failed on a Ray worker "
                        f"after {self.max_retries} retries (runtime.max_retries): {exc}"
                    ) from exc
                results[pos] = texts
                self.timings.append(ShardTiming(shards[pos].index, pid, sample_s, time.perf_counter() - t0))
                free.append(a)
        return [r for r in results if r is not None]

    def worker_pids(self, spec: SamplerSpec) -> list[int]:
        """Process ids of the actors of ``spec`` (tests kill one; the benchmark reads their memory)."""
        ray = self._init()
        return list(ray.get([a.pid.remote() for a in self.pool(spec)]))

    def worker_rss_mb(self, spec: SamplerSpec) -> list[float]:
        """Resident memory of each actor of ``spec`` in MiB."""
        ray = self._init()
        return list(ray.get([a.rss_mb.remote() for a in self.pool(spec)]))


class _SamplerActor:
    """A Ray actor holding one sampler (``ray.remote`` is applied in ``RayExecutor.pool``)."""

    def __init__(self, spec: SamplerSpec) -> None:
        self.sampler = spec.build()

    def run(self, shard: Shard) -> tuple[list[list[str]], int, float]:
        t0 = time.perf_counter()
        texts = run_shard(self.sampler, shard)
        return texts, os.getpid(), time.perf_counter() - t0

    def pid(self) -> int:
        return os.getpid()

    def rss_mb(self) -> float:
        with open(f"/proc/{os.getpid()}/status", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")


class ShardedSampler:
    """A ``Sampler`` that samples fixed shards of every call on an executor (see the module docstring).

    ``check_items`` (the world teacher's input check) runs on a local instance; other attributes of the backend
    (``stats``, ``tokenizer``) are available with the local executor only.
    """

    def __init__(self, spec: SamplerSpec, shard_size: int, executor: Executor) -> None:
        if shard_size < 1:
            raise ValueError(f"sampling.shard_size must be >= 1, got {shard_size}")
        self.spec = spec
        self.shard_size = shard_size
        self.executor = executor

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        shards = plan_shards(prompts, n, temperature, max_new_tokens, seed, self.shard_size, self.spec.prompt_seeded)
        out: list[list[str]] = []
        for texts in self.executor.map_shards(self.spec, shards):
            out.extend(texts)
        if len(out) != len(prompts):
            raise RuntimeError(f"{self.executor.name} executor returned {len(out)} outputs for {len(prompts)} prompts")
        return out

    def check_items(self, items: Sequence[Any], template: str) -> None:
        if self.spec.prompt_seeded:  # the world teacher: cheap to build here
            local = self.executor.sampler(self.spec) or self.spec.build()
            local.check_items(items, template)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("spec", "shard_size", "executor"):
            raise AttributeError(name)
        local = self.executor.sampler(self.spec)
        if local is None:
            raise AttributeError(f"{name}: not available on a sampler that runs on the {self.executor.name} executor")
        return getattr(local, name)


# ---- the run's executor -----------------------------------------------------------------------------------------
_CURRENT: contextvars.ContextVar[Executor | None] = contextvars.ContextVar("grm_executor", default=None)


def current() -> Executor | None:
    """The executor of the enclosing ``using`` block (None: build samplers directly, as before)."""
    return _CURRENT.get()


def from_runtime(runtime: Any, shutdown: bool = True) -> Executor:
    """The executor a ``RuntimeConfig`` asks for (``shutdown``: see ``RayExecutor``)."""
    if runtime.executor == "local":
        return LocalExecutor()
    if runtime.executor == "ray":
        r = runtime
        return RayExecutor(r.ray_address, r.workers, r.num_cpus, r.num_gpus, r.max_retries, shutdown=shutdown)
    raise ValueError(f"runtime.executor={runtime.executor!r}: use local or ray")


@contextlib.contextmanager
def using(executor: Executor | Any, shutdown: bool = True) -> Iterator[Executor]:
    """Make ``executor`` (or the executor of a ``RuntimeConfig``) the current one; close it at the end (its actors;
    with ``shutdown`` also a Ray it started)."""
    ex = executor if hasattr(executor, "map_shards") else from_runtime(executor, shutdown)
    token = _CURRENT.set(ex)
    try:
        yield ex
    finally:
        _CURRENT.reset(token)
        ex.close()


def make_sampler(spec: str, options: dict[str, Any], shard_size: int) -> ShardedSampler:
    """The sampler for ``spec``, sharded on the current executor (none: a local executor of its own, so a sampler
    made outside a stage samples exactly as one made inside)."""
    ex = current()
    return ShardedSampler(SamplerSpec(spec, dict(options)), shard_size, ex if ex is not None else LocalExecutor())
