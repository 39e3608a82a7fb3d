"""Benchmark protocols other than greedy + Voting@k over shuffled orders, for a GRM and for a scalar RM's scores.

``grm.evaluation.evaluate`` / ``evaluate_scores`` dispatch here by ``BenchmarkSpec.protocol`` (so the CLI and the
pipeline call one function per path, whatever the benchmark):

- ``two_game`` (JudgeBench, ``run_judge.py`` + ``utils/metrics.py`` @ e2c52c2): every pair is judged as shown
  (A, B) and swapped (B, A). Each game gives +1 (right), -1 (wrong) or 0 (tied or unparsable: **not** a coin flip);
  the pair is correct iff ``counter = game1 + game2 > 0``. For the GRM each game is its own greedy / Voting@k /
  MetaRM@k verdict over ``k`` samples all shown in that game's order. A scalar RM's ``[A, B]`` scores decide as the
  official RM judges do (``'A>B' if score_A > score_B else 'B>A'``, so a score tie is ``B>A`` in each game, and the
  two games then cancel: counter 0). ``single_game_accuracy`` is the ``--single_game`` number (game 1 only).
  Hygiene: ``parse_fail_rate``, ``tie_rate`` (share of games tied or unparsed), ``position_flip_rate`` (pairs
  decided in both games whose pick changes with the order) and ``counter_zero_rate``.
- ``style_matrix`` (RM-Bench, ``scripts/utils.py::compute_accuracy`` @ 73c52d7): a prompt's 3 chosen x 3 rejected
  responses become the nine (chosen_i, rejected_j) comparisons; each is a two-response item, judged by the
  standard protocol (greedy over a seeded order, its reverse, Voting@k over per-sample shuffles), so every one of
  the official nine comparisons is a real, independent verdict, not one same-style verdict copied across a row of
  the matrix (RM-R1's generative adaptation). Rating the six responses in one judgement would be 9x cheaper, but a
  6-response prompt is far longer than the pairs the GRM is trained and evaluated on, and every comparison would
  then share one sample's noise. A scalar RM's six scores per prompt (chosen 0-2, rejected 0-2) are expanded into
  the same nine comparisons (``score_chosen[i] > score_rejected[j]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from grm.benchmarks import scoring
from grm.benchmarks.rmbench import style_pairs
from grm.evaluation import (
    GREEDY,
    METARM,
    SCALAR,
    VOTING,
    EvalReport,
    evaluate,
    evaluate_scores,
    judge_in_order,
    resolve_scorer,
)
from grm.judging import ItemJudgement
from grm.metrics import bootstrap_ci
from grm.sampling.base import Sampler
from grm.schemas import DataError, Item
from grm.verdicts import Verdict, decide

TWO_GAME_POLICY = "two-game (a tied or unparsed game adds 0; a pair needs counter > 0)"
TWO_GAME_NOTE = (
    "overall = accuracy over all pairs under the two-game rule (official, micro); macro_accuracy = the unweighted "
    "mean of the categories (some papers; not official); single_game_accuracy = game 1 only (run_judge.py "
    "--single_game)"
)
STYLE_NOTE = (
    "per domain the official 3x3 matrix of the nine (chosen_i, rejected_j) comparisons; hard / normal / easy = its "
    "upper triangle / diagonal / lower triangle; overall = mean of the domain scores; style_bias = easy - hard (ours)"
)


def _game(v: Verdict, best: int) -> int:
    return scoring.game_value(v.totals is not None and not v.tied, v.predicted == best)


def two_game_cell(
    items: Sequence[Item], game1: Sequence[Verdict], game2: Sequence[Verdict], scorer: str, seed: int
) -> tuple[dict[str, float], list[float], list[tuple[int, int]]]:
    """Metrics of one two-game cell from the per-game verdicts (predictions in the items' own order).

    Returns:
        (metrics, per-pair credit, per-pair (game1, game2) values).
    """
    games = [(_game(a, int(it.best)), _game(b, int(it.best))) for it, a, b in zip(items, game1, game2, strict=True)]
    credits = [scoring.two_game_credit(g1, g2) for g1, g2 in games]
    lo, hi = bootstrap_ci(credits, seed=seed)
    both = [(a, b) for a, b in zip(game1, game2, strict=True) if a.totals is not None and not a.tied]
    both = [(a, b) for a, b in both if b.totals is not None and not b.tied]
    used = sum(v.n_used for v in (*game1, *game2))
    cell = {
        "accuracy": float(np.mean(credits)),
        "accuracy_ci_low": lo,
        "accuracy_ci_high": hi,
        "single_game_accuracy": float(np.mean([g1 == 1 for g1, _ in games])),
        "parse_fail_rate": sum(v.n_failed for v in (*game1, *game2)) / used if used else 0.0,
        "item_fail_rate": float(np.mean([v.totals is None for v in (*game1, *game2)])),
        "tie_rate": float(np.mean([v.tied for v in (*game1, *game2)])),
        "position_flip_rate": float(np.mean([a.predicted != b.predicted for a, b in both])) if both else float("nan"),
        "position_n_decided": float(len(both)),
        "counter_zero_rate": float(np.mean([g1 + g2 == 0 for g1, g2 in games])),
        "n_items": float(len(items)),
    }
    cell.update(scoring.score_benchmark(scorer, items, credits))
    return cell, credits, games


def evaluate_two_game(
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
    scorer: str | None = None,
) -> EvalReport:
    """JudgeBench's two-game protocol for a sampler-backed GRM (see the module docstring).

    Greedy: one temperature-0 judgement per game. Voting@k / MetaRM@k: ``max(ks)`` samples per game, all in that
    game's order (no shuffle: the two games are the order control); every k reads the first k of them. The
    benchmark's tie policy does not apply: the two-game rule settles ties (``TWO_GAME_POLICY``).

    Returns:
        The report (cells ``greedy_k1``, ``voting_k{k}``, ``metarm_k{k}``).
    """
    if any(it.n != 2 for it in items):
        bad = next(it for it in items if it.n != 2)
        raise ValueError(f"{benchmark}: the two-game protocol needs two-response items; {bad.id} has {bad.n}")
    scorer = resolve_scorer(benchmark, scorer)
    gen = {"max_new_tokens": max_new_tokens, "template": template, "seed": seed}
    orders = ([[0, 1]] * len(items), [[1, 0]] * len(items))
    cells: dict[str, dict[str, float]] = {}
    credits: dict[str, list[float]] = {}
    games: dict[str, list[tuple[int, int]]] = {}

    def add(cell: str, passes: Sequence[Sequence[ItemJudgement]], k: int, method: str) -> None:
        g1, g2 = ([decide(j, k=k, method=method, k_meta=k_meta, seed=seed, tie_policy="strict") for j in p]
                  for p in passes)  # fmt: skip
        cells[cell], credits[cell], games[cell] = two_game_cell(items, g1, g2, scorer, seed)

    greedy = [judge_in_order(items, o, sampler, **gen) for o in orders]
    add(f"{GREEDY}_k1", greedy, 1, VOTING)
    k_max = max(ks)
    sampled = [
        judge_in_order(items, o, sampler, k=k_max, temperature=temperature, meta_scorer=meta_scorer, **gen)
        for o in orders
    ]
    for method in [m for m in (VOTING, METARM) if m in methods]:
        for k in sorted(set(ks)):
            add(f"{method}_k{k}", sampled, k, method)
    per_item = [
        {
            "id": it.id,
            "subset": it.subset,
            "best": it.best,
            "label": it.label,
            "credit": {c: v[i] for c, v in credits.items()},
            "games": {c: list(v[i]) for c, v in games.items()},
        }
        for i, it in enumerate(items)
    ]
    settings = {
        "protocol": "two_game",
        "ks": sorted(set(ks)),
        "methods": list(methods),
        "k_meta": k_meta,
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "seed": seed,
        "template": template,
        "tie_policy": TWO_GAME_POLICY,
        "scorer": scorer,
        "note": TWO_GAME_NOTE,
    }
    return EvalReport(benchmark, model_name, TWO_GAME_POLICY, "strict", settings, cells, len(items), per_item)


def _scalar_game(item_id: str, pick: int, scores: list[float]) -> Verdict:
    return Verdict(item_id, 0.0, False, pick, scores, 0, 1, None, 1)


def scores_two_game(
    items: Sequence[Item],
    scores: Mapping[str, Sequence[float]],
    *,
    benchmark: str,
    model_name: str,
    seed: int = 0,
    scorer: str | None = None,
    source: str = "<scores>",
) -> EvalReport:
    """JudgeBench's two-game rule on a scalar RM's ``[score_A, score_B]`` per pair (cell ``scalar_k1``).

    Game 2 judges the swapped pair (``[score_B, score_A]``) and is flipped back, as ``compute_final_metrics`` does; a
    score tie is ``B>A`` in both games, i.e. A then B after the flip, so the counter is 0 (wrong) under the two-game
    rule while ``single_game_accuracy`` credits it when the label is ``B>A``.
    """
    scorer = resolve_scorer(benchmark, scorer)
    _check_scores(items, scores, source)
    game1, game2 = [], []
    for it in items:
        a, b = (float(x) for x in scores[it.id])
        game1.append(_scalar_game(it.id, 0 if a > b else 1, [a, b]))  # 'A>B' if score_A > score_B else 'B>A'
        game2.append(_scalar_game(it.id, 1 if b > a else 0, [a, b]))  # the same rule on (B, A), flipped back
    cell, credits, games = two_game_cell(items, game1, game2, scorer, seed)
    for generative_only in ("parse_fail_rate", "item_fail_rate"):
        cell.pop(generative_only, None)
    cell["tie_rate"] = float(np.mean([scores[it.id][0] == scores[it.id][1] for it in items]))
    per_item = [
        {"id": it.id, "subset": it.subset, "best": it.best, "label": it.label, "games": list(g), "credit": c}
        for it, g, c in zip(items, games, credits, strict=True)
    ]
    settings = {
        "protocol": "two_game",
        "seed": seed,
        "tie_policy": TWO_GAME_POLICY,
        "scorer": scorer,
        "note": TWO_GAME_NOTE,
    }
    return EvalReport(
        benchmark, model_name, TWO_GAME_POLICY, "strict", settings, {f"{SCALAR}_k1": cell}, len(items), per_item
    )


def _check_scores(items: Sequence[Item], scores: Mapping[str, Sequence[float]], source: str) -> None:
    errors = []
    for it in items:
        if it.id not in scores:
            errors.append(f"{source}: {it.id}: scores: missing (no line with this id)")
        elif len(scores[it.id]) != it.n:
            errors.append(f"{source}: {it.id}: scores: {len(scores[it.id])} numbers for {it.n} responses")
    if errors:
        raise DataError(source, errors)


def expand_style_items(items: Sequence[Item]) -> list[Item]:
    """RM-Bench prompts -> their nine (chosen_i, rejected_j) comparison items each (``rmbench.style_pairs``)."""
    return [pair for it in items for pair in style_pairs(it)]


def evaluate_style_matrix(items: Sequence[Item], sampler: Sampler, **kwargs: Any) -> EvalReport:
    """RM-Bench for a sampler-backed GRM: the nine comparisons of each prompt through the standard protocol
    (``grm.evaluation.evaluate``, every option as there), scored by the 3x3 matrix (``scorer="rm_bench"``)."""
    pairs = expand_style_items(items)
    scorer = resolve_scorer(kwargs["benchmark"], kwargs.pop("scorer", None))
    report = evaluate(pairs, sampler, scorer=scorer, protocol="standard", **kwargs)
    report.settings.update(protocol="style_matrix", n_prompts=len(items), note=STYLE_NOTE)
    return report


def scores_style_matrix(
    items: Sequence[Item], scores: Mapping[str, Sequence[float]], *, source: str = "<scores>", **kwargs: Any
) -> EvalReport:
    """RM-Bench for a scalar RM: six scores per prompt (chosen 0-2, rejected 0-2) -> the nine comparisons, scored
    with ``evaluate_scores`` (tie per its policy; official: strict) and the 3x3 matrix."""
    _check_scores(items, scores, source)
    pairs = expand_style_items(items)
    pair_scores = {}
    for it in items:
        s = list(scores[it.id])
        for pair in style_pairs(it):
            pair_scores[pair.id] = [s[pair.meta["chosen_style"]], s[3 + pair.meta["rejected_style"]]]
    scorer = resolve_scorer(kwargs["benchmark"], kwargs.pop("scorer", None))
    report = evaluate_scores(pairs, pair_scores, scorer=scorer, protocol="standard", source=source, **kwargs)
    report.settings.update(protocol="style_matrix", n_prompts=len(items), note=STYLE_NOTE)
    return report
