"""Meta-RM variants on a finished pipeline run: does meta-guided voting beat plain voting for a student?

Reads a project directory written by `grm run` (splits, rejective-sampling samples, RFT/RL models, meta RM), samples
k judgements per test item from the student once (cached), then scores them with a meta RM: the run's own
(`--variant pipeline`) or one trained here with the pipeline's code (`grm.spct.meta_rm_examples`,
`grm.meta_rm.train_meta_rm`) under the given data settings. Reports Voting@k vs MetaRM@k, the meta RM's ROC-AUC over
all samples and **within items** (the chance that a correct sample of an item outranks an incorrect one of the
same item: what meta-guided voting needs), per family. Prints one JSON line and appends it to `--results`.

    .venv/bin/python bench/meta_study.py --project /tmp/run --variant pipeline
    .venv/bin/python bench/meta_study.py --project /tmp/run --variant mixed --mixed-only --grm-samples 8
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from study_io import read_split, record_result, stage_file  # bench/ is the script's folder

from grm import judging, meta_rm, spct
from grm.benchmarks.scoring import roc_auc
from grm.correctness import is_correct
from grm.pipeline_config import MetaStageConfig
from grm.rft import Trajectory
from grm.sampling.hf import HFSampler
from grm.verdicts import decide


def within_item_auc(pairs_by_item: dict[str, tuple[list[float], list[float]]]) -> float:
    """P(score of a correct sample > score of an incorrect sample of the same item), ties count 1/2."""
    wins = []
    for pos, neg in pairs_by_item.values():
        wins.extend(1.0 if x > z else 0.5 if x == z else 0.0 for x in pos for z in neg)
    return float(np.mean(wins)) if wins else float("nan")


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
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

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
    train_stats: dict[str, float] = {}
    if a.variant == "pipeline":
        model_dir = stage_file(a.project, "meta_rm.train", "model")
    else:
        rows = stage_file(a.project, "rft.sample", "samples.jsonl").read_text(encoding="utf-8").splitlines()
        trajectories = (
            [] if a.no_teacher else [Trajectory(**{**r, "order": tuple(r["order"])}) for r in map(json.loads, rows)]
        )
        grm_dir = stage_file(a.project, "rl.train", "model")
        cfg = MetaStageConfig(
            grm_samples=a.grm_samples, grm_items=a.grm_items, mixed_only=a.mixed_only, temperature=a.temperature
        )
        grm = HFSampler(grm_dir, num_threads=2, batch_size=256, progress=False)
        examples, counts = spct.meta_rm_examples(train, trajectories, grm, cfg, "compact", a.max_new_tokens, a.seed)
        model_dir = a.out / f"meta_{a.variant}"
        train_cfg = meta_rm.MetaRMConfig(steps=a.steps, learning_rate=a.lr, max_length=a.max_length, seed=a.seed)
        train_stats = {**counts, **meta_rm.train_meta_rm(grm_dir, examples, model_dir, train_cfg, num_threads=2)}
    scorer = meta_rm.load_meta_scorer(model_dir, max_length=a.max_length)
    scored = copy.deepcopy(sampled)
    judging.attach_meta_scores(test, scored, scorer)

    record: dict = {"variant": a.variant, "student": a.student, "project": str(a.project), "train": train_stats}
    for method in ("voting", "metarm"):
        for k in sorted({a.k // 2, a.k}):
            verdicts = [decide(r, k=k, method=method, k_meta=max(1, k // 2), seed=a.seed) for r in scored]
            record[f"{method}_k{k}"] = round(float(np.mean([v.credit for v in verdicts])), 4)
    record["gap_metarm_minus_voting_points"] = round(100 * (record[f"metarm_k{a.k}"] - record[f"voting_k{a.k}"]), 1)
    for family in sorted({it.subset for it in test}):
        ys, ps, by_item = [], [], defaultdict(lambda: ([], []))
        for it, res in zip(test, scored, strict=True):
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
    record["seconds"] = round(time.perf_counter() - t0, 1)
    record_result(record, a.results)


if __name__ == "__main__":
    main()
