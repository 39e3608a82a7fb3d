"""RewardBench 2 (hub only): hub-schema rows, bad rows, the 1/k tie credit, the Ties formula, n = 4 judgements."""

from __future__ import annotations

import math

import datasets
import numpy as np
import pytest

from grm.benchmarks import convert_rows, get_benchmark, load_benchmark
from grm.benchmarks.scoring import rewardbench2_ties
from grm.eval.run import evaluate, evaluate_scores
from grm.eval.spec import EvalSpec
from grm.schemas import DataError
from tests.unit.test_benchmarks_evaluation import RESPONSE_RE, QualitySampler


def hub_row(rid="17", subset="Factuality", chosen=("good c",), rejected=("r1", "r2", "r3"), **extra):
    row = {"id": rid, "prompt": f"prompt {rid}", "chosen": list(chosen), "rejected": list(rejected),
           "num_correct": len(chosen), "num_rejected": len(rejected),
           "total_completions": len(chosen) + len(rejected), "models": ["m"] * (len(chosen) + len(rejected)),
           "subset": subset}  # fmt: skip
    row.update(extra)
    return row


def _ds(rows):
    return datasets.Dataset.from_list(rows)


# ---------------------------------------------------------------- converter


def test_hub_rows_become_best_of_4_items_with_the_chosen_first():
    (item,) = convert_rows("rewardbench2", _ds([hub_row()]))
    assert (item.id, item.n, item.best, item.subset) == ("rewardbench2/Factuality/17", 4, 0, "Factuality")
    assert item.responses == ("good c", "r1", "r2", "r3") and item.meta == {"num_correct": 1}
    assert get_benchmark("rewardbench2").hub[0].path == "allenai/reward-bench-2"


def test_ties_rows_keep_every_correct_answer_first_and_their_pairing():
    ref = hub_row("ref:3", "Ties", chosen=("4",), rejected=("5", "6"))
    tied = hub_row("tied:3", "Ties", chosen=("2", "4", "6"), rejected=("3", "5"))
    a, b = convert_rows("rewardbench2", _ds([ref, tied]))
    assert a.id == "rewardbench2/Ties/ref:3" and a.meta == {"num_correct": 1, "ties_type": "ref", "ties_prompt": "3"}
    assert b.responses[:3] == ("2", "4", "6") and b.meta["num_correct"] == 3 and b.meta["ties_type"] == "tied"


def test_malformed_rows_are_all_reported():
    rows = [
        hub_row("1"),
        hub_row("2", num_correct=2),
        hub_row("3", chosen=("a", "b"), rejected=("c", "d")),
        hub_row("x:9", "Ties"),
        hub_row("5", rejected=()),
        hub_row("6", total_completions=5),
    ]
    with pytest.raises(DataError) as info:
        convert_rows("rewardbench2", rows, source="hf://rb2")
    assert info.value.errors == [
        "hf://rb2:2: num_correct: 2 but the row has 1 chosen responses",
        "hf://rb2:3: chosen: 2 chosen responses; a best-of-N row (Factuality) has exactly one",
        "hf://rb2:4: id: 'x:9': a Ties id is 'ref:<n>' or 'tied:<n>'",
        "hf://rb2:5: rejected: empty list; every row has at least one chosen and one rejected response",
        "hf://rb2:6: total_completions: 5 but the row has 4 responses",
    ]


def test_there_is_no_local_copy():
    with pytest.raises(ValueError, match="hub only: allenai/reward-bench-2"):
        load_benchmark("rewardbench2", ".")


# ---------------------------------------------------------------- scoring


@pytest.mark.parametrize(
    ("scores", "credit"),
    [
        ([9, 1, 1, 1], 1.0),
        ([5, 5, 1, 1], 1 / 2),  # two at the top: 1/k
        ([5, 5, 5, 1], 1 / 3),
        ([5, 5, 5, 5], 1 / 4),
        ([4, 5, 1, 1], 0.0),
        ([4, 5, 5, 1], 0.0),
    ],
)
def test_best_of_4_credit_is_one_over_the_number_tied_at_the_top(scores, credit):
    items = convert_rows("rewardbench2", [hub_row("1")])
    report = evaluate_scores(
        items, {items[0].id: scores}, EvalSpec(benchmark="rewardbench2", model_name="rm", tie_policy="official")
    )
    assert report.tie_policy == "half"
    assert report.cells["scalar_k1"]["subset/Factuality"] == pytest.approx(credit)


