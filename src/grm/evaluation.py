"""Evaluate a GRM (or a scalar RM's scores) on canonical items: greedy, Voting@k, MetaRM@k, judge hygiene.

Pure core: no tracking, no orchestration, no file I/O except through the callers. Protocol (SPEC §5, §7):

- **greedy_k1**: one judgement at temperature 0. The order the judge sees is a seeded per-item permutation by
  default (``greedy_order="shuffled"``), like RewardBench's official coin flip, because the converters store the
  chosen response first; ``"original"`` keeps the stored order (then a position-biased judge looks perfect).
- **voting_k{k}** / **metarm_k{k}**: every k in ``ks`` is read from ONE set of ``k_max`` samples at
  ``temperature`` (each sample with its own seeded shuffle); MetaRM@k keeps the top ``k_meta`` samples. A single
  response's score (ReaLMistake ROC-AUC) is the mean over the samples that voted (``grm.verdicts.decide``).
- Ties are settled by ``tie_policy`` (``random`` = paper, ``strict``, ``half``, or ``official`` = the benchmark's
  own rule from ``BenchmarkSpec.official_tie_policy``); the report states the one used.
- Hygiene: ``parse_fail_rate`` and ``tie_rate`` in every cell; ``greedy_k1/position_flip_rate`` = share of
  multi-response items, decided (parsed, untied) in both orders, whose greedy pick changes when the shown order is
  reversed; ``voting_k{k_max}/seed_agreement`` = share of items with the same predicted best (or label) in a second
  run with ``seed + 1``.
- **greedy_swap_k1** (with hygiene): the greedy credit averaged over the shown order and its reverse, per item (n = 1
  items: the one greedy credit); plain mean accuracy with a bootstrap interval, and the benchmark's own scores on
  those credits (RewardBench sections, RMB sections, RM-Bench's matrix; not for ReaLMistake's ROC-AUC or
  RewardBench 2's Ties, which need scores). A judge whose pick flips with the
  order (the world's students: 8-35% of items) moves single-order greedy by a point or more from one seeded order
  to the next; for two-response items both orders are all the orders, so model comparisons use it beside
  ``greedy_k1``.

Metric names: ``eval/{benchmark}/{model}/{method}_k{k}/{metric}``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from grm import judging, voting
from grm.benchmarks import registry, scoring
from grm.judging import ItemJudgement
from grm.metrics import bootstrap_ci, summarize
from grm.sampling.base import Sampler
from grm.schemas import DataError, Item
from grm.verdicts import TIE_POLICIES, Verdict, decide, tie_credit

log = logging.getLogger(__name__)

GREEDY, VOTING, METARM, SCALAR = "greedy", "voting", "metarm", "scalar"
GREEDY_SWAP = "greedy_swap"  # greedy averaged over the shown order and its reverse
GREEDY_ORDERS = ("shuffled", "original")
OFFICIAL = "official"
# scorers that need per-item scores, not credits: the order-averaged greedy cell keeps plain accuracy for them
ORDER_AVERAGE_UNSCORED = ("realmistake", "rewardbench2")
SINGLE_MIDPOINT = 5.5  # middle of the 1..10 score range: the imputed score of an unparsed single response
_NAME_RE = re.compile(r"[^A-Za-z0-9_.\-]+")


@dataclass
class EvalReport:
    """Everything one (benchmark, model) evaluation produced."""

    benchmark: str
    model_name: str
    tie_policy: str  # the policy actually applied
    official_tie_policy: str | None
    settings: dict[str, Any]
    cells: dict[str, dict[str, float]]  # "greedy_k1" / "voting_k8" / "scalar_k1" -> metric -> value
    n_items: int
    per_item: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, float | None]:
        """Flat ``eval/{benchmark}/{model}/{cell}/{metric}`` -> value (NaN becomes None)."""
        prefix = f"eval/{metric_name(self.benchmark)}/{metric_name(self.model_name)}"
        return {
            f"{prefix}/{cell}/{name}": (None if isinstance(v, float) and math.isnan(v) else v)
            for cell, values in self.cells.items()
            for name, v in values.items()
        }


def metric_name(text: str) -> str:
    """Make ``text`` safe as one metric-name segment (no ``/``).

    Example:
        >>> metric_name("runs/tiny model")
        'runs_tiny_model'
    """
    return _NAME_RE.sub("_", text).strip("_") or "unnamed"


HELDOUT = "heldout"  # the benchmark segment of a data folder's held-out metrics, whatever the folder is called


def heldout_benchmark(source: str) -> str:
    """The benchmark segment of the pipeline's held-out metrics: ``world`` for the embedded world (``data.source``),
    else the fixed name ``heldout`` for any data folder.

    Never the folder's name: a weekly drop in ``data/2026-w50/`` must log the same metric names as last week's
    ``data/2026-w49/``, or the registry gate finds no champion value to compare with. The dataset's identity is
    kept elsewhere: the parent run's dataset inputs (``tasks.tracking.log_datasets``) and its ``grm.data.source``
    tag.

    Example:
        >>> heldout_benchmark("world"), heldout_benchmark("data/my prefs/"), heldout_benchmark("data/2026-w50")
        ('world', 'heldout', 'heldout')
    """
    return "world" if source == "world" else HELDOUT


def model_label(spec: str) -> str:
    """A short model name from a model dir or URL: the last path part (``/runs/grm-27b`` -> ``grm-27b``)."""
    return metric_name(spec.rstrip("/").split("/")[-1].removeprefix("vllm:"))


def resolve_tie_policy(tie_policy: str, benchmark: str) -> tuple[str, str | None]:
    """(policy to apply, the benchmark's official policy or None for unregistered benchmarks)."""
    try:
        official: str | None = registry.get_benchmark(benchmark).official_tie_policy
    except KeyError:
        official = None
    if tie_policy == OFFICIAL:
        return official or "strict", official
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"Unknown tie_policy {tie_policy!r}. Available: {', '.join(TIE_POLICIES + (OFFICIAL,))}")
    return tie_policy, official


