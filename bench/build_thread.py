"""Benchmark: RFT steps on 2 threads when one thread of the process runs torch kernels vs when a second one does.

Why ``tasks.engine.workers.BuildThread`` exists. Torch's CPU kernels run on OpenMP; libgomp keeps a team of workers for
every thread that ever ran a parallel region, and (most likely the cause) once a process holds more OpenMP threads
than cores it cuts the spinning of idle workers short, so each small kernel pays a wake-up. With ``runtime.parallel_stages: 1`` the flow
used to build stages on its own thread and on Prefect's task threads: every stage after the first ran at about the
1-thread speed. Each case runs in a fresh process on the default recipe's data (``bench/train_speed.py``'s
``build_data``), trains ``--warmup`` steps on 2 threads, then times ``--steps`` more:

* ``one caller``: the timed steps on the thread that did everything before (the main thread);
* ``second caller``: the timed steps on a new thread, after the main thread trained (the old in-process schedule);
* ``build thread``: everything on ``BuildThread``, as the flow now runs its in-process builds (``model.base``
  included), the main thread running no kernel.

Usage::

    PYTHONPATH=src:. .venv/bin/python bench/build_thread.py [--steps 60] [--warmup 20] [--repeats 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

CASES = ("one caller", "second caller", "build thread")


def child(case: str, steps: int, warmup: int) -> float:
    """Seconds for ``steps`` RFT steps on 2 threads in ``case`` (this process)."""
    sys.path[:0] = [str(Path(__file__).parent)]
    logging.disable(logging.INFO)
    from train_speed import build_data

    from grm.training import sft
    from tasks.engine.workers import BuildThread

    def session(second_caller: bool) -> float:
        tmp = Path(tempfile.mkdtemp())
        data = build_data(tmp, Path("configs/default.yaml"), [], 400)

        def timed(n: int, out: str) -> float:
            cfg = replace(data.cfg.rft.train, max_steps=n, num_threads=2, logging_steps=10_000)
            start = time.perf_counter()
            sft.train_sft(data.model_dir, data.sft_examples, tmp / out, cfg)
            return time.perf_counter() - start

        def steps_only() -> float:  # the timed steps without the trainer's set-up, which a warm-up run also pays
            return timed(warmup + steps, "timed") - timed(warmup, "setup")

        timed(warmup, "warm")
        if not second_caller:
            return steps_only()
        got: list[float] = []
        thread = threading.Thread(target=lambda: got.append(steps_only()))
        thread.start()
        thread.join()
        return got[0]

    if case == "build thread":
        return BuildThread().run(session, False)
    return session(case == "second caller")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(f"{child(args.child, args.steps, args.warmup):.4f}")
        return
    print(
        f"{args.steps} RFT steps (batch 64, default recipe), 2 threads, {os.cpu_count()} cores; best of {args.repeats}"
    )
    best: dict[str, float] = {}
    for _ in range(args.repeats):  # interleaved, so a noisy moment hits every case alike
        for case in CASES:
            cmd = [sys.executable, __file__, "--child", case, "--steps", str(args.steps), "--warmup", str(args.warmup)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            best[case] = min(best.get(case, float("inf")), float(out))
    base = best["one caller"]
    print(f"{'case':<15} {'s':>8} {'s/step':>8} {'vs one caller':>14}")
    for case in CASES:
        print(f"{case:<15} {best[case]:>8.2f} {best[case] / args.steps:>8.3f} {best[case] / base:>13.2f}x")


if __name__ == "__main__":
    main()