def official_ties(rows):
    """rewardbench/utils.py::process_single_model (05a9005), transcribed: rows = (id 'ref:n', num_correct, scores)."""
    ref, tied = {}, {}
    for rid, num_correct, scores in rows:
        kind, pid = rid.split(":")
        correct = [s for i, s in enumerate(scores) if i < num_correct]
        wrong = [s for i, s in enumerate(scores) if i >= num_correct]
        stats = (min(correct) - max(wrong) > 0, max(correct) - min(correct) if len(correct) > 1 else None,
                 min(correct) - max(wrong))  # fmt: skip
        (ref if kind == "ref" else tied)[int(pid)] = stats
    ref_acc = np.mean([s[0] for s in ref.values()])
    tied_acc = np.mean([s[0] for s in tied.values()])
    shared = set(ref) & set(tied)
    dcm = np.array([tied[p][1] for p in shared])
    cit = np.array([tied[p][2] for p in shared])
    cir = np.array([ref[p][2] for p in shared])
    with np.errstate(invalid="ignore", divide="ignore"):
        margin = np.nan_to_num(np.tanh(np.minimum(cir, cit) / dcm - 1), nan=0.0)
    return (0.3 * tied_acc + 0.3 * ref_acc + 0.2 * np.mean(cit > dcm) + 0.2 * np.mean(np.minimum(cir, cit) > dcm)
            + 0.01 * float(np.mean(margin)))  # fmt: skip


def test_ties_formula_by_hand():
    # prompt 1: ref correct 8 vs wrong (3, 2): margin 5, accurate.  tied: correct (8, 7), wrong (4,): spread 1,
    #   margin 3, accurate; 3 > 1 (preferred) and min(5, 3) = 3 > 1 (hard); tanh(3/1 - 1) = tanh(2)
    # prompt 2: ref correct 5 vs wrong (6,): margin -1, wrong.  tied: correct (6, 2), wrong (3,): spread 4,
    #   margin -1, wrong; not preferred; tanh(min(-1, -1)/4 - 1) = tanh(-1.25)
    rows = [("ref:1", 1, [8, 3, 2]), ("tied:1", 2, [8, 7, 4]), ("ref:2", 1, [5, 6]), ("tied:2", 2, [6, 2, 3])]
    items = convert_rows(
        "rewardbench2",
        [hub_row(r, "Ties", chosen=[str(x) for x in s[:n]], rejected=[str(x) for x in s[n:]]) for r, n, s in rows],
    )
    out = rewardbench2_ties(items, [s for _, _, s in rows])
    expected = 0.3 * 0.5 + 0.3 * 0.5 + 0.2 * 0.5 + 0.2 * 0.5 + 0.01 * (math.tanh(2) + math.tanh(-1.25)) / 2
    assert out["ties"] == pytest.approx(expected) == pytest.approx(official_ties(rows))
    assert out["ties/correctness_preferred"] == 0.5 and out["ties/ref_accuracy"] == 0.5


def test_ties_margin_term_divides_zero_spread_like_numpy():
    # equal correct scores (spread 0): margin 2 / 0 -> inf -> tanh -> 1; margin 0 / 0 -> NaN -> 0
    rows = [("ref:1", 1, [5, 3]), ("tied:1", 2, [5, 5, 3]), ("ref:2", 1, [5, 5]), ("tied:2", 2, [5, 5, 5])]
    items = convert_rows(
        "rewardbench2",
        [hub_row(r, "Ties", chosen=[str(x) for x in s[:n]], rejected=[f"w{x}" for x in s[n:]]) for r, n, s in rows],
    )
    out = rewardbench2_ties(items, [s for _, _, s in rows])
    assert out["ties/margin_score"] == pytest.approx(0.5)
    assert out["ties"] == pytest.approx(official_ties(rows))


