"""Learnability study of the embedded world: does rejective sampling (RFT) beat unfiltered teacher samples, and
does voting beat single samples, for a tiny student trained on 2 CPU cores?

Pipeline: world -> noisy teacher samples (3 shuffled samples per train item + 1 hinted) -> two SFT data sets of the
same size (rejective: correct samples of not-too-easy items + correct hinted samples trained on the un-hinted
prompt; unfiltered: random teacher samples) -> SFT of the same tiny init on each (+ general-instruction mix) ->
test: greedy accuracy, single-sample accuracy at T, Voting@k at T (seeded shuffles, seeded tie-break).

    .venv/bin/python bench/world_study.py --steps 1500 --out runs/world_study
    .venv/bin/python bench/world_study.py --seed 1 --variants rft,unfiltered,rft_nomix
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import torch

from grm.method.correctness import is_correct
from grm.method.parsing import extract_scores
from grm.method.prompts import render_prompt, score_range
from grm.method.voting import pick_best, shuffle_order, unshuffle_scores, vote_sum
from grm.schemas import Item
from grm.world import TeacherConfig, TeacherSampler, WorldConfig, general_instruction_examples, generate_world
from grm.world.model import ModelTinyConfig, build_tiny_model
from grm.world.tokenizer import build_tokenizer

log = logging.getLogger("world_study")


def prompt_for(item: Item, order: list[int], hint: bool = False) -> tuple[str, int | None]:
    """Compact prompt of ``item`` in ``order``; returns (prompt, best position in shown order or None)."""
    shown = [item.responses[i] for i in order]
    single = item.n == 1
    best_pos = None if single else order.index(item.best)
    h = best_pos + 1 if hint and best_pos is not None else None
    return render_prompt(item.query, shown, template="compact", hint=h, single_label=single), best_pos


def judged_correct(item: Item, text: str, best_pos: int | None, single_label: bool) -> bool:
    low, high = score_range(single_label=single_label)
    parsed = extract_scores(text, item.n, low, high)
    return is_correct(parsed.scores, best=best_pos, label=item.label if item.n == 1 else None)


def teacher_samples(items: list[Item], teacher: TeacherSampler, seed: int, k: int = 3) -> list[dict]:
    """k un-hinted + 1 hinted teacher samples per item with fresh seeded shuffles."""
    records = []
    for item in items:
        rows = []
        for s in range(k + 1):
            hinted = s == k
            order = shuffle_order(item.n, seed, item.id, s)
            prompt, best_pos = prompt_for(item, order, hint=hinted and item.n > 1)
            plain, _ = prompt_for(item, order, hint=False)
            text = teacher.generate([prompt], 1, 1.0, 96, seed + s)[0][0]
            ok = judged_correct(item, text, best_pos, item.n == 1)
            rows.append({"prompt": plain, "completion": text, "correct": ok, "hinted": hinted})
        records.append({"item": item, "samples": rows})
    return records


def build_sets(records: list[dict], seed: int, k: int = 3) -> tuple[list[dict], list[dict], dict]:
    """(rejective set, unfiltered set of the same size, stats)."""
    rft, pool = [], []
    too_easy = 0
    for rec in records:
        plain = rec["samples"][:k]
        hinted = rec["samples"][k]
        pool.extend(plain)
        n_ok = sum(s["correct"] for s in plain)
        if n_ok == k:
            too_easy += 1
        else:
            rft.extend({"prompt": s["prompt"], "completion": s["completion"]} for s in plain if s["correct"])
        if hinted["correct"] and rec["item"].n > 1:
            rft.append({"prompt": hinted["prompt"], "completion": hinted["completion"]})
    rng = random.Random(seed)
    picked = rng.sample(pool, min(len(rft), len(pool)))
    unf = [{"prompt": s["prompt"], "completion": s["completion"]} for s in picked]
    n_plain = sum(len(r["samples"][:k]) for r in records)
    stats = {
        "teacher_acc": sum(s["correct"] for r in records for s in r["samples"][:k]) / n_plain,
        "teacher_hinted_acc": float(
            np.mean([r["samples"][k]["correct"] for r in records if r["item"].n > 1] or [0.0])
        ),
        "too_easy_items": too_easy,
        "rft_examples": len(rft),
        "unfiltered_examples": len(unf),
        "unfiltered_correct_share": float(np.mean([s["correct"] for s in picked] or [0.0])),
    }
    return rft, unf, stats


def evaluate(sampler, items: list[Item], seed: int, k: int, temperature: float, max_new: int) -> dict:
    """Greedy, single-sample and Voting@k accuracy (n >= 2 items), plus greedy 0/1 accuracy on n == 1 items."""
    multi = [it for it in items if it.n > 1]
    single = [it for it in items if it.n == 1]
    # greedy: sample 0's order
    g_prompts, g_best = [], []
    for it in multi:
        p, b = prompt_for(it, shuffle_order(it.n, seed, it.id, 0))
        g_prompts.append(p)
        g_best.append(b)
    t0 = time.perf_counter()
    g_out = [row[0] for row in sampler.generate(g_prompts, 1, 0.0, max_new, seed)]
    greedy = []
    greedy_pick = []
    parse_fail = 0
    for it, text, b in zip(multi, g_out, g_best, strict=True):
        parsed = extract_scores(text, it.n)
        parse_fail += parsed.scores is None
        greedy.append(is_correct(parsed.scores, best=b))
        if parsed.scores is None:
            greedy_pick.append(False)
        else:
            greedy_pick.append(pick_best(parsed.scores, seed, it.id).index == b)
    # single-response items, single-label template
    s_prompts = [prompt_for(it, [0])[0] for it in single]
    s_out = [row[0] for row in sampler.generate(s_prompts, 1, 0.0, max_new, seed)] if single else []
    single_acc = [judged_correct(it, t, None, True) for it, t in zip(single, s_out, strict=True)]
    greedy_s = time.perf_counter() - t0
    # k sampled judgements with fresh shuffles
    t0 = time.perf_counter()
    v_prompts, v_orders = [], []
    for it in multi:
        for s in range(k):
            order = shuffle_order(it.n, seed, it.id, 100 + s)
            v_prompts.append(prompt_for(it, order)[0])
            v_orders.append(order)
    v_out = [row[0] for row in sampler.generate(v_prompts, 1, temperature, max_new, seed + 1)]
    sample_acc, vote_acc, vote_ties, sample_fail = [], [], 0, 0
    for i, it in enumerate(multi):
        per = []
        for s in range(k):
            text, order = v_out[i * k + s], v_orders[i * k + s]
            parsed = extract_scores(text, it.n)
            if parsed.scores is None:
                sample_fail += 1
                per.append(None)
                sample_acc.append(False)
                continue
            orig = unshuffle_scores(parsed.scores, order)
            per.append(orig)
            sample_acc.append(is_correct(orig, best=it.best))
        totals = vote_sum(per, it.n)
        if totals is None:
            vote_acc.append(False)
            continue
        pick = pick_best(totals, seed, it.id)
        vote_ties += pick.tied
        vote_acc.append(pick.index == it.best)
    vote_s = time.perf_counter() - t0
    return {
        "n_multi": len(multi),
        "greedy": float(np.mean(greedy)),
        "greedy_pick": float(np.mean(greedy_pick)),
        "greedy_parse_fail": parse_fail / max(len(multi), 1),
        "single_T": float(np.mean(sample_acc)),
        "vote": float(np.mean(vote_acc)),
        "vote_ties": vote_ties / max(len(multi), 1),
        "sample_parse_fail": sample_fail / max(len(sample_acc), 1),
        "n1_greedy": float(np.mean(single_acc)) if single_acc else float("nan"),
        "greedy_vec": [int(x) for x in greedy],
        "by_family": {
            fam: float(np.mean([g for it, g in zip(multi, greedy, strict=True) if it.subset == fam]))
            for fam in sorted({it.subset for it in multi})
        },
        "eval_seconds": round(greedy_s + vote_s, 1),
    }


def bootstrap_gap(a: list[int], b: list[int], seed: int = 0, reps: int = 2000) -> tuple[float, float, float]:
    """Paired bootstrap of mean(a) - mean(b): (gap, low 2.5%, high 97.5%)."""
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(reps, len(x)))
    means = x[idx].mean(axis=1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0, help="world seed (teacher and training seeds derive from it)")
    ap.add_argument("--out", default="runs/world_study", help="work folder (models, tokenizer, results.json)")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--n-train", type=int, default=4000)
    ap.add_argument("--n-test", type=int, default=1200)
    ap.add_argument("--error-rate", type=float, default=None, help="teacher error knob (default TeacherConfig())")
    ap.add_argument("--k", type=int, default=8, help="voting samples")
    ap.add_argument("--temperature", type=float, default=0.5)
    ap.add_argument("--max-new", type=int, default=72)
    ap.add_argument("--world", default="{}", help='WorldConfig overrides as JSON, e.g. {"n_entities": 60}')
    ap.add_argument("--general-ratio", type=float, default=None, help="general examples per trajectory (pipeline mix)")
    ap.add_argument("--layers", type=int, default=None, help="tiny model layers (default ModelTinyConfig())")
    ap.add_argument("--variants", default="unfiltered,rft", help="comma list of: rft, unfiltered, rft_nomix")
    ap.add_argument("--threads", type=int, default=1, help="sampling threads (1 is fastest on a busy 2-core box)")
    ap.add_argument("--train-threads", type=int, default=2, help="training threads")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("transformers", "datasets", "trl", "accelerate", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    from grm.sampling.hf import HFSampler
    from grm.training.sft import RFTTrainConfig, train_sft

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()
    wcfg = WorldConfig(seed=args.seed, n_train=args.n_train, n_val=0, n_test=args.n_test, **json.loads(args.world))
    world = generate_world(wcfg)
    tcfg = TeacherConfig.from_error_rate(args.error_rate) if args.error_rate is not None else TeacherConfig()
    teacher = TeacherSampler(seed=args.seed + 1000, world=wcfg, config=tcfg)
    t0 = time.perf_counter()
    records = teacher_samples(world["train"], teacher, seed=args.seed)
    rft, unf, stats = build_sets(records, seed=args.seed)
    general = general_instruction_examples(wcfg, seed=args.seed)
    stats["general_examples"] = len(general)
    stats["teacher_seconds"] = round(time.perf_counter() - t0, 1)
    log.info("data: %s", stats)
    tok_dir = build_tokenizer(wcfg, out / "tokenizer")
    shape = ModelTinyConfig() if args.layers is None else ModelTinyConfig(num_layers=args.layers)
    base = build_tiny_model(tok_dir, out / "base", shape, seed=args.seed)
    if args.general_ratio is not None:  # the pipeline's mix: ratio x trajectories, drawn with replacement
        rng = random.Random(args.seed)
        n_gen = round(len(rft) * args.general_ratio)
        general = [rng.choice(general) for _ in range(n_gen)]
    sets = {"rft": rft + general, "unfiltered": unf + general, "rft_nomix": rft}
    results: dict[str, dict] = {}
    for name in args.variants.split(","):
        data = sets[name]
        cfg = RFTTrainConfig(
            learning_rate=args.lr,
            max_steps=args.steps,
            batch_size=args.batch,
            seed=args.seed,
            logging_steps=100,
            num_threads=args.train_threads,
        )
        m = train_sft(base, data, out / name, cfg)
        sampler = HFSampler(out / name, num_threads=args.threads, batch_size=128, progress=False)
        ev = evaluate(sampler, world["test"], args.seed, args.k, args.temperature, args.max_new)
        ev["train"] = m
        results[name] = ev
        log.info("%s: %s", name, {k: v for k, v in ev.items() if k != "greedy_vec"})
    # table
    print(f"\nworld seed {args.seed}; test items n>=2: {next(iter(results.values()))['n_multi']}; data: {stats}")
    hdr = f"{'variant':<12}{'greedy':>8}{'g_pick':>8}{'T-single':>9}{'Vote@' + str(args.k):>8}{'ties':>6}"
    hdr += f"{'n=1':>7}{'fail':>6}{'train_s':>8}{'eval_s':>7}  by family (greedy)"
    print(hdr)
    for name, ev in results.items():
        print(
            f"{name:<12}{ev['greedy']:>8.3f}{ev['greedy_pick']:>8.3f}{ev['single_T']:>9.3f}{ev['vote']:>8.3f}"
            f"{ev['vote_ties']:>6.2f}{ev['n1_greedy']:>7.3f}{ev['sample_parse_fail']:>6.3f}"
            f"{ev['train']['train_seconds']:>8.0f}{ev['eval_seconds']:>7.0f}  {ev['by_family']}"
        )
    if "rft" in results and "unfiltered" in results:
        gap, lo, hi = bootstrap_gap(results["rft"]["greedy_vec"], results["unfiltered"]["greedy_vec"], args.seed)
        print(f"RFT - unfiltered greedy: {gap:+.3f}  (95% paired bootstrap [{lo:+.3f}, {hi:+.3f}])")
    print(f"total wall {time.perf_counter() - t_all:.0f} s")
    (out / "results.json").write_text(json.dumps({"stats": stats, "results": results}, indent=1))


if __name__ == "__main__":
    main()
