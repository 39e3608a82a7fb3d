"""Benchmark: two stage-like workloads one after the other on 2 threads vs at once on 1 thread each.

The question behind ``runtime.parallel_stages`` (``tasks.engine.workers``): on a 2-core machine, do two independent stages
finish sooner side by side on one thread each than one after the other on two threads? Tiny matmuls scale poorly
to a second thread, so they may. Each workload runs in its own process (as a stage build does), on the default
recipe's shapes and data (``bench/train_speed.py``'s ``build_data``):

* ``sft``: ``--sft-steps`` RFT steps (``train_sft``, batch 64, 3 length groups) -- ``rft.train`` /
  ``rft.train_unfiltered`` / an ablation;
* ``grpo``: ``--grpo-steps`` GRPO steps (``train_grpo``, 16 prompts x 4 rollouts + the general loss) -- ``rl.train``;
* ``meta``: ``--meta-steps`` meta-RM steps (``train_meta_rm``, batch 32) -- ``meta_rm.train``'s training;
* ``sample``: ``--prompts`` prompts x k = 8 judgements of up to 50 tokens (``HFSampler``, static decode) -- an
  ``eval.*`` stage, ``meta_rm.train``'s GRM samples, ``rl.train``'s too-easy probe.

Only the workload is timed (after data, model load and a warm-up; the processes of a concurrent pair start their
timed parts together). For each pair: **sequential** = the two on 2 threads one after the other (sum), **at once**
= both on 1 thread side by side (first start to last end); repeats are interleaved and the best of each is kept
(the machine is shared: the load average is printed with each run).

Usage::

    PYTHONPATH=src:. .venv/bin/python bench/stage_concurrency.py [--pairs sft+sft,grpo+sft,sample+sample]
        [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

WORKLOADS = ("sft", "grpo", "meta", "sample")


def child(args: argparse.Namespace) -> None:
    """One workload in this process: set up, say ready, wait for go, run timed, print a JSON line."""
    import torch
    from train_speed import build_data

    from grm.sampling.hf import HFSampler
    from grm.training import grpo, meta_rm_train, sft

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="stage-concurrency-"))
    data = build_data(tmp, Path(args.config), [], args.items)
    cfg = data.cfg
    if args.workload == "sft":
        train = replace(cfg.rft.train, max_steps=args.sft_steps, num_threads=args.threads, logging_steps=1000)

        def run() -> None:
            sft.train_sft(data.model_dir, data.sft_examples, tmp / "sft", train)
    elif args.workload == "grpo":
        rl = replace(cfg.rl, max_steps=args.grpo_steps)

        def run() -> None:
            grpo.train_grpo(data.model_dir, data.rl_rows, tmp / "rl", rl, num_threads=args.threads,
                            general=data.general)  # fmt: skip
    elif args.workload == "meta":
        meta = replace(cfg.meta_rm.train, steps=args.meta_steps, val_fraction=0.0)

        def run() -> None:
            meta_rm_train.train_meta_rm(
                data.model_dir, data.meta_examples, tmp / "meta", meta, num_threads=args.threads
            )
    else:
        sampler = HFSampler(data.model_dir, num_threads=args.threads, progress=False, batch_size=256)
        prompts = [r["prompt"] for r in data.rl_rows[: args.prompts]]
        sampler.generate(prompts[:4], 2, 0.5, 4, seed=0)  # warm-up

        def run() -> None:
            sampler.generate(prompts, 8, cfg.eval.temperature, cfg.sampling.max_new_tokens, seed=1)

    Path(args.ready).touch()
    while not Path(args.go).exists():
        time.sleep(0.01)
    usage0, start = os.times(), time.time()
    run()
    end, usage1 = time.time(), os.times()
    cpu = (usage1.user - usage0.user) + (usage1.system - usage0.system)
    print(json.dumps({"workload": args.workload, "threads": args.threads, "start": start, "end": end, "cpu_s": cpu}))


def launch(workloads: list[tuple[str, int]], opts: argparse.Namespace, tmp: Path) -> list[dict]:
    """Run ``(workload, threads)`` processes together (started in the same instant); their JSON records."""
    go = tmp / f"go-{time.monotonic_ns()}"
    procs, readies = [], []
    for i, (workload, threads) in enumerate(workloads):
        ready = tmp / f"{go.name}-ready{i}"
        cmd = [sys.executable, __file__, "--child", workload, "--threads", str(threads), "--ready", str(ready),
               "--go", str(go), "--config", str(opts.config), "--items", str(opts.items),
               "--sft-steps", str(opts.sft_steps), "--grpo-steps", str(opts.grpo_steps),
               "--meta-steps", str(opts.meta_steps), "--prompts", str(opts.prompts)]  # fmt: skip
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        readies.append(ready)
    while not all(r.exists() for r in readies):
        if any(p.poll() not in (None, 0) for p in procs):
            raise RuntimeError(f"a workload process failed: {workloads}")
        time.sleep(0.05)
    go.touch()
    records = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode:
            raise RuntimeError(f"a workload process failed ({p.returncode}): {workloads}")
        records.append(json.loads(out.strip().splitlines()[-1]))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="sft+sft,grpo+sft,sample+sample", help="comma list of A+B workloads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--meta-steps", type=int, default=30)
    parser.add_argument("--prompts", type=int, default=128, help="prompts of a sample workload (k = 8 each)")
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    parser.add_argument("--child", choices=WORKLOADS, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--ready", help=argparse.SUPPRESS)
    parser.add_argument("--go", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workload = args.child
        child(args)
        return
    pairs = [tuple(p.split("+")) for p in args.pairs.split(",") if p]
    bad = [p for p in pairs if len(p) != 2 or not set(p) <= set(WORKLOADS)]
    if bad:
        parser.error(f"--pairs: {bad}; write A+B with A, B in {WORKLOADS}")
    print("$ " + shlex.join(["PYTHONPATH=src:.", ".venv/bin/python", "bench/stage_concurrency.py", *sys.argv[1:]]))
    best: dict[tuple, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for rep in range(args.repeats):
            for pair in pairs:
                row = best.setdefault(pair, {})
                load = os.getloadavg()[0]
                seq = [launch([(w, 2)], args, tmp)[0] for w in pair]
                for w, r in zip(pair, seq, strict=True):
                    row[f"{w}@2"] = min(row.get(f"{w}@2", float("inf")), r["end"] - r["start"])
                together = launch([(pair[0], 1), (pair[1], 1)], args, tmp)
                wall = max(r["end"] for r in together) - min(r["start"] for r in together)
                row["at once"] = min(row.get("at once", float("inf")), wall)
                for i, r in enumerate(together):
                    row[f"{pair[i]}@1 ({i})"] = min(row.get(f"{pair[i]}@1 ({i})", float("inf")), r["end"] - r["start"])
                print(f"repeat {rep + 1}, {'+'.join(pair)}: sequential {sum(r['end'] - r['start'] for r in seq):.1f} s,"
                      f" at once {wall:.1f} s (load average {load:.2f})", flush=True)  # fmt: skip
    print(
        "\n| pair | A alone, 2 threads | B alone, 2 threads | sequential (sum) | at once, 1 thread each | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for pair, row in best.items():
        a, b = row[f"{pair[0]}@2"], row[f"{pair[1]}@2"]
        print(f"| {pair[0]} + {pair[1]} | {a:.1f} s | {b:.1f} s | {a + b:.1f} s | {row['at once']:.1f} s | "
              f"{(a + b) / row['at once']:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