def resolve_scorer(benchmark: str, scorer: str | None) -> str:
    """The registered benchmark's scorer, ``scorer`` if given, else plain ``accuracy``."""
    if scorer is not None:
        return scorer
    try:
        return registry.get_benchmark(benchmark).scorer
    except KeyError:
        return "accuracy"


def resolve_protocol(benchmark: str, protocol: str | None) -> str:
    """``protocol`` if given, else the registered benchmark's (``BenchmarkSpec.protocol``), else ``standard``."""
    if protocol is not None:
        if protocol not in registry.PROTOCOLS:
            raise ValueError(f"Unknown protocol {protocol!r}. Available: {', '.join(registry.PROTOCOLS)}")
        return protocol
    try:
        return registry.get_benchmark(benchmark).protocol
    except KeyError:
        return "standard"


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


def _cell(
    items: Sequence[Item], verdicts: Sequence[Verdict], scorer: str, seed: int, midpoint: float = SINGLE_MIDPOINT
) -> dict[str, float]:
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


def _decided(v: Verdict) -> bool:
    return v.totals is not None and not v.tied


def evaluate(
    items: Sequence[Item],
    sampler: Sampler,
    *,
    benchmark: str,
    model_name: str,
    ks: Sequence[int] = (1, 8),
    methods: Sequence[str] = (VOTING,),
    meta_scorer: Callable[[list[str]], list[float]] | None = None,
    k_meta: int | None = None,
    temperature: float = 0.5,
    max_new_tokens: int = 512,
    seed: int = 0,
    template: str = "deepseek-grm",
    tie_policy: str = "random",
    scorer: str | None = None,
    greedy_order: str = "shuffled",
    hygiene: bool = True,
    seed_agreement: bool | None = None,
    protocol: str | None = None,
    meta_vote: str = "top",
) -> EvalReport:
    """Evaluate a sampler-backed GRM on ``items`` under the benchmark's protocol: the one entry point for every
    benchmark (CLI and pipeline). ``two_game`` (JudgeBench) and ``style_matrix`` (RM-Bench) run in
    ``grm.protocols``; ``standard`` is described below.

    Args:
        items: canonical items of one benchmark.
        sampler: any ``Sampler``.
        benchmark: benchmark name (registered names pick their official scorer and tie rule).
        model_name: name used in metric names.
        ks: sample counts for Voting@k / MetaRM@k; all read from one set of ``max(ks)`` samples.
        methods: ``voting`` and/or ``metarm`` (``metarm`` needs ``meta_scorer``); greedy is always run.
        meta_scorer: batch meta RM (meta-RM prompts -> scores).
        k_meta: samples kept by the meta RM (default k // 2).
        temperature: sampling temperature of the voting samples (paper: 0.5).
        max_new_tokens: generation budget per judgement.
        seed: seeds shuffles, sampling and tie breaks; the same seed gives the same report.
        template: prompt template.
        tie_policy: ``random`` | ``strict`` | ``half`` | ``official``.
        scorer: override the benchmark's scorer (``grm.benchmarks.scoring.score_benchmark``).
        greedy_order: ``shuffled`` (seeded per item) or ``original`` (stored order).
        hygiene: also run the reversed-order greedy pass (and, unless ``seed_agreement`` is False, the second-seed
            voting pass).
        seed_agreement: run the second-seed voting pass (doubles the sampling cost); None = follow ``hygiene``.
        protocol: override the benchmark's protocol (``registry.PROTOCOLS``); None = the registered one. The
            two-game protocol ignores ``tie_policy``, ``greedy_order``, ``hygiene`` and ``seed_agreement`` (its two
            games are the order check; ties follow its own rule).
        meta_vote: how MetaRM@k uses the meta scores (``grm.verdicts.META_VOTES``: ``top`` keeps ``k_meta``,
            ``weighted``, ``fallback`` = Voting@k, marked by ``fell_back`` = 1 in every MetaRM@k cell); standard
            protocol only.

    Returns:
        The report; ``report.metrics()`` gives the flat metric names.
    """
    if not items:
        raise ValueError(f"{benchmark}: no items to evaluate")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ValueError(f"ks must be positive integers, got {ks}")
    unknown = set(methods) - {VOTING, METARM}
    if unknown:
        raise ValueError(f"Unknown method(s) {sorted(unknown)}. Available: {VOTING}, {METARM}")
    if METARM in methods and meta_scorer is None:
        raise ValueError("method 'metarm' needs a meta RM: pass meta_scorer (CLI: --meta-rm DIR)")
    if greedy_order not in GREEDY_ORDERS:
        raise ValueError(f"Unknown greedy_order {greedy_order!r}. Available: {', '.join(GREEDY_ORDERS)}")
    protocol = resolve_protocol(benchmark, protocol)
    if protocol != "standard":
        from grm import protocols  # imports this module

        if protocol == "two_game":
            return protocols.evaluate_two_game(
                items, sampler, benchmark=benchmark, model_name=model_name, ks=ks, methods=methods,
                meta_scorer=meta_scorer, k_meta=k_meta, temperature=temperature, max_new_tokens=max_new_tokens,
                seed=seed, template=template, scorer=scorer,
            )  # fmt: skip
        return protocols.evaluate_style_matrix(
            items, sampler, benchmark=benchmark, model_name=model_name, ks=ks, methods=methods,
            meta_scorer=meta_scorer, k_meta=k_meta, temperature=temperature, max_new_tokens=max_new_tokens,
            seed=seed, template=template, tie_policy=tie_policy, scorer=scorer, greedy_order=greedy_order,
            hygiene=hygiene, seed_agreement=seed_agreement,
        )  # fmt: skip
    policy, official = resolve_tie_policy(tie_policy, benchmark)
    scorer = resolve_scorer(benchmark, scorer)
    gen = {"max_new_tokens": max_new_tokens, "template": template}

    def order_of(it: Item) -> list[int]:
        if greedy_order == "original":
            return list(range(it.n))
        return voting.shuffle_order(it.n, seed, it.id, -1)  # sample index -1: distinct from voting's 0..k-1

    cells: dict[str, dict[str, float]] = {}
    greedy_orders = [order_of(it) for it in items]
    greedy = judge_in_order(items, greedy_orders, sampler, seed=seed, **gen)
    greedy_v = [decide(j, k=1, seed=seed, tie_policy=policy) for j in greedy]
    cells[f"{GREEDY}_k1"] = _cell(items, greedy_v, scorer, seed)
    swap_credits: dict[str, list[float]] = {}
    if hygiene:
        multi = [i for i, it in enumerate(items) if it.n >= 2]
        if multi:
            rev = judge_in_order(
                [items[i] for i in multi], [greedy_orders[i][::-1] for i in multi], sampler, seed=seed, **gen
            )
            rev_v = [decide(j, k=1, seed=seed, tie_policy=policy) for j in rev]
            both = [
                (greedy_v[i], r) for i, r in zip(multi, rev_v, strict=True) if _decided(greedy_v[i]) and _decided(r)
            ]
            cells[f"{GREEDY}_k1"]["position_flip_rate"] = (
                float(np.mean([a.predicted != b.predicted for a, b in both])) if both else float("nan")
            )
            cells[f"{GREEDY}_k1"]["position_n_decided"] = float(len(both))
            passes = [[v] for v in greedy_v]  # per item: its greedy verdicts, shown order then reversed
            for i, r in zip(multi, rev_v, strict=True):
                passes[i].append(r)
            cell = f"{GREEDY_SWAP}_k1"
            swap_credits[cell] = [float(np.mean([v.credit for v in vs])) for vs in passes]
            lo, hi = bootstrap_ci(swap_credits[cell], seed=seed)
            verdicts = [v for vs in passes for v in vs]
            cells[cell] = {
                "accuracy": float(np.mean(swap_credits[cell])),
                "accuracy_ci_low": lo,
                "accuracy_ci_high": hi,
                "parse_fail_rate": sum(v.n_failed for v in verdicts) / max(1, sum(v.n_used for v in verdicts)),
                "tie_rate": float(np.mean([np.mean([v.tied for v in vs]) for vs in passes])),
                "n_items": float(len(passes)),
            }
            if scorer not in ORDER_AVERAGE_UNSCORED:
                cells[cell].update(scoring.score_benchmark(scorer, items, swap_credits[cell]))

    k_max = ks[-1]
    sampled = judging.judge_items(
        items, sampler, k=k_max, temperature=temperature, seed=seed, shuffle=True, meta_scorer=meta_scorer, **gen
    )
    voting_v: dict[int, list[Verdict]] = {}
    credits: dict[str, list[float]] = {f"{GREEDY}_k1": [v.credit for v in greedy_v], **swap_credits}
    for method in [m for m in (VOTING, METARM) if m in methods]:
        for k in ks:
            verdicts = [
                decide(j, k=k, method=method, k_meta=k_meta, seed=seed, tie_policy=policy, meta_vote=meta_vote)
                for j in sampled
            ]
            cells[f"{method}_k{k}"] = _cell(items, verdicts, scorer, seed)
            if method == METARM and meta_vote == "fallback":
                cells[f"{method}_k{k}"]["fell_back"] = 1.0  # the marker: these MetaRM@k cells are Voting@k
            credits[f"{method}_k{k}"] = [v.credit for v in verdicts]
            if method == VOTING:
                voting_v[k] = verdicts
    if seed_agreement is None:
        seed_agreement = hygiene
    if seed_agreement and VOTING in methods:
        again = judging.judge_items(
            items, sampler, k=k_max, temperature=temperature, seed=seed + 1, shuffle=True, **gen
        )
        again_v = [decide(j, k=k_max, seed=seed + 1, tie_policy=policy) for j in again]
        same = [a.predicted == b.predicted for a, b in zip(voting_v[k_max], again_v, strict=True)]
        cells[f"{VOTING}_k{k_max}"]["seed_agreement"] = float(np.mean(same))

    per_item = []
    for i, it in enumerate(items):
        row: dict[str, Any] = {"id": it.id, "subset": it.subset, "best": it.best, "label": it.label}
        row["credit"] = {cell: values[i] for cell, values in credits.items()}  # per-item accuracy: paired gaps
        row["greedy_predicted"], row["greedy_totals"] = greedy_v[i].predicted, greedy_v[i].totals
        if k_max in voting_v:
            row[f"voting_k{k_max}_predicted"] = voting_v[k_max][i].predicted
            row[f"voting_k{k_max}_totals"] = voting_v[k_max][i].totals
        per_item.append(row)
    settings = {
        "ks": list(ks),
        "methods": list(methods),
        "k_meta": k_meta,
        **({"meta_vote": meta_vote} if METARM in methods else {}),
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "template": template,
        "tie_policy": policy,
        "greedy_order": greedy_order,
        "scorer": scorer,
    }
    return EvalReport(benchmark, model_name, policy, official, settings, cells, len(items), per_item)


