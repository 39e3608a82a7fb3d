"""Judging items in a given order and scoring one cell: the pieces every protocol shares."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

from grm.benchmarks import scoring
from grm.eval.metrics import summarize
from grm.method import judging, voting
from grm.method.judging import ItemJudgement
from grm.method.verdicts import Verdict
from grm.sampling.base import Sampler
from grm.schemas import DataError, Item

SINGLE_MIDPOINT = 5.5  # middle of the 1..10 score range: the imputed score of an unparsed single response
GENERATIVE_ONLY = ("parse_fail_rate", "item_fail_rate")  # scalar scores are never parsed


def _permuted(item: Item, order: Sequence[int]) -> Item:
    responses = tuple(item.responses[o] for o in order)
    best = list(order).index(item.best) if item.best is not None else None
    return dataclasses.replace(item, responses=responses, best=best, ratings=None)


def judge_in_order(
    items: Sequence[Item],
    orders: Sequence[Sequence[int]],
    sampler: Sampler,
    *,
    max_new_tokens: int,
    seed: int,
    template: str,
    k: int = 1,
    temperature: float = 0.0,
    meta_scorer: Callable[[list[str]], list[float]] | None = None,
) -> list[ItemJudgement]:
    """``k`` judgements per item (default one greedy) with the responses shown in ``orders[i]`` for every sample;
    scores mapped back to the original order (so the result is scored exactly like a shuffled voting sample)."""
    shown = [_permuted(it, o) for it, o in zip(items, orders, strict=True)]
    results = judging.judge_items(
        shown,
        sampler,
        k=k,
        temperature=temperature,
        max_new_tokens=max_new_tokens,
        seed=seed,
        template=template,
        shuffle=False,
        meta_scorer=meta_scorer,
    )
    out = []
    for it, order, res in zip(items, orders, results, strict=True):
        samples = [
            judging.SampleJudgement(
                list(order),
                s.text,
                voting.unshuffle_scores(s.scores, order) if s.scores is not None else None,
                s.status,
                s.meta_score,
            )
            for s in res.samples
        ]
        out.append(ItemJudgement(it.id, it.n, it.best, it.label, res.single_label, samples))
    return out


def cell_metrics(
    items: Sequence[Item], verdicts: Sequence[Verdict], scorer: str, seed: int, midpoint: float = SINGLE_MIDPOINT
) -> dict[str, float]:
    """Accuracy with its interval and the hygiene rates of one cell, plus the benchmark's own scores."""
    metrics = summarize(verdicts, seed=seed)
    means = [None if v.totals is None else [t / max(1, v.n_voted) for t in v.totals] for v in verdicts]
    metrics.update(
        scoring.score_benchmark(
            scorer,
            items,
            [v.credit for v in verdicts],
            [v.score for v in verdicts],
            score_midpoint=midpoint,
            totals=means,
        )
    )
    return metrics


def decided(v: Verdict) -> bool:
    return v.totals is not None and not v.tied


def check_scores(items: Sequence[Item], scores: Mapping[str, Sequence[float]], source: str) -> None:
    """Every item has a score list of its length in ``scores``; else DataError naming each bad id."""
    errors = []
    for it in items:
        if it.id not in scores:
            errors.append(f"{source}: {it.id}: scores: missing (no line with this id)")
        elif len(scores[it.id]) != it.n:
            errors.append(f"{source}: {it.id}: scores: {len(scores[it.id])} numbers for {it.n} responses")
    if errors:
        raise DataError(source, errors)
