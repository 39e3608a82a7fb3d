"""Meta-RM variants on a finished pipeline run: does meta-guided voting beat plain voting for a student?

Reads a project directory written by `grm run` (splits, rejective-sampling samples, RFT/RL models, meta RM), samples
k judgements per test item from the student once (cached), then scores them with a meta RM: the run's own
(`--variant pipeline`) or one trained here with the pipeline's code (`grm.training.spct.meta_rm_examples`,
`grm.training.meta_rm_train.train_meta_rm`) under the given data settings. Reports Voting@k vs MetaRM@k, the meta RM's ROC-AUC over
all samples and **within items** (the chance that a correct sample of an item outranks an incorrect one of the
same item: what meta-guided voting needs), per family. Prints one JSON line and appends it to `--results`.

Two diagnostics ask whether a meta RM *could* help, beyond the pipeline's recipe:

* `--general-backbone-steps N`: the meta RM starts from a model that knows the world, the run's base model
  trained N steps on the general-instruction data alone (it reports how many test sums that backbone knows),
  instead of from the GRM.
* `--crossfit`: the meta RM trains on the student's own test samples for half of the test queries (a seeded
  split by query) and is scored on the other half: the student's real test-time mistakes as training data.

    .venv/bin/python bench/meta_study.py --project /tmp/run --variant pipeline
    .venv/bin/python bench/meta_study.py --project /tmp/run --variant mixed --mixed-only --grm-samples 8
    .venv/bin/python bench/meta_study.py --project /tmp/run1 --variant know --general-backbone-steps 1500 \\
        --crossfit --mixed-only --set world.seed=1 --set seed=1
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from study_io import (  # bench/ is the script's folder
    general_accuracy,
    read_split,
    record_result,
    stage_file,
    within_item_auc,
)

from grm import meta_rm
from grm.benchmarks.scoring import roc_auc
from grm.config import MetaRMConfig, MetaRMTrainConfig, PipelineConfig
from grm.method import judging
from grm.method.correctness import is_correct
from grm.method.judging import ItemJudgement
from grm.method.verdicts import decide
from grm.plan import load_pipeline
from grm.sampling.hf import HFSampler
from grm.schemas import Item
from grm.training import meta_rm_train, spct
from grm.training.rft import Trajectory
from grm.training.sft import RFTTrainConfig, train_sft
from grm.world.generator import World, general_instruction_examples


def split_by_query(items: list[Item], seed: int) -> tuple[list[int], list[int]]:
    """Indices of the items of a seeded half of the distinct queries (fit) and of the other half (held out)."""
    queries = sorted({it.query for it in items})
    random.Random(seed).shuffle(queries)
    fit = set(queries[: len(queries) // 2])
    inside = [it.query in fit for it in items]
    return [i for i, x in enumerate(inside) if x], [i for i, x in enumerate(inside) if not x]


def general_backbone(project: Path, run_cfg: PipelineConfig, steps: int, out: Path, test: list[Item]) -> dict:
    """Train the run's base model on the general-instruction data alone; report the test sums it knows."""
    examples = general_instruction_examples(run_cfg.world, seed=run_cfg.seed)
    cfg = RFTTrainConfig(max_steps=steps, batch_size=64, max_length=32, learning_rate=3e-3, seed=run_cfg.seed)
    train_sft(stage_file(project, "model.base", "model"), examples, out, cfg)
    sums = sorted({it.query for it in test if it.subset == "arith"})
    known = general_accuracy(HFSampler(out, num_threads=2, progress=False), World(run_cfg.world), sums)
    return {"backbone_steps": steps, "backbone_test_sums_known": round(known, 3)}


