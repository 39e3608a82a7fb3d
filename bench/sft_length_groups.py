"""RFT step time with and without length groups (`rft.train.length_groups`), on a finished run's RFT mix.

Rebuilds the run's RFT training set (accepted trajectories + general-instruction examples, `grm.training.spct.rft_mix`),
trains a few steps from the run's base model once per setting, and prints seconds per step, the speed-up over one
padded batch, the padded-token share and the mean loss (equal across settings: the groups give the same loss).

    .venv/bin/python bench/sft_length_groups.py --project /tmp/run --groups 1,2,3 --steps 60
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import replace
from pathlib import Path

from study_io import record_result, stage_file  # bench/ is the script's folder
from transformers import AutoTokenizer

from grm.plan import load_pipeline
from grm.training import spct
from grm.training.padding import plan_groups
from grm.training.rft import Trajectory
from grm.training.sft import train_sft
from grm.world.generator import general_instruction_examples


def padded_share(lengths: list[int], batch_size: int, max_groups: int) -> float:
    """Share of the computed tokens that are padding, over consecutive batches of ``lengths``."""
    real = padded = 0
    for start in range(0, len(lengths), batch_size):
        batch = lengths[start : start + batch_size]
        real += sum(batch)
        padded += sum(len(g) * max(batch[i] for i in g) for g in plan_groups(batch, max_groups=max_groups))
    return 1 - real / padded


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--groups", default="1,3", help="comma-separated length_groups values to time")
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--results", type=Path, default=Path("runs/bench/sft_length_groups.jsonl"))
    p.add_argument("--config", type=Path, default=Path("configs/default.yaml"), help="the run's config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's overrides")
    a = p.parse_args()
    cfg = load_pipeline([a.config], a.set)
    rows = stage_file(a.project, "rft.sample", "accepted.jsonl").read_text(encoding="utf-8").splitlines()
    accepted = [Trajectory.from_dict(r) for r in map(json.loads, rows)]
    general = general_instruction_examples(cfg.world, seed=cfg.seed)
    examples = spct.rft_mix(accepted, general, cfg.rft.general_ratio, cfg.seed)
    base = stage_file(a.project, "model.base", "model")
    tok = AutoTokenizer.from_pretrained(base)
    lengths = [len(tok(e["prompt"] + e["completion"])["input_ids"]) for e in examples]
    baseline = None
    for groups in (int(g) for g in a.groups.split(",")):
        train_cfg = replace(cfg.rft.train, max_steps=a.steps, length_groups=groups, logging_steps=a.steps)
        with tempfile.TemporaryDirectory() as tmp:
            metrics = train_sft(base, examples, Path(tmp) / "model", train_cfg)
        step = metrics["seconds_per_step"]
        baseline = baseline or step
        record = {
            "length_groups": groups,
            "steps": a.steps,
            "batch_size": train_cfg.batch_size,
            "seconds_per_step": round(step, 4),
            "speedup_vs_first": round(baseline / step, 2),
            "padded_token_share": round(padded_share(lengths, train_cfg.batch_size, groups), 3),
            "train_loss": metrics["train_loss"],
        }
        record_result(record, a.results)


if __name__ == "__main__":
    main()
