"""Benchmark: evaluation on the local executor vs Ray at 1 and 2 workers, and SFT in 1 vs 2 DDP processes.

Evaluation: the world's test split (``--limit`` items) judged by the embedded tiny model (default ``ModelTinyConfig``,
random init: the sampling cost of a trained one) with greedy + Voting@k through ``grm.eval.run.evaluate``, one
torch thread per worker. Reported per executor: wall time, Ray actor start-up (process + model load), the per-shard
Ray overhead (driver round trip minus the time inside the actor's ``generate``: scheduling and serialisation),
resident memory per worker, and whether the report equals the local one. Then an extrapolation to N workers from
the measured per-shard cost (stated as a model, not a measurement).

Training: ``grm.training.sft.train_sft`` on world-like prompt/completion pairs, in-process vs
``launcher: torchrun`` with 2 CPU processes (DDP over gloo), same global batch: seconds per step and the largest
relative loss difference.

Usage::

    .venv/bin/python bench/scaleout.py [--limit 120] [--ks 1,4] [--shard-size 16] [--sft-steps 20] [--repeats 2]
        [--out bench/results]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
os.environ.setdefault("OMP_NUM_THREADS", "1")


def eval_report(sampler: Any, items: list, ks: tuple[int, ...]) -> dict[str, Any]:
    from grm.eval.run import evaluate
    from grm.eval.spec import EvalSpec

    rep = evaluate(items, sampler, EvalSpec(benchmark="world", model_name="tiny", ks=ks, temperature=0.5, max_new_tokens=50, seed=0, template="compact"))  # fmt: skip
    out = dataclasses.asdict(rep)
    return {"cells": json.dumps(out["cells"], sort_keys=True), "per_item": out["per_item"]}


def bench_eval(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import ray

    from grm import executors
    from grm.config import ModelTinyConfig, SamplingConfig
    from grm.executors import RayExecutor, local_runtime_env
    from grm.training import spct
    from grm.world.generator import WorldConfig, generate_world

    world = WorldConfig(n_train=0, n_val=0, n_test=args.limit)
    items = generate_world(world)["test"][: args.limit]
    model = spct.build_base_model("embedded", ModelTinyConfig(), world, tmp / "base", seed=0)
    sampling = SamplingConfig(num_threads=1, shard_size=args.shard_size)
    ks = tuple(int(k) for k in args.ks.split(","))

    sampler = spct.student_sampler(model, sampling)
    t0 = time.perf_counter()
    sampler.executor.sampler(sampler.spec)  # model loaded, as the Ray actors' start-up does it
    local_load = time.perf_counter() - t0
    local = eval_report(sampler, items, ks)  # reference report (also warms up)

    t0 = time.perf_counter()
    ray.init(  # 3 logical CPUs: the 1- and 2-worker pools stay up together (only one samples at a time)
        address="local", num_cpus=3, include_dashboard=False, log_to_driver=False, runtime_env=local_runtime_env()
    )
    ray_start = time.perf_counter() - t0
    pools: dict[int, RayExecutor] = {}
    best: dict[tuple[str, int], dict[str, Any]] = {}
    try:
        for workers in (1, 2):
            ex = pools[workers] = RayExecutor(workers=workers, num_cpus=1, shutdown=False)
            t0 = time.perf_counter()
            ex.worker_pids(sampler.spec)  # actors up, model loaded
            best[("ray", workers)] = {"actor_startup_s": time.perf_counter() - t0}
        for _ in range(args.repeats):  # interleaved, best of: the machine is shared, so its load varies
            t0 = time.perf_counter()
            eval_report(sampler, items, ks)
            wall = time.perf_counter() - t0
            if wall < best.get(("local", 1), {}).get("wall_s", float("inf")):
                best[("local", 1)] = {"wall_s": wall, "actor_startup_s": local_load}
            for workers, ex in pools.items():
                ex.timings.clear()
                t0 = time.perf_counter()
                with executors.using(ex, shutdown=False):
                    got = eval_report(spct.student_sampler(model, sampling), items, ks)
                wall = time.perf_counter() - t0
                row = best[("ray", workers)]
                if wall < row.get("wall_s", float("inf")):
                    over = [t.round_trip_s - t.sample_s for t in ex.timings]
                    row.update({
                        "wall_s": wall, "shards": len(ex.timings), "sample_s_total": sum(t.sample_s for t in ex.timings),
                        "overhead_per_shard_ms": 1000 * statistics.mean(over),
                        "rss_mb_per_worker": statistics.mean(ex.worker_rss_mb(sampler.spec)),
                        "identical": got == local and row.get("identical", True),
                    })  # fmt: skip
                else:
                    row["identical"] = row.get("identical", True) and got == local
    finally:
        for ex in pools.values():
            ex.close()
        ray.shutdown()
    rows = [{"executor": e, "workers": w, **best[(e, w)]} for e, w in (("local", 1), ("ray", 1), ("ray", 2))]
    one = next(r for r in rows if r["workers"] == 1 and r["executor"] == "ray")
    two = next(r for r in rows if r["workers"] == 2)
    per_shard = one["sample_s_total"] / one["shards"] + one["overhead_per_shard_ms"] / 1000
    extrapolated = {n: one["actor_startup_s"] + per_shard * -(-one["shards"] // n) for n in (1, 2, 4, 8, 16)}
    return {
        "items": len(items), "ks": list(ks), "load_average": os.getloadavg()[0], "repeats": args.repeats, "shard_size": args.shard_size, "ray_init_s": ray_start, "rows": rows,
        "ray1_vs_local": one["wall_s"] / rows[0]["wall_s"], "ray2_speedup_vs_ray1": one["wall_s"] / two["wall_s"],
        "extrapolated_wall_s": extrapolated,
    }  # fmt: skip


def bench_ddp(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from grm.config import ModelTinyConfig, RFTTrainConfig
    from grm.training.sft import train_sft
    from grm.training.spct import build_base_model
    from grm.world.generator import WorldConfig, general_instruction_examples

    world = WorldConfig()
    model = build_base_model("embedded", ModelTinyConfig(), world, tmp / "ddp_base", seed=0)
    examples = general_instruction_examples(world, seed=0)[:512]
    cfg = RFTTrainConfig(max_steps=args.sft_steps, batch_size=16, logging_steps=1, num_threads=1, length_groups=1)
    one = train_sft(model, examples, tmp / "sft1", cfg)
    two = train_sft(model, examples, tmp / "sft2", dataclasses.replace(cfg, launcher="torchrun", nproc_per_node=2))
    diffs = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(one["loss_curve"], two["loss_curve"], strict=True)]
    return {
        "steps": cfg.max_steps, "global_batch": cfg.batch_size, "examples": len(examples),
        "inprocess_s_per_step": one["seconds_per_step"], "ddp2_s_per_step": two["seconds_per_step"],
        "ddp2_world_size": two["world_size"], "ddp2_backend": two["backend"], "max_rel_loss_diff": max(diffs),
        "final_loss": [one["loss_curve"][-1], two["loss_curve"][-1]],
    }  # fmt: skip


def markdown(ev: dict[str, Any], ddp: dict[str, Any] | None) -> str:
    lines = [
        f"Evaluation of {ev['items']} world test items (tiny model, ks {ev['ks']}, shard_size {ev['shard_size']}, "
        f"1 torch thread per worker, best of {ev['repeats']} interleaved runs; Ray init {ev['ray_init_s']:.1f} s and start-up not in wall; load average "
        f"{ev['load_average']:.1f} on {os.cpu_count()} cores):",
        "",
        "| executor | workers | wall s | start-up s (model load) | shards | overhead/shard ms | RSS/worker MiB | = local |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ev["rows"]:
        lines.append(
            f"| {r['executor']} | {r['workers']} | {r['wall_s']:.1f} | {r.get('actor_startup_s', 0):.1f} | "
            f"{r.get('shards', '-')} | {r.get('overhead_per_shard_ms', 0):.1f} | {r.get('rss_mb_per_worker', 0):.0f} | "
            f"{r.get('identical', True)} |"
        )
    lines += [
        "",
        f"Ray 1 worker / local: {ev['ray1_vs_local']:.2f}x wall; Ray 2 workers speed-up over 1: "
        f"{ev['ray2_speedup_vs_ray1']:.2f}x.",
        "Extrapolated (model: start-up + ceil(shards / N) x measured per-shard cost; not measured): "
        + ", ".join(f"N={n}: {s:.1f} s" for n, s in ev["extrapolated_wall_s"].items()),
    ]
    if ddp:
        lines += [
            "",
            f"SFT, {ddp['steps']} steps, global batch {ddp['global_batch']}: in-process "
            f"{ddp['inprocess_s_per_step']:.3f} s/step; torchrun 2 CPU processes ({ddp['ddp2_backend']}, world "
            f"{ddp['ddp2_world_size']}) {ddp['ddp2_s_per_step']:.3f} s/step; max relative loss difference "
            f"{ddp['max_rel_loss_diff']:.1e}.",
        ]
    return "\n".join(lines) + "\n"


def figure(ev: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['executor']}\n{r['workers']}w" for r in ev["rows"]]
    walls = [r["wall_s"] for r in ev["rows"]]
    fig, ax = plt.subplots(figsize=(4.2, 3.0))
    ax.bar(labels, walls, color=["grey", "tab:blue", "tab:blue"])
    ext = ev["extrapolated_wall_s"]
    ax.set_ylabel("wall s")
    ax.set_title(f"eval of {ev['items']} items; extrapolated N=8: {ext[8]:.0f} s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=120, help="world test items")
    p.add_argument("--ks", default="1,4")
    p.add_argument("--shard-size", type=int, default=16)
    p.add_argument("--sft-steps", type=int, default=20, help="0 skips the DDP part")
    p.add_argument("--repeats", type=int, default=2, help="interleaved runs per executor; the fastest is kept")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        ev = bench_eval(args, Path(tmp))
        write(args.out, ev, None)
        ddp = bench_ddp(args, Path(tmp)) if args.sft_steps else None
    print(write(args.out, ev, ddp))


def write(out: Path, ev: dict[str, Any], ddp: dict[str, Any] | None) -> str:
    (out / "scaleout.json").write_text(json.dumps({"eval": ev, "ddp": ddp}, indent=1), encoding="utf-8")
    md = markdown(ev, ddp)
    (out / "scaleout.md").write_text(md, encoding="utf-8")
    figure(ev, out / "scaleout.png")
    return md


if __name__ == "__main__":
    main()