def report(items: list[Item], scored: list[ItemJudgement], k: int, seed: int) -> dict[str, Any]:
    """Voting@k vs MetaRM@k (k and k/2) and the meta RM's AUCs per family over ``items``."""
    record: dict[str, Any] = {"n_items": len(items)}
    for method in ("voting", "metarm"):
        for kk in sorted({k // 2, k}):
            verdicts = [decide(r, k=kk, method=method, k_meta=max(1, kk // 2), seed=seed) for r in scored]
            record[f"{method}_k{kk}"] = round(float(np.mean([v.credit for v in verdicts])), 4)
    record["gap_metarm_minus_voting_points"] = round(100 * (record[f"metarm_k{k}"] - record[f"voting_k{k}"]), 1)
    for family in sorted({it.subset for it in items}):
        ys, ps, by_item = [], [], defaultdict(lambda: ([], []))
        for it, res in zip(items, scored, strict=True):
            if it.subset != family:
                continue
            for s in res.samples:
                if s.meta_score is None:
                    continue
                y = is_correct(s.scores, best=it.best, label=it.label)
                ys.append(int(y))
                ps.append(s.meta_score)
                by_item[it.id][0 if y else 1].append(s.meta_score)
        record[f"{family}_auc"] = round(roc_auc(ps, ys), 3) if len(set(ys)) == 2 else None
        record[f"{family}_within_item_auc"] = round(within_item_auc(by_item), 3)
    return record


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--student", choices=("rft", "rl"), default="rft", help="whose test samples are voted on")
    p.add_argument("--variant", default="pipeline", help="'pipeline' = the run's meta RM; else a name to train")
    p.add_argument("--out", type=Path, default=Path("runs/meta_study"))
    p.add_argument("--results", type=Path, default=Path("runs/meta_study/results.jsonl"))
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--no-teacher", action="store_true", help="leave the teacher's samples out of the meta data")
    p.add_argument("--grm-items", type=int, default=1500)
    p.add_argument("--grm-samples", type=int, default=4)
    p.add_argument("--mixed-only", action="store_true")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=192)
    p.add_argument("--backbone", type=Path, help="model dir the meta RM starts from (default: the run's RL GRM)")
    p.add_argument(
        "--general-backbone-steps",
        type=int,
        help="start the meta RM from the run's base model trained this many steps on the general-instruction data",
    )
    p.add_argument("--crossfit", action="store_true", help="train on the student's test samples of half the queries")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", type=Path, default=Path("configs/default.yaml"), help="the run's config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's overrides")
    a = p.parse_args()
    if a.variant == "pipeline" and (a.backbone or a.general_backbone_steps or a.crossfit):
        p.error("--backbone, --general-backbone-steps and --crossfit train a meta RM: give --variant NAME")
    run_cfg = load_pipeline([a.config], a.set)

    test, train = read_split(a.project, "test"), read_split(a.project, "train")
    student = stage_file(a.project, f"{a.student}.train", "model")
    cache = a.out / f"samples_{a.project.name}_{a.student}_k{a.k}.pkl"
    if cache.exists():
        sampled = pickle.loads(cache.read_bytes())
    else:
        sampler = HFSampler(student, num_threads=2, batch_size=256, progress=False)
        sampled = judging.judge_items(
            test, sampler, k=a.k, temperature=a.temperature, max_new_tokens=a.max_new_tokens, seed=a.seed,
            template="compact",
        )  # fmt: skip
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps(sampled))
    t0 = time.perf_counter()
    train_stats: dict[str, Any] = {}
    scored_idx = list(range(len(test)))
    if a.variant == "pipeline":
        model_dir = stage_file(a.project, "meta_rm.train", "model")
    else:
        grm_dir = stage_file(a.project, "rl.train", "model")
        backbone = a.backbone or grm_dir
        if a.general_backbone_steps:
            backbone = a.out / f"general_backbone_{a.project.name}_{a.general_backbone_steps}"
            train_stats |= general_backbone(a.project, run_cfg, a.general_backbone_steps, backbone, test)
        if a.crossfit:
            fit_idx, scored_idx = split_by_query(test, a.seed)
            examples = meta_rm.examples_from_judgements([test[i] for i in fit_idx], [sampled[i] for i in fit_idx])
            if a.mixed_only:
                mixed = meta_rm.mixed_item_ids(examples)
                examples = [e for e in examples if e["id"] in mixed]
        else:
            rows = stage_file(a.project, "rft.sample", "samples.jsonl").read_text(encoding="utf-8").splitlines()
            trajectories = [Trajectory.from_dict(r) for r in map(json.loads, rows)]
            if a.no_teacher:
                trajectories = []
            cfg = MetaRMConfig(
                grm_samples=a.grm_samples, grm_items=a.grm_items, mixed_only=a.mixed_only, temperature=a.temperature
            )
            grm = HFSampler(grm_dir, num_threads=2, batch_size=256, progress=False)
            examples, counts = spct.meta_rm_examples(
                train, trajectories, grm, cfg, "compact", a.max_new_tokens, a.seed
            )  # fmt: skip
            train_stats |= counts
        model_dir = a.out / f"meta_{a.variant}"
        train_cfg = MetaRMTrainConfig(steps=a.steps, learning_rate=a.lr, max_length=a.max_length, seed=a.seed)
        train_stats |= meta_rm_train.train_meta_rm(backbone, examples, model_dir, train_cfg, num_threads=2)
    scorer = meta_rm.load_meta_scorer(model_dir)  # at the max_length it was trained with (meta_rm.json)
    items = [test[i] for i in scored_idx]
    scored = [copy.deepcopy(sampled[i]) for i in scored_idx]
    judging.attach_meta_scores(items, scored, scorer)

    record: dict[str, Any] = {
        "variant": a.variant,
        "student": a.student,
        "project": str(a.project),
        "backbone": str(a.backbone or ("general" if a.general_backbone_steps else "grm")),
        "crossfit": a.crossfit,
        "train": train_stats,
    }
    record |= report(items, scored, a.k, a.seed)
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record_result(record, a.results)


if __name__ == "__main__":
    main()
