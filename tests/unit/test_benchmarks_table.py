"""The cross-benchmark table: headline per benchmark, the paper's Overall (full or partial), metrics, k curves.
(The PNG and ``grm eval`` on the real JudgeBench / RM-Bench text: tests/integration/test_eval_benchmarks.py.)"""

from __future__ import annotations

import json

import pytest

from grm.eval.report.benchmark import all_metrics, write_reports
from grm.eval.report.cross_table import cross_markdown, cross_metrics, cross_table, k_curves
from grm.eval.spec import EvalReport


def report(bench, scorer, cells, model="m"):
    for m in cells.values():
        m.setdefault("accuracy", 0.5)
        m.update(accuracy_ci_low=0.0, accuracy_ci_high=1.0)
    return EvalReport(bench, model, "random", None, {"scorer": scorer}, cells, 10)


def four_paper_benchmarks():
    return [
        report("rewardbench", "rewardbench", {"greedy_k1": {"overall": 0.8, "accuracy": 0.7},
                                              "voting_k8": {"overall": 0.9, "accuracy": 0.8}}),
        report("ppe-preference", "accuracy", {"greedy_k1": {"accuracy": 0.6}, "voting_k8": {"accuracy": 0.7}}),
        report("ppe-correctness", "ppe_correctness", {"greedy_k1": {"overall": 0.5}, "voting_k8": {"overall": 0.6}}),
        report("rmb", "rmb", {"greedy_k1": {"overall": 0.4}, "voting_k8": {"overall": 0.5}}),
    ]  # fmt: skip


def test_headline_columns_and_the_paper_overall_when_all_four_are_present():
    table = cross_table(four_paper_benchmarks())
    assert table.cells == ["greedy_k1", "voting_k8"]
    assert table.values["greedy_k1"] == {"rewardbench": 0.8, "ppe-preference": 0.6, "ppe-correctness": 0.5, "rmb": 0.4}
    assert table.paper_overall == {"greedy_k1": pytest.approx(0.575), "voting_k8": pytest.approx(0.675)}
    text = cross_markdown(table)
    assert "| greedy_k1 | 0.800 | 0.600 | 0.500 | 0.400 | 0.575 |" in text and "missing" not in text
    assert cross_metrics(table)["eval/table/m/voting_k8/paper_overall"] == pytest.approx(0.675)


def test_a_partial_paper_overall_is_labelled_and_names_what_is_missing():
    reports = [four_paper_benchmarks()[0], four_paper_benchmarks()[3],
               report("judgebench", "judgebench", {"greedy_k1": {"overall": 0.3}})]  # fmt: skip
    table = cross_table(reports)
    assert table.paper_missing == ["ppe-preference", "ppe-correctness"]
    assert table.paper_overall["greedy_k1"] == pytest.approx(0.6)  # mean of rewardbench and rmb only
    text = cross_markdown(table)
    assert "paper_overall_partial" in text and "missing here: ppe-preference, ppe-correctness" in text
    assert "| voting_k8 | 0.900 | 0.500 | n/a | 0.700 |" in text  # judgebench has no voting_k8 cell
    metrics = cross_metrics(table)
    assert "eval/table/m/greedy_k1/paper_overall_partial" in metrics and "eval/table/m/greedy_k1/judgebench" in metrics


def test_no_paper_benchmark_says_so_and_rows_are_ordered_by_method_then_k():
    cells = {c: {"overall": 0.5} for c in ("voting_k16", "metarm_k2", "voting_k2", "greedy_k1", "greedy_swap_k1")}
    table = cross_table([report("rm-bench", "rm_bench", cells)])
    assert table.cells == ["greedy_k1", "greedy_swap_k1", "voting_k2", "voting_k16", "metarm_k2"]
    assert "No paper Overall" in cross_markdown(table)
    assert k_curves(table) == {"rm-bench": {"voting": [(2, 0.5), (16, 0.5)]}}  # metarm at one k: no curve


def test_one_model_per_table():
    with pytest.raises(ValueError, match="one cross-benchmark table per model"):
        cross_table([report("a", "accuracy", {}, "m1"), report("b", "accuracy", {}, "m2")])


def test_realmistake_is_summarised_by_roc_auc():
    table = cross_table([report("realmistake", "realmistake", {"greedy_k1": {"accuracy": 0.5, "roc_auc": 0.7}})])
    assert table.headline == {"realmistake": "roc_auc"} and table.values["greedy_k1"]["realmistake"] == 0.7


def test_metrics_json_holds_the_table_only_with_two_benchmarks(tmp_path):
    one = all_metrics(four_paper_benchmarks()[:1])
    assert not any(k.startswith("eval/table/") for k in one)
    paths = write_reports(four_paper_benchmarks(), tmp_path)
    metrics = json.loads(paths["metrics"].read_text())
    assert metrics["eval/table/m/greedy_k1/rmb"] == 0.4
    assert (tmp_path / "report.md").read_text().index("Cross-benchmark table") < (
        tmp_path / "report.md"
    ).read_text().index("### rewardbench")
