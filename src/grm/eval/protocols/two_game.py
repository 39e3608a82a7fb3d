"""``two_game`` (JudgeBench, ``run_judge.py`` + ``utils/metrics.py`` @ e2c52c2), for a GRM and for a scalar RM.

Every pair is judged as shown (A, B) and swapped (B, A). Each game gives +1 (right), -1 (wrong) or 0 (tied or
unparsable: **not** a coin flip); the pair is correct iff ``counter = game1 + game2 > 0``. For the GRM each game is
its own greedy / Voting@k / MetaRM@k verdict over ``k`` samples all shown in that game's order. A scalar RM's
``[A, B]`` scores decide as the official RM judges do (``'A>B' if score_A > score_B else 'B>A'``, so a score tie is
``B>A`` in each game, and the two games then cancel: counter 0). ``single_game_accuracy`` is the ``--single_game``
number (game 1 only). Hygiene: ``parse_fail_rate``, ``tie_rate`` (share of games tied or unparsed),
``position_flip_rate`` (pairs decided in both games whose pick changes with the order) and ``counter_zero_rate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from grm.benchmarks import scoring
from grm.eval.judge import GENERATIVE_ONLY, check_scores, judge_in_order
from grm.eval.metric_key import GREEDY, METARM, VOTING, Cell
from grm.eval.metrics import bootstrap_ci
from grm.eval.protocols.base import SCALAR_CELL, EvalProtocol, MetaScorer
from grm.eval.spec import EvalReport, EvalSpec
from grm.method.judging import ItemJudgement
from grm.method.verdicts import Verdict, decide
from grm.sampling.base import Sampler
from grm.schemas import Item

TWO_GAME_POLICY = "two-game (a tied or unparsed game adds 0; a pair needs counter > 0)"
TWO_GAME_NOTE = (
    "overall = accuracy over all pairs under the two-game rule (official, micro); macro_accuracy = the unweighted "
    "mean of the categories (some papers; not official); single_game_accuracy = game 1 only (run_judge.py "
    "--single_game)"
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
    items: Sequence[Item], sampler: Sampler, spec: EvalSpec, meta_scorer: MetaScorer | None
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
        raise ValueError(f"{spec.benchmark}: the two-game protocol needs two-response items; {bad.id} has {bad.n}")
    scorer = spec.resolved_scorer()
    gen = {"max_new_tokens": spec.max_new_tokens, "template": spec.template, "seed": spec.seed}
    orders = ([[0, 1]] * len(items), [[1, 0]] * len(items))
    cells: dict[str, dict[str, float]] = {}
    credits: dict[str, list[float]] = {}
    games: dict[str, list[tuple[int, int]]] = {}

    def add(cell: Cell, passes: Sequence[Sequence[ItemJudgement]]) -> None:
        g1, g2 = ([decide(j, k=cell.k, method=VOTING if cell.method == GREEDY else cell.method, k_meta=spec.k_meta,
                          seed=spec.seed, tie_policy="strict") for j in p]
                  for p in passes)  # fmt: skip
        name = str(cell)
        cells[name], credits[name], games[name] = two_game_cell(items, g1, g2, scorer, spec.seed)

    add(Cell(GREEDY, 1), [judge_in_order(items, o, sampler, **gen) for o in orders])
    sampled = [
        judge_in_order(items, o, sampler, k=spec.k_max, temperature=spec.temperature, meta_scorer=meta_scorer, **gen)
        for o in orders
    ]
    for method in [m for m in (VOTING, METARM) if m in spec.methods]:
        for k in spec.ks:
            add(Cell(method, k), sampled)
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
        "ks": list(spec.ks),
        "methods": list(spec.methods),
        "k_meta": spec.k_meta,
        "temperature": spec.temperature,
        "max_new_tokens": spec.max_new_tokens,
        "seed": spec.seed,
        "template": spec.template,
        "tie_policy": TWO_GAME_POLICY,
        "scorer": scorer,
        "note": TWO_GAME_NOTE,
    }
    return EvalReport(
        spec.benchmark, spec.model_name, TWO_GAME_POLICY, "strict", settings, cells, len(items), per_item
    )


def _scalar_game(item_id: str, pick: int, scores: list[float]) -> Verdict:
    return Verdict(item_id, 0.0, False, pick, scores, 0, 1, None, 1)


def score_two_game(
    items: Sequence[Item], scores: Mapping[str, Sequence[float]], spec: EvalSpec, source: str
) -> EvalReport:
    """JudgeBench's two-game rule on a scalar RM's ``[score_A, score_B]`` per pair (cell ``scalar_k1``).

    Game 2 judges the swapped pair (``[score_B, score_A]``) and is flipped back, as ``compute_final_metrics`` does; a
    score tie is ``B>A`` in both games, i.e. A then B after the flip, so the counter is 0 (wrong) under the two-game
    rule while ``single_game_accuracy`` credits it when the label is ``B>A``.
    """
    scorer = spec.resolved_scorer()
    check_scores(items, scores, source)
    game1, game2 = [], []
    for it in items:
        a, b = (float(x) for x in scores[it.id])
        game1.append(_scalar_game(it.id, 0 if a > b else 1, [a, b]))  # 'A>B' if score_A > score_B else 'B>A'
        game2.append(_scalar_game(it.id, 1 if b > a else 0, [a, b]))  # the same rule on (B, A), flipped back
    cell, credits, games = two_game_cell(items, game1, game2, scorer, spec.seed)
    for generative_only in GENERATIVE_ONLY:
        cell.pop(generative_only, None)
    cell["tie_rate"] = float(np.mean([scores[it.id][0] == scores[it.id][1] for it in items]))
    per_item = [
        {"id": it.id, "subset": it.subset, "best": it.best, "label": it.label, "games": list(g), "credit": c}
        for it, g, c in zip(items, games, credits, strict=True)
    ]
    settings = {
        "protocol": "two_game",
        "seed": spec.seed,
        "tie_policy": TWO_GAME_POLICY,
        "scorer": scorer,
        "note": TWO_GAME_NOTE,
    }
    cells = {str(SCALAR_CELL): cell}
    return EvalReport(
        spec.benchmark, spec.model_name, TWO_GAME_POLICY, "strict", settings, cells, len(items), per_item
    )


PROTOCOL = EvalProtocol(
    "two_game",
    evaluate_two_game,
    score_two_game,
    swap_cell=False,
    description="JudgeBench: each pair judged in both orders, counter > 0",
    cell_names=(
        "accuracy", "accuracy_ci_low", "accuracy_ci_high", "single_game_accuracy", "parse_fail_rate",
        "item_fail_rate", "tie_rate", "position_flip_rate", "position_n_decided", "counter_zero_rate", "n_items",
    ),  # two_game_cell's names, in every cell
    hygiene_names=(),
    seed_agreement=False,
)  # fmt: skip
