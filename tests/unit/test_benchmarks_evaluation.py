"""evaluate / evaluate_scores / report writers / eval_command wiring, with scripted samplers (no model)."""

from __future__ import annotations

import json
import re

import pytest
import typer
from typer.testing import CliRunner

from grm.eval.report.benchmark import markdown_table, write_reports
from grm.eval.run import evaluate, evaluate_scores
from grm.eval.scores_file import read_scores_file
from grm.eval.spec import EvalSpec
from grm.schemas import DataError, Item, write_items
from grm_cli import eval as eval_cmd

RESPONSE_RE = re.compile(r"\[The Begin of Response (\d+)\]\n(.*?)\n\[The End of Response \d+\]", re.S)


class QualitySampler:
    """Scores each shown response by its text: "good" -> 9, anything else -> 2 (order-independent judge)."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        out = []
        for p in prompts:
            shown = [text for _, text in RESPONSE_RE.findall(p)]
            if not shown:  # single-response template
                shown = [p.split("[The Begin of Response]\n")[1].split("\n[The End of Response]")[0]]
            scores = ", ".join("9" if t.startswith("good") else "2" for t in shown)
            out.append([f"Analysis: ok. Scores: \\boxed{{{scores}}}"] * n)
        return out


class FirstWinsSampler:
    """A maximally position-biased judge: the first shown response always gets 9, the others 2."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        out = []
        for p in prompts:
            k = len(RESPONSE_RE.findall(p))
            out.append(["Scores: \\boxed{" + ", ".join(["9"] + ["2"] * (k - 1)) + "}"] * n)
        return out


class TieSampler:
    """Always a tie (every response 5)."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        return [["Scores: \\boxed{" + ", ".join(["5"] * len(RESPONSE_RE.findall(p))) + "}"] * n for p in prompts]


class SeededRandomSampler:
    """Random scores that depend only on (prompt, seed): reproducible like a real seeded backend."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        import numpy as np

        from grm.method.voting import derive_seed

        out = []
        for p in prompts:
            k = max(1, len(RESPONSE_RE.findall(p)))
            rng = np.random.default_rng(derive_seed(p, seed))
            out.append(["Scores: \\boxed{" + ", ".join(map(str, rng.integers(1, 11, k))) + "}" for _ in range(n)])
        return out


def pairs(n=6):
    return [Item(f"toy/s/{i}", f"question {i}", (f"good {i}", f"bad {i}"), best=0, subset="s") for i in range(n)]


def test_metric_names_follow_the_eval_benchmark_model_method_k_pattern():
    report = evaluate(pairs(), QualitySampler(), EvalSpec(benchmark="toy", model_name="runs/m 1", ks=(1, 4)))
    names = report.metrics()
    assert "eval/toy/runs_m_1/greedy_k1/accuracy" in names
    assert "eval/toy/runs_m_1/voting_k4/accuracy_ci_low" in names
    assert "eval/toy/runs_m_1/voting_k4/seed_agreement" in names
    assert "eval/toy/runs_m_1/greedy_k1/position_flip_rate" in names
    assert names["eval/toy/runs_m_1/voting_k4/accuracy"] == 1.0
    assert names["eval/toy/runs_m_1/greedy_k1/position_flip_rate"] == 0.0


def test_per_item_credits_match_the_cells_and_seed_agreement_can_be_skipped():
    report = evaluate(
        pairs(8), FirstWinsSampler(), EvalSpec(benchmark="toy", model_name="m", ks=(1, 4), seed_agreement=False)
    )
    assert "seed_agreement" not in report.cells["voting_k4"]
    assert "position_flip_rate" in report.cells["greedy_k1"]  # the cheap hygiene pass still runs
    for cell in ("greedy_k1", "voting_k1", "voting_k4"):
        credits = [row["credit"][cell] for row in report.per_item]
        assert sum(credits) / len(credits) == pytest.approx(report.cells[cell]["accuracy"])


