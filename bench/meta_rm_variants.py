"""The meta RM's per-change table (issue 29): MetaRM@k - Voting@k with a paired bootstrap interval, per variant.

Reads a project directory written by `grm run` (splits, rejective-sampling samples, base/RFT/RL models). Samples
once and caches (under --out): each guided student's k judgements per test item, and the guided GRM's meta-RM data
samples on the train items and on the val items (`grm.training.spct.guided_samples`, the stage's own call). Then, per
variant, assembles the meta-RM data (`grm.training.spct.assemble_meta_examples`), trains a meta RM with the pipeline's code
(`grm.training.meta_rm_train.train_meta_rm`) and scores the guided student's test samples with the one loader
(`grm.meta_rm.load_meta_scorer`). Each variant is a set of `meta_rm.*` overrides on top of the defaults of this
checkout, so the table says what each switch does on its own:

    variant      what changes
    before       the recipe before issue 29: keep_parse_failures, select_every=0 (last step)
    pairwise     + meta_rm.train.objective=pairwise: Bradley-Terry within an item
    fixed        this checkout's defaults (parse failures dropped, checkpoint picked by val within-item AUC)
    val_pool     + meta_rm.grm_split=val: the guided GRM's samples on items it was not trained on
    base         + meta_rm.train.backbone=base: the pretrained base model, not the GRM, as backbone
    ...          see VARIANTS below (lr/steps sweep, no teacher, no mixed_only, the other student's meta RM)

Every row also reports meta-score-weighted voting (``eval.meta_vote=weighted``, ``gap_weighted``) and whether
the fall-back (``eval.meta_min_auc``) would replace MetaRM@k by Voting@k for a few thresholds (``fallback``).
Prints one JSON line per variant and appends it to --results.

    nice -n 19 .venv/bin/python bench/meta_rm_variants.py --project /tmp/run --student rl --variants before fixed
"""

from __future__ import annotations

import argparse
import copy
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from study_io import read_split, record_result, stage_file  # bench/ is the script's folder

from grm import meta_rm
from grm.benchmarks.scoring import roc_auc
from grm.eval.metrics import paired_gap
from grm.method import judging
from grm.method.correctness import is_correct
from grm.method.judging import ItemJudgement
from grm.method.verdicts import decide, meta_vote_for
from grm.plan import load_pipeline
from grm.sampling.hf import HFSampler
from grm.schemas import Item
from grm.threads import set_torch_threads
from grm.training import meta_rm_train, spct
from grm.training.rft import Trajectory

# variant -> (meta_rm.* overrides, meta_rm.train.* overrides, whose samples it trains on: "self" = the guided student)
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "before": ({"keep_parse_failures": True}, {"select_every": 0}, "rl"),
    "fixed": ({}, {}, "rl"),
    "fixed_self": ({}, {}, "self"),
    "val_pool": ({"grm_split": "val"}, {}, "self"),
    "val_pool_no_teacher": ({"grm_split": "val", "teacher": False}, {}, "self"),
    "val_pool32": ({"grm_split": "val", "grm_samples": 32}, {}, "self"),
    "val_pool32_no_teacher": ({"grm_split": "val", "grm_samples": 32, "teacher": False}, {}, "self"),
    "no_mixed": ({"mixed_only": False}, {}, "self"),
    "base": ({}, {"backbone": "base"}, "self"),
    "base_val_pool": ({"grm_split": "val"}, {"backbone": "base"}, "self"),
    "lr3e-4": ({}, {"learning_rate": 3e-4}, "self"),
    "lr3e-3": ({}, {"learning_rate": 3e-3}, "self"),
    "steps600": ({}, {"steps": 600}, "self"),
    # the same recipe, another init and batch order: the noise floor of one training
    "seed1": ({}, {"seed": 1}, "self"),
    "seed2": ({}, {"seed": 2}, "self"),
    "nrft3": ({"grm_samples": 3}, {}, "self"),  # the paper's N_RFT = 3 samples per item, mixed items kept
    # Bradley-Terry on a correct and a wrong sample of one item (meta_rm.train.objective=pairwise)
    "pairwise": ({}, {"objective": "pairwise"}, "rl"),
    "pairwise_seed1": ({}, {"objective": "pairwise", "seed": 1}, "rl"),
}
FALLBACK_AUCS = (0.55, 0.6, 0.65)  # eval.meta_min_auc values whose fall-back decision each row reports