def _score_row_problem(rec: Any) -> list[tuple[str, str]]:
    """The first ``(field, problem)`` of one decoded scores-file row (one per row, as before); empty when valid."""
    if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
        return [("id", "missing or not a string")]
    scores = rec.get("scores")
    if (
        not isinstance(scores, list)
        or not scores
        or not all(isinstance(s, int | float) and not isinstance(s, bool) for s in scores)
        or not all(math.isfinite(s) for s in scores)
    ):
        return [("scores", "must be a non-empty list of finite numbers")]
    return []


def read_scores_file(path: str | Path) -> dict[str, list[float]]:
    """Read a scalar RM's scores: JSONL ``{"id": str, "scores": [number per response, item order]}``.

    Raises:
        DataError: every bad line as ``file:line: field: problem``.
    """
    from grm.files import checked_records

    path = Path(path)
    out: dict[str, list[float]] = {}
    errors: list[str] = []
    what = "scores file (JSONL lines {'id': ..., 'scores': [...]})"
    for lineno, rec in checked_records(path, what, _score_row_problem, errors):
        if rec["id"] in out:
            errors.append(f"{path}:{lineno}: id: duplicate {rec['id']!r}")
            continue
        out[rec["id"]] = [float(s) for s in rec["scores"]]
    if not out and not errors:
        errors.append(f"{path}: <file>: no rows (the file is empty); write one line per item")
    if errors:
        raise DataError(path, errors)
    return out


