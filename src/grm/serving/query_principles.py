"""``principle_mode: query_only``: principles generated from the query alone (``grm.method.prompts.render_principles_prompt``,
one sample at the request's temperature, seed and token budget), once per (query, settings): concurrent requests
share one generation and one sampler call, later ones a bounded cache (``PRINCIPLES_CACHE`` entries). A generation
with no principles in it gives None (the judge writes its own). The engine owns one ``QueryPrinciples``."""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from grm.method import prompts
from grm.serving.errors import EngineError
from grm.serving.metrics import Metrics
from grm.serving.scoring import ScoreSettings

PRINCIPLES_CACHE = 4096  # query_only principles kept (independent of --cache-size: the mode needs them)


class QueryPrinciples:
    """Generates, shares and caches query-only principles. ``run_sync(fn, *args)`` runs ``fn`` on the sampler
    thread; ``generate`` is the sampler's ``generate``; ``wait_s`` the pause that lets a burst share one call;
    ``timeout_s`` a request's deadline."""

    def __init__(
        self,
        run_sync: Callable[..., Awaitable[Any]],
        generate: Callable[..., Any],
        template: str,
        metrics: Metrics,
        wait_s: float,
        timeout_s: float,
    ) -> None:
        self.run_sync = run_sync
        self.generate = generate
        self.template = template
        self.metrics = metrics
        self.wait_s = wait_s
        self.timeout_s = timeout_s
        self.cache: OrderedDict[str, str | None] = OrderedDict()  # (query, settings) -> text
        self.pending: dict[str, asyncio.Future] = {}
        self.queue: list[tuple[str, Any, ScoreSettings]] = []
        self.flush_task: asyncio.Future | None = None

    async def get(self, query: Any, settings: ScoreSettings) -> str | None:
        """Principles for ``query`` from the query alone (``query_only``), generated once per (query, temperature,
        seed, token budget): from the cache, from a generation in flight, or queued for the next principles call."""
        key = json.dumps([query, settings.temperature, settings.seed, settings.max_new_tokens], ensure_ascii=False)
        if key in self.cache:
            self.cache.move_to_end(key)
            self.metrics.count("principles", "cached")
            return self.cache[key]
        future = self.pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self.pending[key] = future
            self.queue.append((key, query, settings))
            if self.flush_task is None or self.flush_task.done():
                self.flush_task = asyncio.ensure_future(self._flush())
        else:
            self.metrics.count("principles", "cached")
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.timeout_s)
        except TimeoutError:
            self.metrics.count("rejected", "504")
            raise EngineError(
                f"Generating principles took longer than the request timeout ({self.timeout_s:g} s).",
                504,
            ) from None

    async def _flush(self) -> None:
        """Generate every queued principles prompt: one sampler call per (temperature, budget, seed) on the sampler
        thread (after a ``max_wait_ms`` pause so that a burst of requests shares the call)."""
        await asyncio.sleep(self.wait_s)
        while self.queue:
            queue, self.queue = self.queue, []
            calls: dict[tuple[float, int, int], list[tuple[str, Any]]] = {}
            for key, query, s in queue:
                calls.setdefault((s.temperature, s.max_new_tokens, s.seed), []).append((key, query))
            for (temperature, max_new, seed), todo in calls.items():
                error: EngineError | None = None
                texts: list[str | None] = []
                try:
                    outputs = await self.run_sync(
                        self.generate,
                        [prompts.render_principles_prompt(q, template=self.template) for _, q in todo],
                        1,
                        temperature,
                        max_new,
                        seed,
                    )
                    texts = [prompts.extract_principles(out[0]) for out in outputs]
                except EngineError as exc:
                    error = exc
                except ValueError as exc:  # the sampler could not read the prompt: the request's fault
                    error = EngineError(f"The sampler rejected the principles prompt: {exc}", 400, param="query")
                except Exception as exc:
                    error = EngineError(f"Generating principles failed: {type(exc).__name__}: {exc}", 500)
                for i, (key, _) in enumerate(todo):
                    future = self.pending.pop(key)
                    if error is not None:
                        future.set_exception(error)
                        future.exception()  # retrieved: its callers may have left
                        continue
                    self.metrics.count("principles", "generated")
                    self.cache[key] = texts[i]
                    while len(self.cache) > PRINCIPLES_CACHE:
                        self.cache.popitem(last=False)
                    future.set_result(texts[i])
