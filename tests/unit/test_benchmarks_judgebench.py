"""JudgeBench: converter (local splits, bad rows), the two-game counter rule, the GRM protocol, scalar scores."""

from __future__ import annotations

import collections
import json
import re

import numpy as np
import pytest
from typer.testing import CliRunner

from grm.benchmarks import convert_rows, get_benchmark, load_benchmark
from grm.benchmarks.scoring import judgebench_scores, two_game_credit
from grm.eval.run import evaluate, evaluate_scores
from grm.eval.spec import EvalSpec
from grm.schemas import DataError, Item
from tests.helpers.benchdata import SHIPPED
from tests.unit.test_benchmarks_evaluation import RESPONSE_RE, FirstWinsSampler, _app

BENCHDATA = SHIPPED  # the copy shipped in the repository (docs/benchdata.md)


def row(pair_id="p1", source="mmlu-pro-law", label="A>B", **extra):
    base = {"pair_id": pair_id, "original_id": "7", "source": source, "question": "q?", "response_model": "m",
            "response_A": "answer A", "response_B": "answer B", "label": label}  # fmt: skip
    return {**base, **extra}


# ---------------------------------------------------------------- converter


@pytest.mark.parametrize(
    ("name", "split", "n", "per_category", "n_a"),
    [
        ("judgebench", "gpt", 350, {"knowledge": 154, "reasoning": 98, "math": 56, "coding": 42}, 193),
        ("judgebench-claude", "claude", 270, {"knowledge": 154, "reasoning": 51, "math": 34, "coding": 31}, 143),
    ],
)
def test_local_splits_have_the_readme_counts_categories_and_ids(name, split, n, per_category, n_a):
    items = load_benchmark(name, BENCHDATA, progress=False)
    assert len(items) == n and collections.Counter(it.subset for it in items) == per_category
    assert sum(it.best == 0 for it in items) == n_a  # label A>B -> best 0 (source order kept)
    assert all(it.id.startswith(f"judgebench/{split}/") and it.n == 2 for it in items)
    assert all(it.meta["source"].startswith("mmlu-pro") for it in items if it.subset == "knowledge")


def test_limit_covers_the_four_categories():
    items = load_benchmark("judgebench", BENCHDATA, limit=8, progress=False)
    assert collections.Counter(it.subset for it in items) == {"knowledge": 2, "reasoning": 2, "math": 2, "coding": 2}


def test_row_converts_with_the_source_order_and_split_in_the_id():
    (a,) = convert_rows("judgebench", [row(label="B>A", source="livecodebench")])
    assert (a.id, a.responses, a.best, a.subset) == ("judgebench/gpt/p1", ("answer A", "answer B"), 1, "coding")
    assert a.meta == {"source": "livecodebench", "split": "gpt", "original_id": "7", "response_model": "m"}
    (c,) = convert_rows("judgebench-claude", [row()])
    assert c.id == "judgebench/claude/p1"


def test_malformed_rows_are_all_reported_with_row_and_field():
    rows = [
        row("ok"),
        row("tie", label="A=B"),
        row("src", source="arena-hard"),
        {k: v for k, v in row("nob").items() if k != "response_B"},
        row("empty", question="  "),
        row("ok"),
    ]
    with pytest.raises(DataError) as info:
        convert_rows("judgebench", rows, source="jb.jsonl")
    assert info.value.errors == [
        "jb.jsonl:2: label: 'A=B' is not one of ['A>B', 'B>A'] (JudgeBench pairs have no ties)",
        "jb.jsonl:3: source: 'arena-hard' does not start with one of ['mmlu-pro', 'livebench-reasoning', "
        "'livebench-math', 'livecodebench']",
        "jb.jsonl:4: response_B: missing; the row has fields ['label', 'original_id', 'pair_id', 'question', "
        "'response_A', 'response_model', 'source']",
        "jb.jsonl:5: question: empty string",
        "jb.jsonl:6: id: duplicate converted id 'judgebench/gpt/ok' (first at jb.jsonl:1)",
    ]


def test_spec_declares_the_two_game_protocol():
    assert get_benchmark("judgebench").protocol == "two_game" and get_benchmark("judgebench").hub[0].split == "gpt"


# ---------------------------------------------------------------- the counter rule


@pytest.mark.parametrize(
    ("games", "credit"),
    [
        ((1, 1), 1.0),  # right in both orders
        ((1, 0), 1.0),  # right + tie: counter 1
        ((0, 1), 1.0),  # unparsable + right
        ((1, -1), 0.0),  # inconsistent: counter 0
        ((0, 0), 0.0),  # tie/failure in both: 0, not a coin flip
        ((-1, 0), 0.0),
        ((-1, -1), 0.0),
    ],
)
def test_two_game_counter_needs_a_positive_sum(games, credit):
    assert two_game_credit(*games) == credit


def test_two_game_credit_rejects_other_values():
    with pytest.raises(ValueError, match="-1, 0 or \\+1"):
        two_game_credit(2, 0)