def test_greedy_over_both_orders_gives_a_position_biased_judge_half_credit_on_every_pair():
    items = pairs(9) + [Item("toy/s/one", "q", ("good one",), label=1, subset="s")]
    biased = evaluate(items, FirstWinsSampler(), EvalSpec(benchmark="toy", model_name="m", ks=(1,)))
    swap = [row["credit"]["greedy_swap_k1"] for row in biased.per_item]
    assert swap[:9] == [0.5] * 9  # right in one order, wrong in the other, whatever the seeded first order was
    assert swap[9] == biased.per_item[9]["credit"]["greedy_k1"]  # n = 1: no second order
    assert biased.cells["greedy_swap_k1"]["accuracy"] == pytest.approx(sum(swap) / len(swap))
    fair = evaluate(pairs(9), QualitySampler(), EvalSpec(benchmark="toy", model_name="m", ks=(1,)))
    assert fair.cells["greedy_swap_k1"]["accuracy"] == 1.0
    off = evaluate(pairs(9), QualitySampler(), EvalSpec(benchmark="toy", model_name="m", ks=(1,), hygiene=False))
    assert "greedy_swap_k1" not in off.cells  # it reuses the hygiene pass's reversed order


def test_identical_seeds_give_identical_reports_and_other_seeds_differ():
    items = pairs(12)
    spec = EvalSpec(benchmark="toy", model_name="m", ks=(1, 4), seed=3)
    a = evaluate(items, SeededRandomSampler(), spec)
    b = evaluate(items, SeededRandomSampler(), spec)
    c = evaluate(items, SeededRandomSampler(), spec.replace(seed=4))
    assert a.metrics() == b.metrics() and a.per_item == b.per_item
    assert a.per_item != c.per_item


def test_position_bias_is_caught_by_the_flip_rate_and_inflates_original_order_greedy():
    items = pairs(8)
    shuffled = evaluate(items, FirstWinsSampler(), EvalSpec(benchmark="toy", model_name="m", ks=(2,)))
    original = evaluate(
        items, FirstWinsSampler(), EvalSpec(benchmark="toy", model_name="m", ks=(2,), greedy_order="original")
    )
    assert shuffled.cells["greedy_k1"]["position_flip_rate"] == 1.0
    assert original.cells["greedy_k1"]["accuracy"] == 1.0  # the chosen response is stored first
    assert shuffled.cells["greedy_k1"]["accuracy"] < 1.0


@pytest.mark.parametrize(("policy", "accuracy"), [("strict", 0.0), ("half", 0.5), ("official", 0.0)])
def test_tie_policies_apply_to_every_cell(policy, accuracy):
    report = evaluate(pairs(), TieSampler(), EvalSpec(benchmark="rmb", model_name="m", ks=(2,), tie_policy=policy))
    assert report.tie_policy == ("strict" if policy == "official" else policy)
    assert report.official_tie_policy == "strict"
    for cell in report.cells.values():
        assert cell["accuracy"] == accuracy and cell["tie_rate"] == 1.0


def test_random_tie_policy_is_near_half_and_seeded():
    report = evaluate(pairs(40), TieSampler(), EvalSpec(benchmark="toy", model_name="m", ks=(1,), seed=1))
    assert 0.25 < report.cells["greedy_k1"]["accuracy"] < 0.75


def test_rewardbench_cells_carry_section_scores():
    items = [
        Item("rewardbench/alpacaeval-easy/1", "q", ("good", "bad"), best=0, subset="alpacaeval-easy"),
        Item("rewardbench/hep-go/1", "q", ("bad", "good"), best=1, subset="hep-go"),
    ]
    report = evaluate(items, QualitySampler(), EvalSpec(benchmark="rewardbench", model_name="m", ks=(2,)))
    cell = report.cells["voting_k2"]
    assert cell["chat"] == 1.0 and cell["reasoning"] == 1.0 and cell["overall"] == 1.0
    assert cell["subset/hep-go"] == 1.0


