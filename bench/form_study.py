"""Per-form study of a finished `grm run`: where the facts style cue is judged right, by whom, and why.

The embedded world's facts queries end in a style cue ("brief"/"full" common, six rare synonyms the teacher
misreads); on "pair" items the reference is stated in both styles, so only a judge that reads the cue right picks
the best response. This script measures each link of the chain the README describes, per group (``arith``, and
facts ``common``/``rare`` x ``pair``/``nopair``):

1. **teacher and rejective sampling** (``rft.sample``): the teacher's sample accuracy, and the share of *accepted*
   RFT trajectories whose principles line names the criterion the cue asks for (on ``nopair`` items a misread cue
   still picks the right response, so rejective sampling keeps the wrong principle there);
2. **every evaluated model** (the ``eval.*`` reports): greedy, both-orders greedy, Voting@1, Voting@8, MetaRM@8 per
   group, and the paired gaps RL - RFT (greedy) and MetaRM@8 - Voting@8;
3. with ``--sample``, **the students' samples** (k at T = 0.5 on the test items, cached): the share whose
   principles line fits the cue, and the run's meta RM's within-item AUC (does it rank an item's correct samples
   above its wrong ones?) per group.

    .venv/bin/python bench/form_study.py --project DIR            # links 1-2, seconds
    .venv/bin/python bench/form_study.py --project DIR --sample   # + link 3 (samples 8 x 1,000 items per student)
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from study_io import read_split, record_result, stage_file, within_item_auc  # bench/ is the script's folder

from grm.method.correctness import is_correct
from grm.schemas import Item
from grm.training.rft import Trajectory
from grm.world.generator import COMMON_CUES, facts_cue, facts_style, family_of, response_value

GROUPS = ("arith", "facts/common/nopair", "facts/common/pair", "facts/rare/nopair", "facts/rare/pair")
CELLS = ("greedy_k1", "greedy_swap_k1", "voting_k1", "voting_k8", "metarm_k8")
PRINCIPLE_RE = re.compile(r"Specific Criteria: \w+ \d+ , (\w+) \d+")


def group_of(item: Item) -> str:
    """The study group of a world item: its family, and for cued facts the cue class and whether it is a pair."""
    family = family_of(item.query)
    if family != "facts":
        return family
    cue = facts_cue(item.query)
    if cue is None:
        return "facts/uncued"
    truth = response_value("facts", item.responses[item.best]) if item.best is not None else None
    pair = truth is not None and sum(response_value("facts", r) == truth for r in item.responses) > 1
    return f"facts/{'common' if cue in COMMON_CUES else 'rare'}/{'pair' if pair else 'nopair'}"


def principle_fits(query: str, text: str) -> bool | None:
    """Whether a facts critique's principles line names the criterion the query's cue asks for (None: no line)."""
    m = PRINCIPLE_RE.search(text)
    return None if m is None else m.group(1) == facts_style(query)


def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(100 * float(np.mean(values)), 1) if values else None


def rejective_links(project: Path, items: dict[str, Item]) -> dict[str, Any]:
    """Link 1: teacher sample accuracy and the principle-fit share of the accepted trajectories, per group."""
    out: dict[str, Any] = {}
    for name in ("samples", "accepted"):
        rows = stage_file(project, "rft.sample", f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
        by_group: dict[str, list[Trajectory]] = defaultdict(list)
        for t in (Trajectory.from_dict(json.loads(r)) for r in rows if r):
            if t.id in items:
                by_group[group_of(items[t.id])].append(t)
        for g, ts in sorted(by_group.items()):
            row = out.setdefault(g, {})
            row[f"{name}_n"] = len(ts)
            if name == "samples":
                row["teacher_sample_accuracy"] = mean(t.correct for t in ts if not t.hinted)
            if g.startswith("facts/"):
                fits = [principle_fits(items[t.id].query, t.completion) for t in ts]
                row[f"{name}_principle_fit"] = mean(f for f in fits if f is not None)
    return out


def eval_links(project: Path, test: dict[str, Item], models: list[str]) -> dict[str, Any]:
    """Link 2: per-group accuracy of every model's eval cells, and paired gaps per group."""
    out: dict[str, Any] = {}
    credits: dict[str, dict[str, dict[str, float]]] = {}
    groups = {i: group_of(it) for i, it in test.items()}
    for model in models:
        try:
            report = json.loads(stage_file(project, f"eval.{model}", "report.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        rows = report["per_item"]
        credits[model] = {r["id"]: r["credit"] for r in rows}
        for g in GROUPS:
            ids = [r["id"] for r in rows if groups[r["id"]] == g]
            out.setdefault(g, {"n_test": len(ids)})
            for cell in CELLS:
                vals = [credits[model][i][cell] for i in ids if cell in credits[model][i]]
                if vals:
                    out[g][f"{model}/{cell}"] = mean(vals)
    for g in GROUPS:
        ids = [i for i, group in groups.items() if group == g]
        if "rft" in credits and "rl" in credits:
            out[g]["gap_rl_minus_rft_greedy"] = mean(
                credits["rl"][i]["greedy_k1"] - credits["rft"][i]["greedy_k1"] for i in ids if i in credits["rl"]
            )
        for model in ("rft", "rl", "teacher"):
            if model in credits:
                c = credits[model]
                out[g][f"gap_{model}_metarm8_minus_voting8"] = mean(
                    c[i]["metarm_k8"] - c[i]["voting_k8"] for i in ids if i in c and "metarm_k8" in c[i]
                )
    return out


def sample_links(project: Path, test_items: list[Item], students: list[str], k: int, out: Path) -> dict[str, Any]:
    """Link 3: principle fit of the students' samples, and the run's meta RM's within-item AUC, per group."""
    from grm import meta_rm
    from grm.method import judging
    from grm.sampling.hf import HFSampler

    scorer = meta_rm.load_meta_scorer(stage_file(project, "meta_rm.train", "model"))
    result: dict[str, Any] = {}
    for student in students:
        cache = out / f"form_samples_{project.name}_{student}_k{k}.pkl"
        if cache.exists():
            sampled = pickle.loads(cache.read_bytes())
        else:
            sampler = HFSampler(stage_file(project, f"{student}.train", "model"), num_threads=2, progress=False)
            sampled = judging.judge_items(
                test_items, sampler, k=k, temperature=0.5, max_new_tokens=50, seed=0, template="compact"
            )
            judging.attach_meta_scores(test_items, sampled, scorer)
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps(sampled))
        by_group: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        scores_by_item: dict[str, dict[str, tuple[list[float], list[float]]]] = defaultdict(dict)
        for it, res in zip(test_items, sampled, strict=True):
            g = group_of(it)
            pos, neg = scores_by_item[g].setdefault(it.id, ([], []))
            for s in res.samples:
                ok = is_correct(s.scores, best=it.best, label=it.label)
                by_group[g]["correct"].append(ok)
                if g.startswith("facts/"):
                    fit = principle_fits(it.query, s.text)
                    if fit is not None:
                        by_group[g]["fit"].append(fit)
                if s.meta_score is not None:
                    (pos if ok else neg).append(s.meta_score)
        for g, d in sorted(by_group.items()):
            auc = within_item_auc(scores_by_item[g])
            result.setdefault(g, {})
            result[g][f"{student}/sample_accuracy"] = mean(d["correct"])
            result[g][f"{student}/principle_fit"] = mean(d["fit"]) if d["fit"] else None
            result[g][f"{student}/meta_within_item_auc"] = None if np.isnan(auc) else round(auc, 3)
    return result


def print_table(title: str, rows: dict[str, dict[str, Any]]) -> None:
    keys = sorted({k for r in rows.values() for k in r})
    print(f"\n## {title}\n")
    print("| group | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for g, r in rows.items():
        print(f"| {g} | " + " | ".join("" if r.get(k) is None else str(r.get(k)) for k in keys) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", type=Path, required=True, help="project dir of a finished `grm run`")
    p.add_argument("--models", default="teacher,sft_unfiltered,rft,rl", help="eval.{model} reports to read")
    p.add_argument("--sample", action="store_true", help="also sample the students (link 3)")
    p.add_argument("--students", default="rft,rl")
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--out", type=Path, default=Path("runs/form_study"))
    p.add_argument("--results", type=Path, default=Path("runs/form_study/results.jsonl"))
    a = p.parse_args()
    train = {it.id: it for it in read_split(a.project, "train")}
    test_items = read_split(a.project, "test")
    test = {it.id: it for it in test_items}
    record: dict[str, Any] = {"project": str(a.project)}
    record["rejective"] = rejective_links(a.project, train)
    print_table("1. teacher samples and accepted RFT data (train split)", record["rejective"])
    record["eval"] = eval_links(a.project, test, a.models.split(","))
    print_table("2. evaluation per group (test split, accuracy %)", record["eval"])
    if a.sample:
        record["samples"] = sample_links(a.project, test_items, a.students.split(","), a.k, a.out)
        print_table(f"3. students' samples (k = {a.k}, T = 0.5, test split)", record["samples"])
    record_result(record, a.results)


if __name__ == "__main__":
    main()
