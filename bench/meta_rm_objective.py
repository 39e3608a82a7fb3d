"""Pointwise (BCE) vs pairwise (Bradley-Terry within an item) meta-RM objective: the held-out within-item AUC.

The cheap half of issue 29's pairwise question, with no sampling: reads a finished `grm run` project's rejective-
sampling samples (the teacher's non-hinted judgements of the train items, the meta RM's teacher data, with the
stage's own filters: parse failures dropped, mixed items only), trains the pipeline's meta RM
(`grm.training.meta_rm_train.train_meta_rm`, `meta_rm.train` defaults, backbone = the project's RL GRM) once per objective
and seed, and prints the held-out within-item AUC (items never trained on), the global AUC and the selected step.
MetaRM@k - Voting@k on the test split needs the guided GRM's samples: bench/meta_rm_variants.py (variant
``pairwise``).

    PYTHONPATH=src:. python bench/meta_rm_objective.py --project /tmp/run --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from study_io import read_split, record_result, stage_file  # bench/ is the script's folder

from grm.plan import load_pipeline
from grm.threads import set_torch_threads
from grm.training import meta_rm_train, spct
from grm.training.rft import Trajectory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="meta_rm.train.seed values")
    p.add_argument("--objectives", nargs="+", default=["pointwise", "pairwise"], choices=["pointwise", "pairwise"])
    p.add_argument("--results", type=Path, default=Path("runs/meta_rm_objective/results.jsonl"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--config", type=Path, default=Path("configs/default.yaml"), help="the run's config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's overrides")
    a = p.parse_args()
    set_torch_threads(a.threads)
    cfg = load_pipeline([a.config], a.set)
    train = read_split(a.project, "train")
    rows = stage_file(a.project, "rft.sample", "samples.jsonl").read_text(encoding="utf-8").splitlines()
    trajectories = [Trajectory.from_dict(json.loads(r)) for r in rows if r]
    examples, counts = spct.assemble_meta_examples(train, trajectories, [], [], cfg.meta_rm)
    backbone = stage_file(a.project, "rl.train", "model")
    for seed in a.seeds:
        for objective in a.objectives:
            train_cfg = replace(cfg.meta_rm.train, seed=seed, objective=objective)
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                stats = meta_rm_train.train_meta_rm(
                    backbone, examples, Path(tmp) / "meta", train_cfg, num_threads=a.threads,
                    template=cfg.sampling.template,
                )  # fmt: skip
            record = {"project": a.project.name, "objective": objective, "seed": seed, "data": counts}
            record |= {
                k: round(float(stats[k]), 3)
                for k in ("val_within_item_auc", "val_auc", "val_mixed_items", "selected_step", "n_train")
            }
            record["n_pairs"] = stats.get("n_pairs")
            record["seconds"] = round(time.perf_counter() - t0, 1)
            record_result(record, a.results)


if __name__ == "__main__":
    main()
