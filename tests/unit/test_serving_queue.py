"""The engine's queue count (``Engine.pending_samples``, read by admission for every request) follows the queue
through admission, cycles, a caller leaving and a failed job, and fills cycles from a deep queue."""

from __future__ import annotations

import asyncio
import threading

from grm.serving.engine import Engine, EngineSettings
from grm.serving.errors import EngineError
from grm.serving.scoring import ScoreSettings

SETTINGS = ScoreSettings(4, None, 1.0, 0, 8)


class GatedSampler:
    """Blocks every call until ``gate`` is set; fails prompts that contain ``BAD``."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[int] = []

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        self.gate.wait(10)
        if any("BAD" in p for p in prompts):
            raise RuntimeError("boom")
        self.calls.append(len(prompts) * n)
        return [[f"Scores: \\boxed{{{5 + j % 3}}}" for j in range(n)] for p in prompts]


def _brute(engine: Engine) -> int:
    return sum(e.job.remaining_samples for e in engine._entries if not e.job.cancelled and not e.future.done())


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


def test_pending_samples_follows_admission_cycles_leaving_and_failures():
    async def scenario() -> None:
        sampler = GatedSampler()
        engine = Engine(sampler, template="compact", settings=EngineSettings(max_batch_size=4, max_wait_ms=0))
        await engine.start()
        try:
            tasks = [asyncio.ensure_future(engine.score([(f"{i} + 1 ?", ["a"])], [None], SETTINGS)) for i in range(5)]
            await _settle()
            assert engine.pending_samples == 16 == _brute(engine)  # 20 admitted, 4 taken by the blocked cycle
            tasks[3].cancel()  # its caller leaves: its 4 queued generations go at once
            await _settle()
            assert engine.pending_samples == 12 == _brute(engine)
            # a two-response item at k = 8: 8 units of one sample; its first cycle takes 4 and fails, 4 are left
            bad_settings = ScoreSettings(8, None, 1.0, 0, 8)
            bad = asyncio.ensure_future(engine.score([("BAD ?", ["x", "y"])], [None], bad_settings))
            await _settle()
            assert engine.pending_samples == 20 == _brute(engine)
            sampler.gate.set()
            done = await asyncio.gather(*tasks, bad, return_exceptions=True)
            assert isinstance(done[3], asyncio.CancelledError) and isinstance(done[5], EngineError)
            assert all(isinstance(r, list) for i, r in enumerate(done[:5]) if i != 3)
            await _settle()
            assert engine.pending_samples == 0 == _brute(engine)
            # a deep queue fills every cycle to max_batch_size
            sampler.calls.clear()
            sampler.gate.clear()
            many = [asyncio.ensure_future(engine.score([(f"{i} + 2 ?", ["b"])], [None], SETTINGS)) for i in range(6)]
            await _settle()
            sampler.gate.set()
            await asyncio.gather(*many)
            assert sum(sampler.calls) == 24 and max(sampler.calls) == 4
            assert engine.pending_samples == 0
        finally:
            await engine.stop()

    asyncio.run(scenario())


def test_queue_full_waits_for_room_then_serves():
    async def scenario() -> None:
        sampler = GatedSampler()
        settings = EngineSettings(max_batch_size=4, max_wait_ms=0, max_pending_samples=8)
        engine = Engine(sampler, template="compact", settings=settings)
        await engine.start()
        try:
            tasks = [asyncio.ensure_future(engine.score([(f"{i} + 3 ?", ["c"])], [None], SETTINGS)) for i in range(5)]
            await _settle()
            # two admitted (8 = the limit), then the blocked cycle took 4; three wait for room, none refused
            assert engine.pending_samples == 4 == _brute(engine) and len(engine._entries) == 2
            sampler.gate.set()
            assert all(isinstance(r, list) for r in await asyncio.gather(*tasks))
            assert engine.pending_samples == 0
        finally:
            await engine.stop()

    asyncio.run(scenario())
