"""GRPO variants from a finished pipeline run's RFT checkpoint: does rule-based RL move greedy accuracy?

Reads a project directory written by `grm run` (its `artifacts/stages/`: the train/test splits and the RFT model),
runs the pipeline's own GRPO stage code (`grm.training.grpo`: too-easy probe, TRL GRPO with the +-1 reward) with the
given hyper-parameters, then compares greedy accuracy of the RL policy and its RFT start on the test split (one
seeded shuffled order per item), and the knowledge the critiques lean on: greedy answers to the general-instruction
prompts of the test queries (`Query: 17 + 25 ?\nAnswer:`). Prints one JSON line per run and appends it to
`--results`. Pass the run's world overrides (`--set world.seed=1 --set seed=1`) for the general-instruction data.

    .venv/bin/python bench/rl_study.py --project /tmp/run --name lr3e-5x100 --lr 3e-5 --steps 100
    .venv/bin/python bench/rl_study.py --project /tmp/run1 --name ptx0 --steps 150 --general-coef 0 \
        --set world.seed=1 --set seed=1
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from study_io import general_accuracy, read_split, record_result, stage_file  # bench/ is the script's folder

from grm.method import judging
from grm.method.verdicts import decide
from grm.plan import load_pipeline
from grm.sampling.hf import HFSampler
from grm.schemas import Item
from grm.training import grpo
from grm.world.generator import World, general_instruction_examples


def greedy_accuracy(sampler: HFSampler, items: list[Item], max_new_tokens: int, seed: int) -> float:
    results = judging.judge_items(
        items, sampler, k=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=seed, template="compact"
    )
    return float(np.mean([decide(r, k=1, seed=seed).credit for r in results]))


class ConstantReward:
    """+1 for every rollout: zero advantage in every group (the no-reward control)."""

    __name__ = "constant_reward"

    def __call__(self, completions: list, **kwargs: object) -> list[float]:
        return [1.0] * len(completions)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--name", required=True, help="run name (output folder and results label)")
    p.add_argument("--out", type=Path, default=Path("runs/rl_study"))
    p.add_argument("--results", type=Path, default=Path("runs/rl_study/results.jsonl"))
    # GRPO settings: the run config's `rl` section unless given here
    p.add_argument("--lr", type=float, help="rl.learning_rate")
    p.add_argument("--beta", type=float, help="rl.beta")
    p.add_argument("--steps", type=int, help="rl.max_steps")
    p.add_argument("--prompts-per-step", type=int, help="rl.prompts_per_step")
    p.add_argument("--temperature", type=float, help="rl.temperature")
    p.add_argument("--max-items", type=int, help="rl.max_items")
    p.add_argument("--loss-type", help="rl.loss_type")
    p.add_argument("--general-coef", type=float, help="rl.general_coef (PPO-ptx weight; 0 = plain GRPO)")
    p.add_argument("--general-batch-size", type=int, help="rl.general_batch_size")
    p.add_argument(
        "--control-no-reward",
        action="store_true",
        help="control run: a constant reward (every group has zero advantage), so only the general loss and the KL "
        "term train; what the general loss alone does to the RFT checkpoint",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=Path, default=Path("configs/default.yaml"), help="the run's config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's overrides")
    a = p.parse_args()
    run_cfg = load_pipeline([a.config], a.set)
    given = {
        "learning_rate": a.lr,
        "beta": a.beta,
        "max_steps": a.steps,
        "prompts_per_step": a.prompts_per_step,
        "temperature": a.temperature,
        "max_items": a.max_items,
        "loss_type": a.loss_type,
        "general_coef": a.general_coef,
        "general_batch_size": a.general_batch_size,
    }
    cfg = replace(run_cfg.rl, seed=a.seed, **{k: v for k, v in given.items() if v is not None})
    general = general_instruction_examples(run_cfg.world, seed=run_cfg.seed) if cfg.general_coef > 0 else None

    train, test = read_split(a.project, "train"), read_split(a.project, "test")
    rft_model = stage_file(a.project, "rft.train", "model")
    t0 = time.perf_counter()
    probe = HFSampler(rft_model, num_threads=2, batch_size=256, progress=False)
    kept, too_easy = grpo.drop_too_easy(train, probe, cfg)
    rows = grpo.build_rl_rows(kept, cfg.template, a.seed)
    out = a.out / a.name
    reward_funcs = [ConstantReward()] if a.control_no_reward else None
    stats = grpo.train_grpo(rft_model, rows, out, cfg, num_threads=2, general=general, reward_funcs=reward_funcs)
    train_s = time.perf_counter() - t0
    rewards = [round(h["reward"], 3) for h in stats["log_history"] if "reward" in h]
    record = {
        "name": a.name,
        "project": str(a.project),
        "overrides": a.set,
        "control_no_reward": a.control_no_reward,
        **{k: getattr(cfg, k) for k in given},
        "too_easy_rate": too_easy,
        "rl_rows": len(rows),
        "reward_curve": rewards,
        "train_seconds": round(train_s, 1),
    }
    world = World(run_cfg.world)
    test_arith = sorted({it.query for it in test if it.subset == "arith"})
    policy = HFSampler(out, num_threads=2, batch_size=256, progress=False)
    for name, sampler in (("rft", probe), ("rl", policy)):
        record[f"{name}_greedy"] = greedy_accuracy(sampler, test, cfg.max_completion_length, a.seed)
        if test_arith:  # the test sums the critiques need, known only from the general-instruction mix
            record[f"{name}_test_sums_known"] = general_accuracy(sampler, world, test_arith)
    record["gap_points"] = round(100 * (record["rl_greedy"] - record["rft_greedy"]), 1)
    record_result(record, a.results)


if __name__ == "__main__":
    main()