def evaluate_scores(
    items: Sequence[Item],
    scores: Mapping[str, Sequence[float]],
    *,
    benchmark: str,
    model_name: str,
    seed: int = 0,
    tie_policy: str = "random",
    scorer: str | None = None,
    single_threshold: float = 0.0,
    source: str = "<scores>",
    protocol: str | None = None,
) -> EvalReport:
    """Score precomputed scalar-RM scores with the same verdict and benchmark scoring code (cell ``scalar_k1``);
    the one entry point for every benchmark: ``two_game`` (JudgeBench ``[A, B]``) and ``style_matrix`` (RM-Bench,
    six scores per prompt) run in ``grm.protocols``.

    Args:
        items: the benchmark items; each id must have a score list of length ``item.n``.
        scores: id -> scores in the item's response order (extra ids are ignored: one file can cover many
            benchmarks).
        benchmark: benchmark name.
        model_name: name used in metric names.
        seed: tie-break seed.
        tie_policy: as in ``evaluate``.
        scorer: override the benchmark's scorer.
        single_threshold: a single response is predicted correct when its score is above this (logit convention);
            only the thresholded accuracy uses it, ROC-AUC is threshold-free.
        source: name of the scores file, for errors.
        protocol: override the benchmark's protocol; None = the registered one.

    Returns:
        The report.
    """
    protocol = resolve_protocol(benchmark, protocol)
    if protocol != "standard":
        from grm import protocols  # imports this module

        if protocol == "two_game":
            return protocols.scores_two_game(
                items, scores, benchmark=benchmark, model_name=model_name, seed=seed, scorer=scorer, source=source
            )
        return protocols.scores_style_matrix(
            items, scores, benchmark=benchmark, model_name=model_name, seed=seed, tie_policy=tie_policy,
            scorer=scorer, single_threshold=single_threshold, source=source,
        )  # fmt: skip
    policy, official = resolve_tie_policy(tie_policy, benchmark)
    scorer = resolve_scorer(benchmark, scorer)
    errors = []
    for it in items:
        if it.id not in scores:
            errors.append(f"{source}: {it.id}: scores: missing (no line with this id)")
        elif len(scores[it.id]) != it.n:
            errors.append(f"{source}: {it.id}: scores: {len(scores[it.id])} numbers for {it.n} responses")
    if errors:
        raise DataError(source, errors)
    verdicts = []
    for it in items:
        s = list(scores[it.id])
        if it.n == 1:
            pred = int(s[0] > single_threshold)
            verdicts.append(Verdict(it.id, float(pred == it.label), False, pred, s, 0, 1, s[0], 1))
            continue
        top = max(s)
        winners = [i for i, x in enumerate(s) if x == top]
        credit, pick = tie_credit(winners, int(it.best), policy, seed, it.id)  # type: ignore[arg-type]
        verdicts.append(Verdict(it.id, credit, len(winners) > 1, pick, s, 0, 1, None, 1))
    cell = _cell(items, verdicts, scorer, seed)
    for generative_only in ("parse_fail_rate", "item_fail_rate"):  # scalar scores are never parsed
        cell.pop(generative_only, None)
    cells = {f"{SCALAR}_k1": cell}
    per_item = [
        {"id": it.id, "subset": it.subset, "best": it.best, "label": it.label, "predicted": v.predicted}
        for it, v in zip(items, verdicts, strict=True)
    ]
    settings = {"seed": seed, "tie_policy": policy, "scorer": scorer, "single_threshold": single_threshold}
    return EvalReport(benchmark, model_name, policy, official, settings, cells, len(items), per_item)
