"""GRPO variants from a finished pipeline run's RFT checkpoint: does rule-based RL move greedy accuracy?

Reads a project directory written by `grm run` (its `artifacts/stages/`: the train/test splits and the RFT model),
runs the pipeline's own GRPO stage code (`grm.training.grpo`: too-easy probe, TRL GRPO with the +-1 reward) with the
given hyper-parameters, then compares greedy accuracy of the RL policy and its RFT start on the test split (one
seeded shuffled order per item). Prints one JSON line per run and appends it to `--results`.

    .venv/bin/python bench/rl_study.py --project /tmp/run --name lr3e-5x100 --lr 3e-5 --steps 100
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from study_io import read_split, record_result, stage_file  # bench/ is the script's folder

from grm import judging
from grm.sampling.hf import HFSampler
from grm.schemas import Item
from grm.training import grpo
from grm.verdicts import decide


def greedy_accuracy(model_dir: Path, items: list[Item], max_new_tokens: int, seed: int) -> float:
    sampler = HFSampler(model_dir, num_threads=2, batch_size=256, progress=False)
    results = judging.judge_items(
        items, sampler, k=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed, template="compact"
    )
    return float(np.mean([decide(r, k=1, seed=seed).credit for r in results]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--name", required=True, help="run name (output folder and results label)")
    p.add_argument("--out", type=Path, default=Path("runs/rl_study"))
    p.add_argument("--results", type=Path, default=Path("runs/rl_study/results.jsonl"))
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--beta", type=float, default=0.04)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--prompts-per-step", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--max-items", type=int, default=1000)
    p.add_argument("--loss-type", default="grpo")
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    train, test = read_split(a.project, "train"), read_split(a.project, "test")
    rft_model = stage_file(a.project, "rft.train", "model")
    cfg = grpo.GRPOStageConfig(
        learning_rate=a.lr,
        beta=a.beta,
        max_steps=a.steps,
        prompts_per_step=a.prompts_per_step,
        max_completion_length=a.max_new_tokens,
        temperature=a.temperature,
        max_items=a.max_items,
        loss_type=a.loss_type,
        seed=a.seed,
    )
    t0 = time.perf_counter()
    probe = HFSampler(rft_model, num_threads=2, batch_size=256, progress=False)
    kept, too_easy = grpo.drop_too_easy(train, probe, cfg)
    rows = grpo.build_rl_rows(kept, cfg.template, a.seed)
    out = a.out / a.name
    stats = grpo.train_grpo(rft_model, rows, out, cfg, num_threads=2)
    train_s = time.perf_counter() - t0
    rewards = [round(h["reward"], 3) for h in stats["log_history"] if "reward" in h]
    record = {
        "name": a.name,
        "project": str(a.project),
        **{k: v for k, v in vars(a).items() if k not in ("project", "name", "out", "results")},
        "too_easy_rate": too_easy,
        "rl_rows": len(rows),
        "reward_curve": rewards,
        "train_seconds": round(train_s, 1),
        "rft_greedy": greedy_accuracy(rft_model, test, a.max_new_tokens, a.seed),
        "rl_greedy": greedy_accuracy(out, test, a.max_new_tokens, a.seed),
    }
    record["gap_points"] = round(100 * (record["rl_greedy"] - record["rft_greedy"]), 1)
    record_result(record, a.results)


if __name__ == "__main__":
    main()