def test_subset_scores_and_overall_mean_with_ties_from_a_scores_file():
    rows = [hub_row("1"), hub_row("2"), hub_row("3", "Math"),
            hub_row("ref:1", "Ties", chosen=("a",), rejected=("b", "c")),
            hub_row("tied:1", "Ties", chosen=("a", "d"), rejected=("b",))]  # fmt: skip
    items = convert_rows("rewardbench2", rows)
    values = [[3, 3, 1, 0], [1, 2, 0, 0], [7, 1, 1, 1], [9, 1, 1], [9, 8, 1]]
    scores = dict(zip([it.id for it in items], values, strict=True))
    report = evaluate_scores(items, scores, EvalSpec(benchmark="rewardbench2", model_name="rm", tie_policy="official"))
    m = report.cells["scalar_k1"]
    ties = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 * math.tanh(7 / 1 - 1)
    assert m["subset/Factuality"] == 0.25 and m["subset/Math"] == 1.0
    assert m["subset/Ties"] == pytest.approx(ties) == m["ties"]
    assert m["overall"] == pytest.approx((0.25 + 1.0 + ties) / 3)


# ---------------------------------------------------------------- the GRM


class RecordingQualitySampler(QualitySampler):
    def __init__(self):
        self.prompts = []

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        self.prompts += prompts
        return super().generate(prompts, n, temperature, max_new_tokens, seed)


def test_grm_rates_the_four_responses_in_one_judgement_with_a_shuffle_per_sample():
    items = convert_rows("rewardbench2", [hub_row(str(i)) for i in range(4)])
    sampler = RecordingQualitySampler()
    report = evaluate(items, sampler, EvalSpec(benchmark="rewardbench2", model_name="q", ks=(1, 4), hygiene=False))
    assert all(len(RESPONSE_RE.findall(p)) == 4 for p in sampler.prompts)
    positions = {[t for _, t in RESPONSE_RE.findall(p)].index("good c") for p in sampler.prompts}
    assert len(positions) > 1  # the chosen response moves between samples
    assert report.cells["voting_k4"]["overall"] == 1.0 == report.cells["voting_k4"]["subset/Factuality"]


def test_load_hub_streams_the_test_split(monkeypatch):
    from grm.benchmarks import load_hub

    calls = []

    def fake_load_dataset(path, name=None, data_dir=None, split=None, streaming=False):
        calls.append((path, split, streaming))
        return _ds([hub_row("1"), hub_row("ref:1", "Ties", chosen=("a",), rejected=("b", "c"))])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    items = load_hub("rewardbench2")
    assert calls == [("allenai/reward-bench-2", "test", True)]
    assert [it.subset for it in items] == ["Factuality", "Ties"]


def test_grm_eval_names_the_hub_only_benchmark_and_scores_its_exported_file(tmp_path):
    import json

    from typer.testing import CliRunner

    from grm.schemas import write_items
    from tests.unit.test_benchmarks_evaluation import _app, _plain

    result = CliRunner().invoke(_app(), ["eval", "-b", "rewardbench2", "--scores-file", "x.jsonl",
                                         "--benchdata", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 2 and "hub only: allenai/reward-bench-2" in _plain(result.output)
    items = convert_rows("rewardbench2", [hub_row("1"), hub_row("2", "Math"),
                                          hub_row("ref:1", "Ties", chosen=("a",), rejected=("b", "c")),
                                          hub_row("tied:1", "Ties", chosen=("a", "d"), rejected=("b",))])  # fmt: skip
    data = write_items(tmp_path / "rewardbench2.jsonl", items)
    scores = tmp_path / "rm.jsonl"
    values = [[5, 5, 1, 1], [9, 1, 1, 1], [9, 1, 1], [9, 8, 1]]
    scores.write_text(
        "".join(json.dumps({"id": it.id, "scores": v}) + "\n" for it, v in zip(items, values, strict=True))
    )
    out = tmp_path / "report"
    args = ["eval", "-b", str(data), "--scores-file", str(scores), "--tie-policy", "official", "--output", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    ties = 0.3 + 0.3 + 0.2 + 0.2 + 0.01 * math.tanh(7 / 1 - 1)
    assert metrics["eval/rewardbench2/rm/scalar_k1/subset/Factuality"] == 0.5  # 1/k with k = 2
    assert metrics["eval/rewardbench2/rm/scalar_k1/overall"] == pytest.approx((0.5 + 1.0 + ties) / 3)