def test_single_response_items_get_roc_auc():
    items = [Item(f"realmistake/t/{i}", "task", (f"{'good' if i % 2 else 'bad'} {i}",), label=i % 2, subset="t")
             for i in range(6)]  # fmt: skip
    report = evaluate(items, QualitySampler(), EvalSpec(benchmark="realmistake", model_name="m", ks=(1,)))
    assert report.cells["greedy_k1"]["roc_auc"] == 1.0
    assert "position_flip_rate" not in report.cells["greedy_k1"]  # order is meaningless for n = 1


def test_metarm_needs_a_meta_scorer():
    with pytest.raises(ValueError, match="--meta-rm"):
        evaluate(pairs(), QualitySampler(), EvalSpec(benchmark="toy", model_name="m", methods=("metarm",)))


def test_metarm_cells_use_the_meta_scores():
    report = evaluate(pairs(), QualitySampler(), EvalSpec(benchmark="toy", model_name="m", ks=(2,), methods=("voting", "metarm"), k_meta=1), meta_scorer=lambda prompts: [1.0] * len(prompts))  # fmt: skip
    assert report.cells["metarm_k2"]["accuracy"] == 1.0


# ---------------------------------------------------------------- scores-file path


def test_scores_file_is_scored_with_the_same_code(tmp_path):
    items = pairs(3)
    path = tmp_path / "scores.jsonl"
    lines = [{"id": "toy/s/0", "scores": [2.5, 1.0]}, {"id": "toy/s/1", "scores": [0.0, 3.0]},
             {"id": "toy/s/2", "scores": [1, 1]}, {"id": "other/x", "scores": [1]}]  # fmt: skip
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    scores = read_scores_file(path)
    report = evaluate_scores(items, scores, EvalSpec(benchmark="toy", model_name="rm", tie_policy="half"))
    cell = report.cells["scalar_k1"]
    assert cell["accuracy"] == pytest.approx((1 + 0 + 0.5) / 3) and cell["tie_rate"] == pytest.approx(1 / 3)
    assert "eval/toy/rm/scalar_k1/accuracy" in report.metrics()


def test_scores_file_errors_name_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "scores": [1]}\n{"id": 3, "scores": [1]}\n{"id": "b", "scores": []}\nnope\n')
    with pytest.raises(DataError) as info:
        read_scores_file(path)
    assert [e.split(": ", 1)[1] for e in info.value.errors] == [
        "id: missing or not a string",
        "scores: must be a non-empty list of finite numbers",
        "<json>: invalid JSON (Expecting value at column 1)",
    ]
    with pytest.raises(DataError, match="toy/s/1: scores: missing"):
        evaluate_scores(pairs(2), {"toy/s/0": [1.0, 0.0]}, EvalSpec(benchmark="toy", model_name="rm"))
    with pytest.raises(DataError, match="3 numbers for 2 responses"):
        evaluate_scores(pairs(1), {"toy/s/0": [1.0, 0.0, 2.0]}, EvalSpec(benchmark="toy", model_name="rm"))


# ---------------------------------------------------------------- writers and the command


def test_reports_are_written_as_flat_metrics_and_markdown(tmp_path):
    report = evaluate(pairs(), QualitySampler(), EvalSpec(benchmark="toy", model_name="m", ks=(2,)))
    paths = write_reports([report], tmp_path / "out", params={"seed": 0})
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["eval/toy/m/voting_k2/accuracy"] == 1.0
    assert metrics["eval/toy/m/voting_k2/seed_agreement"] == 1.0
    text = paths["report"].read_text()
    assert "| greedy_k1 |" in text and "tie policy: random" in text
    assert len(paths["items/toy"].read_text().splitlines()) == 6
    assert "accuracy [95% CI]" in markdown_table(report)


def _plain(output: str) -> str:
    """CLI output without rich's box drawing and line wrapping."""
    return " ".join(output.replace("│", " ").split())


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_cmd.eval_command)

    @app.callback()
    def main() -> None:  # keeps "eval" as a subcommand
        pass

    return app