def sample_cached(path: Path, make: Any, *args: Any, **kwargs: Any) -> Any:
    """``make(*args, **kwargs)``, pickled at ``path`` (read back from there when it exists)."""
    if path.exists():
        return pickle.loads(path.read_bytes())
    value = make(*args, **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(value))
    return value


def score_table(items: list[Item], scored: list[ItemJudgement], k: int, k_meta: int, seed: int) -> dict[str, Any]:
    """Voting@k, MetaRM@k (keep k_meta) with the paired gap, and the meta RM's global and within-item AUC."""
    vote = [decide(r, k=k, method="voting", seed=seed).credit for r in scored]
    meta = [decide(r, k=k, method="metarm", k_meta=k_meta, seed=seed).credit for r in scored]
    gap, lo, hi = paired_gap(meta, vote, seed=seed)
    ps, ys, ids = [], [], []
    for it, res in zip(items, scored, strict=True):
        for s in res.samples[:k]:
            if s.meta_score is not None:
                ps.append(s.meta_score)
                ys.append(int(is_correct(s.scores, best=it.best, label=it.label)))
                ids.append(it.id)
    within, mixed = meta_rm.within_item_auc(ps, ys, ids)
    extra: dict[str, Any] = {}
    for keep in sorted({k // 2, 3 * k // 4, k - 1} - {k_meta}):  # k_meta: how many of the k samples to keep
        kept = [decide(r, k=k, method="metarm", k_meta=keep, seed=seed).credit for r in scored]
        extra[f"gap_kmeta{keep}"] = [round(100 * x, 1) for x in paired_gap(kept, vote, seed=seed)]
    weighted = [decide(r, k=k, method="metarm", seed=seed, meta_vote="weighted").credit for r in scored]
    extra[f"weighted_k{k}"] = round(100 * float(np.mean(weighted)), 1)
    extra["gap_weighted"] = [round(100 * x, 1) for x in paired_gap(weighted, vote, seed=seed)]
    return {
        f"voting_k{k}": round(100 * float(np.mean(vote)), 1),
        f"metarm_k{k}": round(100 * float(np.mean(meta)), 1),
        "gap": round(100 * gap, 1),
        "gap_lo": round(100 * lo, 1),
        "gap_hi": round(100 * hi, 1),
        "test_within_item_auc": round(within, 3),
        "test_mixed_items": mixed,
        "test_auc": round(roc_auc(ps, ys), 3),
        **extra,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--student", choices=("rft", "rl"), default="rl", help="the guided GRM: whose test samples vote")
    p.add_argument("--variants", nargs="+", default=["before", "fixed"], choices=sorted(VARIANTS))
    p.add_argument("--out", type=Path, default=Path("runs/meta_rm_variants"))
    p.add_argument("--results", type=Path, default=Path("runs/meta_rm_variants/results.jsonl"))
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--reuse", action="store_true", help="reuse a variant's meta RM (and its test scores) from an earlier call"
    )
    p.add_argument("--config", type=Path, default=Path("configs/default.yaml"), help="the run's config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="the run's overrides")
    a = p.parse_args()
    set_torch_threads(a.threads)
    cfg = load_pipeline([a.config], a.set)
    ev, sampling = cfg.eval, cfg.sampling
    test, train, val = (read_split(a.project, s) for s in ("test", "train", "val"))
    models = {m: stage_file(a.project, f"{m}.train", "model") for m in ("rft", "rl")}
    models["base"] = stage_file(a.project, "model.base", "model")
    rows = stage_file(a.project, "rft.sample", "samples.jsonl").read_text(encoding="utf-8").splitlines()
    trajectories = [Trajectory.from_dict(json.loads(r)) for r in rows if r]
    tag = a.project.name

    def sampler(model: str) -> HFSampler:
        return HFSampler(models[model], num_threads=a.threads, batch_size=sampling.batch_size, progress=False)

    sampled = sample_cached(
        a.out / f"test_{tag}_{a.student}_k{a.k}.pkl", judging.judge_items, test, sampler(a.student), k=a.k,
        temperature=ev.temperature, max_new_tokens=sampling.max_new_tokens, seed=ev.seed, template=sampling.template,
    )  # fmt: skip
    for name in a.variants:
        stage_over, train_over, source = VARIANTS[name]
        source = a.student if source == "self" else source
        stage_cfg = replace(cfg.meta_rm, **stage_over)
        train_cfg = replace(stage_cfg.train, **{k: v for k, v in train_over.items() if k != "backbone"})
        pool = val if stage_cfg.grm_split == "val" else train
        subset = pool[: stage_cfg.grm_items]
        judgements = sample_cached(
            a.out / f"guided_{tag}_{source}_{stage_cfg.grm_split}_k{stage_cfg.grm_samples}.pkl", spct.guided_samples,
            subset, sampler(source), stage_cfg, sampling.template, sampling.max_new_tokens, cfg.meta_rm.seed or 0,
        )  # fmt: skip
        examples, counts = spct.assemble_meta_examples(train, trajectories, subset, judgements, stage_cfg)
        backbone = models["base"] if train_over.get("backbone") == "base" else models[source]
        t0 = time.perf_counter()
        model_dir = a.out / f"meta_{tag}_{source}_{name}"  # by its data: RFT's "fixed" reuses RL's with --reuse
        stats_file = model_dir.with_suffix(".json")
        if a.reuse and stats_file.exists() and (model_dir / meta_rm.INFO_FILE).exists():
            stats = json.loads(stats_file.read_text(encoding="utf-8"))
        else:
            stats = meta_rm_train.train_meta_rm(
                backbone, examples, model_dir, train_cfg, num_threads=a.threads, template=sampling.template
            )
            stats_file.write_text(json.dumps({k: v for k, v in stats.items() if k != "loss_curve"}), encoding="utf-8")
        scorer = meta_rm.load_meta_scorer(model_dir, template=sampling.template)
        scored_file = model_dir.with_suffix(f".{a.student}.scored.pkl")  # the test samples with this meta RM's scores
        if a.reuse and scored_file.exists():
            scored = pickle.loads(scored_file.read_bytes())
        else:
            scored = copy.deepcopy(sampled)
            judging.attach_meta_scores(test, scored, scorer)
            scored_file.write_bytes(pickle.dumps(scored))
        record: dict[str, Any] = {"variant": name, "student": a.student, "meta_data_from": source, "project": tag}
        record |= {"overrides": {**stage_over, **train_over}}
        record |= score_table(test, scored, a.k, ev.k_meta or a.k // 2, ev.seed)
        record |= {
            k: round(float(stats.get(k, "nan")), 3)
            for k in ("val_within_item_auc", "val_within_item_auc_all", "val_auc", "selected_step", "n_train")
        }
        val_auc = stats.get("val_within_item_auc")
        record["fallback"] = {  # eval.meta_min_auc = t: below it MetaRM@k is Voting@k (gap 0), else the top-k row
            str(t): meta_vote_for("top", val_auc, t)[0] == "fallback" for t in FALLBACK_AUCS
        }
        record |= {"data": {k: round(v, 3) for k, v in counts.items()}, "truncated": scorer.truncated}
        record["train_and_score_seconds"] = round(time.perf_counter() - t0, 1)
        record_result(record, a.results)


if __name__ == "__main__":
    main()
