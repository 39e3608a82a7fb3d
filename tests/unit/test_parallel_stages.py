"""Running stages at once: the CPU pool splits the cores, the thread cap, the ledger under overlapping stages, and
the flow's choice of how many builds may run together."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

from grm import threads
from grm.config import PipelineConfig, from_dict
from tasks.engine import timings, workers
from tasks.engine.runtime import parallel_stages


def _run_together(pool: workers.CpuPool, n: int, hold_s: float = 0.2) -> list[int]:
    """``n`` stages started together; each becomes ready at once but reaches its build a little later (as a stage
    task plans its key and opens its MLflow run first), the later ones later."""
    got: list[int] = []
    lock = threading.Lock()

    def build(i: int) -> None:
        with pool.expected():
            time.sleep(0.05 * i)
            with pool.slot(f"b{i}") as granted:
                with lock:
                    got.append(granted)
                time.sleep(hold_s)

    ts = [threading.Thread(target=build, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return got


def test_a_build_alone_gets_every_core() -> None:
    assert _run_together(workers.CpuPool(cores=2, max_builds=2, settle_s=0.05), 1) == [2]


def test_builds_ready_together_split_the_cores() -> None:
    assert _run_together(workers.CpuPool(cores=2, max_builds=2, settle_s=0.1), 2) == [1, 1]


def test_a_reused_stage_withdraws_its_readiness() -> None:
    pool = workers.CpuPool(cores=2, max_builds=2, settle_s=0.0)
    with pool.expected():
        pass  # the stage was found completed: no build
    assert pool._ready == 0
    with pool.slot("alone") as granted:
        assert granted == 2


def test_no_more_builds_than_slots_run_at_once() -> None:
    pool = workers.CpuPool(cores=4, max_builds=2, settle_s=0.05)
    running, peak, lock = [0], [0], threading.Lock()

    def build() -> None:
        with pool.slot("b"):
            with lock:
                running[0] += 1
                peak[0] = max(peak[0], running[0])
            time.sleep(0.1)
            with lock:
                running[0] -= 1

    ts = [threading.Thread(target=build) for _ in range(5)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert peak[0] == 2
    assert pool._used == 0 and pool._running == 0 and pool._ready == 0  # everything handed back


def test_one_slot_runs_builds_one_after_another_on_every_core() -> None:
    assert _run_together(workers.CpuPool(cores=2, max_builds=1, settle_s=0.0), 3, hold_s=0.05) == [2, 2, 2]


def test_pool_rejects_zero_cores_or_slots() -> None:
    with pytest.raises(ValueError, match="both must be >= 1"):
        workers.CpuPool(cores=0, max_builds=1)


def test_thread_cap_bounds_what_stage_code_asks_for() -> None:
    import torch

    before = torch.get_num_threads()
    try:
        threads.set_cap(1)
        assert threads.set_torch_threads(2) == 1 and torch.get_num_threads() == 1
        threads.set_cap(None)
        assert threads.set_torch_threads(before) == before
    finally:
        threads.set_cap(None)
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="thread cap 0"):
        threads.set_cap(0)


def test_parallel_stages_is_capped_at_the_cores_and_one_with_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers, "cpu_count", lambda: 2)
    assert parallel_stages(from_dict(PipelineConfig, {"runtime": {"parallel_stages": 8}})) == 2
    assert parallel_stages(from_dict(PipelineConfig, {"runtime": {"parallel_stages": 1}})) == 1
    assert parallel_stages(PipelineConfig()) == 2  # the default: two builds at once on the 2-core machine
    cfg = PipelineConfig()
    object.__setattr__(cfg.runtime, "executor", "ray")  # skips the Ray install check of __post_init__
    assert parallel_stages(cfg) == 1


def test_parallel_stages_must_be_positive() -> None:
    with pytest.raises(ValueError, match="runtime.parallel_stages"):
        from_dict(PipelineConfig, {"runtime": {"parallel_stages": 0}})


def test_ledger_charges_overlapping_stages_once_to_the_wall_and_takes_waits_off_compute() -> None:
    led = timings.Ledger()
    led.add("rft.train", "compute", 10.0, (0.0, 10.0))
    led.add("rft.train_unfiltered", "compute", 12.0, (1.0, 13.0))  # beside rft.train
    led.add_wait("rft.train_unfiltered", 1.0)  # of which it waited 1 s for a slot
    report = led.report(total_seconds=14.0)
    assert report.stages["rft.train_unfiltered"]["compute"] == pytest.approx(11.0)
    assert report.busy_seconds == pytest.approx(13.0)
    assert report.stages["flow"]["orchestration"] == pytest.approx(1.0)  # the wall time no stage covered
    table = report.table()
    assert "stages ran at once: 22.00 s of stage time in 14.00 s of wall time" in table
    assert "share" in table.splitlines()[0]
    assert report.metrics()["bench/rft.train_unfiltered/wait_s"] == 1.0
    assert report.metrics()["bench/stage_s"] == pytest.approx(22.0)


def test_union_seconds_merges_overlaps() -> None:
    assert timings.union_seconds([(0, 2), (1, 3), (5, 6), (5.5, 5.8)]) == pytest.approx(4.0)
    assert timings.union_seconds([]) == 0.0


def test_in_process_builds_all_run_on_one_thread_with_the_callers_context() -> None:
    build_thread = workers.BuildThread()
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[tuple[int, str]] = []
    lock = threading.Lock()

    def build(tag: str) -> str:
        with lock:
            seen.append((threading.get_ident(), var.get()))
        return tag.upper()

    def caller(tag: str) -> None:
        var.set(tag)  # a Prefect task thread's run context travels the same way
        assert build_thread.run(build, tag) == tag.upper()

    callers = [threading.Thread(target=caller, args=(t,)) for t in ("a", "b", "c")]
    for t in callers:
        t.start()
    for t in callers:
        t.join()
    caller("main")
    assert len({ident for ident, _ in seen}) == 1  # one thread for every caller
    assert seen[0][0] not in {threading.get_ident(), *(t.ident for t in callers)}
    assert sorted(v for _, v in seen) == ["a", "b", "c", "main"]


def test_the_build_thread_hands_back_exceptions_and_runs_nested_calls_directly() -> None:
    build_thread = workers.BuildThread()

    def fails() -> None:
        raise KeyboardInterrupt  # BaseException too: an interrupted build stops the flow

    with pytest.raises(KeyboardInterrupt):
        build_thread.run(fails)

    def outer() -> tuple[int, int]:
        return threading.get_ident(), build_thread.run(threading.get_ident)  # would deadlock if queued

    outer_ident, inner_ident = build_thread.run(outer)
    assert outer_ident == inner_ident != threading.get_ident()
    assert build_thread.run(lambda: 7) == 7  # still serving after a failed build