def test_eval_command_scores_a_scores_file_on_a_canonical_jsonl(tmp_path):
    data = write_items(tmp_path / "toy.jsonl", pairs(4))
    scores = tmp_path / "rm.jsonl"
    scores.write_text("".join(json.dumps({"id": f"toy/s/{i}", "scores": [1.0, 0.0]}) + "\n" for i in range(4)))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        _app(), ["eval", "--benchmark", str(data), "--scores-file", str(scores), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "| scalar_k1 |" in result.output
    assert json.loads((out / "metrics.json").read_text())["eval/toy/rm/scalar_k1/accuracy"] == 1.0


def test_eval_command_rejects_unknown_benchmarks_with_the_list(tmp_path):
    result = CliRunner().invoke(
        _app(), ["eval", "--benchmark", "nope", "--scores-file", "x.jsonl", "--benchdata", str(tmp_path)]
    )
    assert result.exit_code == 2 and "Unknown benchmark 'nope'. Available:" in _plain(result.output)


def test_eval_command_needs_exactly_one_of_model_and_scores_file(tmp_path):
    result = CliRunner().invoke(_app(), ["eval", "--benchmark", "rewardbench"])
    assert result.exit_code == 2 and "exactly one of --model" in _plain(result.output)


def test_parse_ks_names_the_bad_value():
    assert eval_cmd.parse_ks("8,1,8") == [1, 8]
    with pytest.raises(typer.BadParameter, match="'x' is not a positive integer"):
        eval_cmd.parse_ks("1,x")


# ---------------------------------------------------------------- custom benchmark files with subsets


def _subset_items():
    """Six pairs in two subsets of unequal size: 'easy' (4 items) and 'hard: x' (2 items, a name MLflow rejects)."""
    easy = [Item(f"my/easy/{i}", f"q{i}", (f"good {i}", f"bad {i}"), best=0, subset="easy") for i in range(4)]
    hard = [Item(f"my/hard/{i}", f"h{i}", (f"good {i}", f"bad {i}"), best=1, subset="hard: x") for i in range(2)]
    return easy + hard


def _scores_for(items, right):
    """A scalar RM's scores that rank the best response first for the ids in ``right``, last otherwise."""
    lines = []
    for it in items:
        scores = [0.0] * it.n
        scores[it.best if it.id in right else 1 - it.best] = 1.0
        lines.append(json.dumps({"id": it.id, "scores": scores}) + "\n")
    return "".join(lines)


def test_eval_command_reports_per_subset_and_macro_micro_accuracy_for_a_scores_file(tmp_path):
    items = _subset_items()
    data = write_items(tmp_path / "my.jsonl", items)
    scores = tmp_path / "rm.jsonl"
    # easy: 3 of 4 right (0.75); hard: 0 of 2 -> macro (0.75 + 0) / 2 = 0.375, micro 3 / 6 = 0.5
    scores.write_text(_scores_for(items, right={"my/easy/0", "my/easy/1", "my/easy/2"}))
    out = tmp_path / "report"
    args = ["eval", "--benchmark", str(data), "--scores-file", str(scores), "--output", str(out)]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    prefix = "eval/my/rm/scalar_k1"
    assert metrics[f"{prefix}/subset/easy"] == 0.75
    assert metrics[f"{prefix}/subset/hard_ x"] == 0.0  # ':' is not allowed in an MLflow metric name
    assert metrics[f"{prefix}/macro_accuracy"] == 0.375
    assert metrics[f"{prefix}/micro_accuracy"] == 0.5 == metrics[f"{prefix}/accuracy"]
    assert metrics[f"{prefix}/n_subsets"] == 2.0
    assert f"{prefix}/parse_fail_rate" not in metrics  # nothing is parsed for scalar scores
    for text in (result.output, (out / "report.md").read_text()):
        assert "| easy | 4 | 0.750 |" in text and "| hard_ x | 2 | 0.000 |" in text
        assert "| macro mean (unweighted over 2 subsets) | 6 | 0.375 |" in text
        assert "| micro mean (over 6 items) | 6 | 0.500 |" in text


def test_scores_file_report_leaves_out_the_sampling_parameters(tmp_path):
    items = _subset_items()
    data = write_items(tmp_path / "my.jsonl", items)
    scores = tmp_path / "rm.jsonl"
    scores.write_text(_scores_for(items, right={it.id for it in items}))
    out = tmp_path / "report"
    result = CliRunner().invoke(_app(), ["eval", "-b", str(data), "--scores-file", str(scores), "--output", str(out)])
    assert result.exit_code == 0, result.output
    params = json.loads((out / "params.json").read_text())
    assert params["scores_file"] == str(scores)
    generative = {"k", "k_meta", "meta_rm", "temperature", "max_new_tokens", "template", "greedy_order", "model"}
    assert not generative & set(params), params
    header = (out / "report.md").read_text().split("###")[0]
    assert "- scores_file:" in header
    assert not any(f"- {p}:" in header for p in generative), header


@pytest.mark.parametrize(
    "extra",
    [
        ["--k", "1,8"],  # even the default value, given explicitly, is refused: it would be silently ignored
        ["--temperature", "0.7"],
        ["--k-meta", "2"],
        ["--no-hygiene"],
    ],
)
def test_scores_file_refuses_sampling_options(tmp_path, extra):
    data = write_items(tmp_path / "my.jsonl", _subset_items())
    scores = tmp_path / "rm.jsonl"
    scores.write_text(_scores_for(_subset_items(), right=set()))
    result = CliRunner().invoke(_app(), ["eval", "-b", str(data), "--scores-file", str(scores), *extra])
    assert result.exit_code == 2
    assert extra[0] in _plain(result.output) and "for sampling a GRM with --model only" in _plain(result.output)


def test_eval_command_reports_subsets_for_a_sampled_grm_on_a_custom_file(tmp_path, monkeypatch):
    items = _subset_items()
    items[4] = Item("my/hard/0", "h0", ("bad 0", "good 0"), best=1, subset="hard: x")  # the judge is right
    items[5] = Item("my/hard/1", "h1", ("bad 1", "bad 2"), best=1, subset="hard: x")  # it ties: 0 under strict
    data = write_items(tmp_path / "my.jsonl", items)
    monkeypatch.setattr(eval_cmd, "_build_sampler", lambda model, shard_size: QualitySampler())
    out = tmp_path / "report"
    args = ["eval", "-b", str(data), "--model", "scripted", "--k", "1,2", "--tie-policy", "strict",
            "--no-hygiene", "--output", str(out)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for cell in ("greedy_k1", "voting_k1", "voting_k2"):
        assert metrics[f"eval/my/scripted/{cell}/subset/easy"] == 1.0
        assert metrics[f"eval/my/scripted/{cell}/subset/hard_ x"] == 0.5
        assert metrics[f"eval/my/scripted/{cell}/macro_accuracy"] == 0.75
        assert metrics[f"eval/my/scripted/{cell}/micro_accuracy"] == pytest.approx(5 / 6)
    assert "| macro mean (unweighted over 2 subsets) | 6 | 0.750 | 0.750 | 0.750 |" in result.output
    params = json.loads((out / "params.json").read_text())
    assert params["k"] == "1,2" and params["temperature"] == 0.5 and "scores_file" not in params
    assert "k_meta" not in params  # no --meta-rm: k_meta means nothing


def test_one_subset_adds_no_per_subset_metrics():
    report = evaluate(pairs(), QualitySampler(), EvalSpec(benchmark="toy", model_name="m", ks=(1,), hygiene=False))
    assert not any(k.startswith("subset/") or "macro" in k for k in report.cells["greedy_k1"])
    assert "Accuracy per subset" not in markdown_table(report)


def test_the_order_averaged_greedy_cell_carries_the_benchmark_scores():
    items = [Item(f"rewardbench/{s}/{i}", f"q{i}", (f"good {i}", f"bad {i}"), best=0, subset=s)
             for i, s in enumerate(["alpacaeval-easy", "math-prm", "hep-go"])]  # fmt: skip
    report = evaluate(items, FirstWinsSampler(), EvalSpec(benchmark="rewardbench", model_name="b", ks=(1,)))
    swap = report.cells["greedy_swap_k1"]
    assert swap["chat"] == 0.5 and swap["reasoning"] == 0.5 and swap["overall"] == 0.5  # each pair: 1 then 0
