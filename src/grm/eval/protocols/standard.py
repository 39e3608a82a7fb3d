"""The standard protocol: greedy over a seeded order, Voting@k / MetaRM@k over per-sample shuffles, judge hygiene.

- **greedy_k1**: one judgement at temperature 0. The order the judge sees is a seeded per-item permutation by
  default (``greedy_order="shuffled"``), like RewardBench's official coin flip, because the converters store the
  chosen response first; ``"original"`` keeps the stored order (then a position-biased judge looks perfect).
- **voting_k{k}** / **metarm_k{k}**: every k in ``ks`` is read from ONE set of ``k_max`` samples at
  ``temperature`` (each sample with its own seeded shuffle); MetaRM@k keeps the top ``k_meta`` samples
  (``meta_vote="top"``), lets every parsed sample vote weighted by its meta score (``weighted``), or is Voting@k
  (``fallback``, marked ``fell_back`` = 1 in every MetaRM@k cell). A single
  response's score (ReaLMistake ROC-AUC) is the mean over the samples that voted (``grm.method.verdicts.decide``).
- Ties are settled by ``tie_policy`` (``random`` = paper, ``strict``, ``half``, or ``official`` = the benchmark's
  own rule from ``BenchmarkSpec.official_tie_policy``); the report states the one used.
- Hygiene: ``parse_fail_rate`` and ``tie_rate`` in every cell; ``greedy_k1/position_flip_rate`` = share of
  multi-response items, decided (parsed, untied) in both orders, whose greedy pick changes when the shown order is
  reversed; ``voting_k{k_max}/seed_agreement`` = share of items with the same predicted best (or label) in a second
  run with ``seed + 1``.
- **greedy_swap_k1** (with hygiene): the greedy credit averaged over the shown order and its reverse, per item (n = 1
  items: the one greedy credit); plain mean accuracy with a bootstrap interval, and the benchmark's own scores on
  those credits (RewardBench sections, RMB sections, RM-Bench's matrix; not for scorers that need scores:
  ``Scorer.needs_scores``). A judge whose pick flips with the order (the world's students: 8-35% of items) moves
  single-order greedy by a point or more from one seeded order to the next; for two-response items both orders are
  all the orders, so model comparisons use it beside ``greedy_k1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from grm.benchmarks import scoring
from grm.eval.judge import GENERATIVE_ONLY, cell_metrics, check_scores, decided, judge_in_order
from grm.eval.metric_key import FELL_BACK, GREEDY, GREEDY_SWAP, METARM, VOTING, Cell
from grm.eval.metrics import bootstrap_ci
from grm.eval.protocols.base import SCALAR_CELL, EvalProtocol, MetaScorer
from grm.eval.spec import EvalReport, EvalSpec
from grm.method import judging, voting
from grm.method.verdicts import Verdict, decide, tie_credit
from grm.sampling.base import Sampler
from grm.schemas import Item

GREEDY_CELL, SWAP_CELL = str(Cell(GREEDY, 1)), str(Cell(GREEDY_SWAP, 1))


def _greedy_order(spec: EvalSpec, it: Item) -> list[int]:
    if spec.greedy_order == "original":
        return list(range(it.n))
    return voting.shuffle_order(it.n, spec.seed, it.id, -1)  # sample index -1: distinct from voting's 0..k-1


def _swap_cell(items: Sequence[Item], passes: list[list[Verdict]], scorer: str, seed: int) -> tuple[dict, list]:
    """``greedy_swap_k1``: per item the mean greedy credit over the orders it was judged in."""
    credits = [float(np.mean([v.credit for v in vs])) for vs in passes]
    lo, hi = bootstrap_ci(credits, seed=seed)
    verdicts = [v for vs in passes for v in vs]
    cell = {
        "accuracy": float(np.mean(credits)),
        "accuracy_ci_low": lo,
        "accuracy_ci_high": hi,
        "parse_fail_rate": sum(v.n_failed for v in verdicts) / max(1, sum(v.n_used for v in verdicts)),
        "tie_rate": float(np.mean([np.mean([v.tied for v in vs]) for vs in passes])),
        "n_items": float(len(passes)),
    }
    if not scoring.get_scorer(scorer).needs_scores:
        cell.update(scoring.score_benchmark(scorer, items, credits))
    return cell, credits


def greedy_cells(
    items: Sequence[Item], sampler: Sampler, spec: EvalSpec, policy: str, scorer: str
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]], list[Verdict]]:
    """``greedy_k1`` and, with hygiene, its position-flip rate and ``greedy_swap_k1``.

    Returns:
        (cells, per-item credits by cell, the greedy verdicts).
    """
    gen = {"max_new_tokens": spec.max_new_tokens, "template": spec.template, "seed": spec.seed}
    orders = [_greedy_order(spec, it) for it in items]
    greedy_v = [
        decide(j, k=1, seed=spec.seed, tie_policy=policy) for j in judge_in_order(items, orders, sampler, **gen)
    ]
    cells = {GREEDY_CELL: cell_metrics(items, greedy_v, scorer, spec.seed)}
    credits = {GREEDY_CELL: [v.credit for v in greedy_v]}
    multi = [i for i, it in enumerate(items) if it.n >= 2]
    if not spec.hygiene or not multi:
        return cells, credits, greedy_v
    rev = judge_in_order([items[i] for i in multi], [orders[i][::-1] for i in multi], sampler, **gen)
    rev_v = [decide(j, k=1, seed=spec.seed, tie_policy=policy) for j in rev]
    both = [(greedy_v[i], r) for i, r in zip(multi, rev_v, strict=True) if decided(greedy_v[i]) and decided(r)]
    cells[GREEDY_CELL]["position_flip_rate"] = (
        float(np.mean([a.predicted != b.predicted for a, b in both])) if both else float("nan")
    )
    cells[GREEDY_CELL]["position_n_decided"] = float(len(both))
    passes = [[v] for v in greedy_v]  # per item: its greedy verdicts, shown order then reversed
    for i, r in zip(multi, rev_v, strict=True):
        passes[i].append(r)
    cells[SWAP_CELL], credits[SWAP_CELL] = _swap_cell(items, passes, scorer, spec.seed)
    return cells, credits, greedy_v


def sampled_cells(
    items: Sequence[Item],
    sampler: Sampler,
    spec: EvalSpec,
    meta_scorer: MetaScorer | None,
    policy: str,
    scorer: str,
) -> tuple[dict[str, dict[str, float]], dict[str, list[float]], dict[int, list[Verdict]]]:
    """``voting_k{k}`` / ``metarm_k{k}`` from one set of ``k_max`` shuffled samples, and the seed agreement.

    Returns:
        (cells, per-item credits by cell, the voting verdicts by k).
    """
    gen = {"max_new_tokens": spec.max_new_tokens, "template": spec.template, "temperature": spec.temperature}
    k_max = spec.k_max
    sampled = judging.judge_items(
        items, sampler, k=k_max, seed=spec.seed, shuffle=True, meta_scorer=meta_scorer, **gen
    )  # type: ignore[arg-type]
    cells: dict[str, dict[str, float]] = {}
    credits: dict[str, list[float]] = {}
    voting_v: dict[int, list[Verdict]] = {}
    vote = spec.meta_vote  # read by MetaRM@k only
    for method in [m for m in (VOTING, METARM) if m in spec.methods]:
        for k in spec.ks:
            verdicts = [
                decide(j, k=k, method=method, k_meta=spec.k_meta, seed=spec.seed, tie_policy=policy, meta_vote=vote)
                for j in sampled
            ]
            cells[str(Cell(method, k))] = cell_metrics(items, verdicts, scorer, spec.seed)
            if method == METARM and spec.meta_vote == "fallback":
                cells[str(Cell(method, k))][FELL_BACK] = 1.0  # the marker: these MetaRM@k cells are Voting@k
            credits[str(Cell(method, k))] = [v.credit for v in verdicts]
            if method == VOTING:
                voting_v[k] = verdicts
    if spec.runs_seed_agreement:
        again = judging.judge_items(items, sampler, k=k_max, seed=spec.seed + 1, shuffle=True, **gen)  # type: ignore[arg-type]
        again_v = [decide(j, k=k_max, seed=spec.seed + 1, tie_policy=policy) for j in again]
        same = [a.predicted == b.predicted for a, b in zip(voting_v[k_max], again_v, strict=True)]
        cells[str(Cell(VOTING, k_max))]["seed_agreement"] = float(np.mean(same))
    return cells, credits, voting_v


def _per_item(
    items: Sequence[Item], credits: dict[str, list[float]], greedy_v: list[Verdict], voting_v: dict[int, list[Verdict]]
) -> list[dict[str, Any]]:
    k_max = max(voting_v) if voting_v else None
    rows = []
    for i, it in enumerate(items):
        row: dict[str, Any] = {"id": it.id, "subset": it.subset, "best": it.best, "label": it.label}
        row["credit"] = {cell: values[i] for cell, values in credits.items()}  # per-item accuracy: paired gaps
        row["greedy_predicted"], row["greedy_totals"] = greedy_v[i].predicted, greedy_v[i].totals
        if k_max is not None:
            row[f"{Cell(VOTING, k_max)}_predicted"] = voting_v[k_max][i].predicted
            row[f"{Cell(VOTING, k_max)}_totals"] = voting_v[k_max][i].totals
        rows.append(row)
    return rows


def evaluate_standard(
    items: Sequence[Item], sampler: Sampler, spec: EvalSpec, meta_scorer: MetaScorer | None
) -> EvalReport:
    """The standard protocol for a sampler-backed GRM (module docstring): greedy, Voting@k, MetaRM@k, hygiene."""
    policy, official = spec.resolved_tie_policy()
    scorer = spec.resolved_scorer()
    cells, credits, greedy_v = greedy_cells(items, sampler, spec, policy, scorer)
    sampled, sampled_credits, voting_v = sampled_cells(items, sampler, spec, meta_scorer, policy, scorer)
    cells |= sampled
    settings = {
        "ks": list(spec.ks),
        "methods": list(spec.methods),
        "k_meta": spec.k_meta,
        **({"meta_vote": spec.meta_vote} if METARM in spec.methods else {}),
        "temperature": spec.temperature,
        "max_new_tokens": spec.max_new_tokens,
        "seed": spec.seed,
        "template": spec.template,
        "tie_policy": policy,
        "greedy_order": spec.greedy_order,
        "scorer": scorer,
    }
    per_item = _per_item(items, credits | sampled_credits, greedy_v, voting_v)
    return EvalReport(spec.benchmark, spec.model_name, policy, official, settings, cells, len(items), per_item)


def score_standard(
    items: Sequence[Item], scores: Mapping[str, Sequence[float]], spec: EvalSpec, source: str
) -> EvalReport:
    """A scalar RM's scores through the same verdict and benchmark scoring code (cell ``scalar_k1``): the top score
    wins (ties per the tie policy); a single response is correct when its score is above ``single_threshold``."""
    policy, official = spec.resolved_tie_policy()
    scorer = spec.resolved_scorer()
    check_scores(items, scores, source)
    verdicts = []
    for it in items:
        s = list(scores[it.id])
        if it.n == 1:
            pred = int(s[0] > spec.single_threshold)
            verdicts.append(Verdict(it.id, float(pred == it.label), False, pred, s, 0, 1, s[0], 1))
            continue
        top = max(s)
        winners = [i for i, x in enumerate(s) if x == top]
        credit, pick = tie_credit(winners, int(it.best), policy, spec.seed, it.id)  # type: ignore[arg-type]
        verdicts.append(Verdict(it.id, credit, len(winners) > 1, pick, s, 0, 1, None, 1))
    cell = cell_metrics(items, verdicts, scorer, spec.seed)
    for generative_only in GENERATIVE_ONLY:
        cell.pop(generative_only, None)
    per_item = [
        {"id": it.id, "subset": it.subset, "best": it.best, "label": it.label, "predicted": v.predicted}
        for it, v in zip(items, verdicts, strict=True)
    ]
    settings = {"seed": spec.seed, "tie_policy": policy, "scorer": scorer, "single_threshold": spec.single_threshold}
    cells = {str(SCALAR_CELL): cell}
    return EvalReport(spec.benchmark, spec.model_name, policy, official, settings, cells, len(items), per_item)


PROTOCOL = EvalProtocol(
    "standard",
    evaluate_standard,
    score_standard,
    swap_cell=True,
    description="greedy over a seeded order + Voting@k / MetaRM@k over per-sample shuffles",
)