def test_categories_micro_overall_and_labelled_macro():
    items = [Item(f"j/{i}", "q", ("a", "b"), best=0, subset=s) for i, s in enumerate(["knowledge"] * 3 + ["math"])]
    out = judgebench_scores(items, [1.0, 1.0, 0.0, 0.0])
    assert out["knowledge"] == pytest.approx(2 / 3) and out["math"] == 0.0
    assert out["overall"] == 0.5  # micro over the 4 pairs, the official number
    assert out["macro_accuracy"] == pytest.approx((2 / 3 + 0) / 2)
    assert "reasoning" not in out


# ---------------------------------------------------------------- the GRM protocol

QUERY_RE = re.compile(r"(case\d+)")


class ScriptedGameSampler:
    """Per case and game a scripted behaviour: 'right' (the correct response 9, the other 2), 'wrong', 'tie' (5, 5)
    or 'fail' (no scores). The game is told by which response is shown first (game 1 shows A first)."""

    def __init__(self, script):
        self.script = script  # case -> (game1 behaviour, game2 behaviour)
        self.prompts: list[str] = []

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        out = []
        for p in prompts:
            self.prompts.append(p)
            case = QUERY_RE.search(p).group(1)
            shown = [text for _, text in RESPONSE_RE.findall(p)]
            game = 0 if shown[0].startswith("A") else 1
            how = self.script[case][game]
            right_first = shown[0].endswith("right")
            if how == "fail":
                text = "no verdict"
            elif how == "tie":
                text = "Scores: \\boxed{5, 5}"
            else:
                first_high = right_first == (how == "right")
                text = "Scores: \\boxed{" + ("9, 2" if first_high else "2, 9") + "}"
            out.append([text] * n)
        return out


def _cases(script, best):
    """Items 'caseN' whose correct response is A (best 0) or B (best 1)."""
    items = []
    for case, b in zip(script, best, strict=True):
        responses = ("A right", "B wrong") if b == 0 else ("A wrong", "B right")
        items.append(Item(f"judgebench/gpt/{case}", f"question {case}", responses, best=b, subset="math"))
    return items


def test_grm_two_games_follow_the_counter_with_ties_and_failures():
    script = {
        "case0": ("right", "right"),  # +1 +1 -> 1
        "case1": ("right", "tie"),  # +1 0 -> 1
        "case2": ("fail", "right"),  # 0 +1 -> 1
        "case3": ("right", "wrong"),  # +1 -1 -> 0
        "case4": ("tie", "tie"),  # 0 0 -> 0 (no coin flip)
        "case5": ("fail", "fail"),  # 0 0 -> 0
        "case6": ("wrong", "tie"),  # -1 0 -> 0
    }
    items = _cases(script, [0, 1, 0, 1, 0, 1, 0])
    sampler = ScriptedGameSampler(script)
    report = evaluate(items, sampler, EvalSpec(benchmark="judgebench", model_name="s", ks=(1, 3), max_new_tokens=8))
    credits = [row["credit"]["greedy_k1"] for row in report.per_item]
    assert credits == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    assert [tuple(r["games"]["greedy_k1"]) for r in report.per_item] == [
        (1, 1), (1, 0), (0, 1), (1, -1), (0, 0), (0, 0), (-1, 0)
    ]  # fmt: skip
    for cell in ("greedy_k1", "voting_k1", "voting_k3"):
        m = report.cells[cell]
        assert m["accuracy"] == pytest.approx(3 / 7) == m["overall"] == m["math"]
        assert m["tie_rate"] == pytest.approx(7 / 14)  # games tied or unparsed: 1+1+2+2+1
        assert m["parse_fail_rate"] == pytest.approx(3 / 14)
        assert m["position_flip_rate"] == pytest.approx(1 / 2)  # decided twice: case0 (same pick), case3 (flips)
        assert m["counter_zero_rate"] == pytest.approx(3 / 7)
        assert m["single_game_accuracy"] == pytest.approx(3 / 7)  # game 1 right: case0, 1, 3
    assert report.tie_policy.startswith("two-game")


def test_each_game_keeps_its_order_for_every_voting_sample():
    items = _cases({"case0": 0}, [0])
    sampler = ScriptedGameSampler({"case0": ("right", "right")})
    evaluate(items, sampler, EvalSpec(benchmark="judgebench", model_name="s", ks=(4,), max_new_tokens=8))
    firsts = collections.Counter(RESPONSE_RE.findall(p)[0][1] for p in sampler.prompts)
    assert firsts == {"A right": 2, "B wrong": 2}  # greedy + one 4-sample request per game, never shuffled


def test_a_position_biased_grm_scores_zero_under_two_games_but_not_in_one():
    items = _cases({f"case{i}": 0 for i in range(6)}, [0, 0, 0, 0, 1, 1])
    report = evaluate(items, FirstWinsSampler(), EvalSpec(benchmark="judgebench", model_name="b", ks=(2,)))
    m = report.cells["voting_k2"]
    assert m["accuracy"] == 0.0 and m["position_flip_rate"] == 1.0
    assert m["single_game_accuracy"] == pytest.approx(4 / 6)  # the A>B share: what one order would report


# ---------------------------------------------------------------- scalar scores, official formula


def official_two_game(label: str, score_a: float, score_b: float) -> tuple[bool, bool]:
    """JudgeBench's own path for an RM judge (utils/judges.py + utils/metrics.py), transcribed: (two games, single)."""

    def flip(d):
        return {"A>B": "B>A", "B>A": "A>B"}.get(d, d)

    d1 = "A>B" if score_a > score_b else "B>A"
    d2 = flip("A>B" if score_b > score_a else "B>A")  # swapped pair, flipped back
    counter = sum(1 if d == label else -1 if d == flip(label) else 0 for d in (d1, d2))
    return counter > 0, d1 == label


def test_scalar_scores_follow_the_official_rm_judge_and_a_tie_is_b_over_a():
    items = [
        Item(f"judgebench/gpt/{i}", "q", ("a", "b"), best=b, subset="knowledge") for i, b in enumerate([0, 1, 0, 1])
    ]
    scores = {"judgebench/gpt/0": [2.0, 1.0], "judgebench/gpt/1": [3.0, 3.0], "judgebench/gpt/2": [0.5, 0.5],
              "judgebench/gpt/3": [1.0, 0.0]}  # fmt: skip
    report = evaluate_scores(items, scores, EvalSpec(benchmark="judgebench", model_name="rm"))
    m = report.cells["scalar_k1"]
    assert m["accuracy"] == 0.25  # only pair 0: a tie cancels over the two games
    assert m["single_game_accuracy"] == 0.5  # pair 0 + pair 1 (tie = B>A, label B>A)
    assert m["tie_rate"] == 0.5 and m["position_flip_rate"] == 0.5  # the tie default flips with the order


def test_grm_eval_scores_file_gives_the_official_numbers_per_category(tmp_path):
    items = load_benchmark("judgebench", BENCHDATA, limit=40, progress=False)
    rng = np.random.default_rng(3)
    lines, official, single = [], collections.defaultdict(list), []
    for it in items:
        a, b = (float(x) for x in rng.integers(0, 3, 2))  # small integers: many ties
        lines.append(json.dumps({"id": it.id, "scores": [a, b]}))
        two, one = official_two_game("A>B" if it.best == 0 else "B>A", a, b)
        official[it.subset].append(two)
        single.append(one)
    path = tmp_path / "rm.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "report"
    args = ["eval", "-b", "judgebench", "--scores-file", str(path), "--limit", "40", "--output", str(out),
            "--benchdata", str(BENCHDATA)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    prefix = "eval/judgebench/rm/scalar_k1"
    every = [v for vs in official.values() for v in vs]
    assert metrics[f"{prefix}/overall"] == pytest.approx(np.mean(every))
    for category, values in official.items():
        assert metrics[f"{prefix}/{category}"] == pytest.approx(np.mean(values))
    assert metrics[f"{prefix}/macro_accuracy"] == pytest.approx(np.mean([np.mean(v) for v in official.values()]))
    assert metrics[f"{prefix}/single_game_accuracy"] == pytest.approx(np.mean(single))


class SplitVoteSampler:
    """Per request: samples alternate between a right verdict (tagged RIGHT) and a wrong one (tagged WRONG), so
    Voting@4 ties in each game; a meta RM that trusts RIGHT keeps the right half."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        out = []
        for p in prompts:
            shown = [text for _, text in RESPONSE_RE.findall(p)]
            right_first = shown[0].endswith("right")
            good = "9, 2" if right_first else "2, 9"
            bad = "2, 9" if right_first else "9, 2"
            out.append([f"RIGHT Scores: \\boxed{{{good}}}" if s % 2 == 0 else f"WRONG Scores: \\boxed{{{bad}}}"
                        for s in range(n)])  # fmt: skip
        return out


def test_metarm_at_k_is_decided_per_game():
    items = _cases({"case0": 0, "case1": 1}, [0, 1])

    def meta(prompts):
        return [1.0 if "RIGHT Scores" in p else 0.0 for p in prompts]

    report = evaluate(items, SplitVoteSampler(), EvalSpec(benchmark="judgebench", model_name="s", ks=(4,), methods=("voting", "metarm"), k_meta=2), meta_scorer=meta)  # fmt: skip
    assert report.cells["voting_k4"]["accuracy"] == 0.0 and report.cells["voting_k4"]["tie_rate"] == 1.0
    assert report.cells["metarm_k4"]["accuracy"] == 1.0 and report.cells["metarm_k4"]["tie_rate"] == 0.0
    assert [r["games"]["metarm_k4"] for r in report.per_item] == [[1, 1], [1, 1]]


def test_load_hub_reads_the_split_of_each_name(monkeypatch):
    import datasets

    from grm.benchmarks import load_hub

    calls = []

    def fake_load_dataset(path, name=None, data_dir=None, split=None, streaming=False):
        calls.append((path, split))
        return datasets.Dataset.from_list([row()])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (gpt,) = load_hub("judgebench")
    (claude,) = load_hub("judgebench-claude")
    assert calls == [("ScalerLab/JudgeBench", "gpt"), ("ScalerLab/JudgeBench", "claude")]
    assert (gpt.id, claude.id) == ("judgebench/gpt/p1", "judgebench/claude/p1")
