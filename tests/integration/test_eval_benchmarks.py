"""``grm eval`` on JudgeBench + RM-Bench real text with a scripted judge (the table, the plot, the hygiene
metrics), and the k plot; these import matplotlib and read the local files (over the 1 s unit-test budget)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grm.eval.report.cross_table import cross_table, plot_k_curves
from grm_cli import eval as eval_cmd
from tests.helpers.benchdata import SHIPPED, with_rmb
from tests.unit.test_benchmarks_evaluation import _app
from tests.unit.test_benchmarks_rmbench import LengthBiasedSampler
from tests.unit.test_benchmarks_table import report

BENCHDATA = SHIPPED  # the copy shipped in the repository (docs/benchdata.md)


def test_the_k_plot_is_a_png_and_is_skipped_without_two_ks(tmp_path):
    cells = {"greedy_k1": {"overall": 0.5}, "voting_k1": {"overall": 0.5}, "voting_k4": {"overall": 0.6}}
    path = plot_k_curves(cross_table([report("rmb", "rmb", cells)]), tmp_path / "k.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        plot_k_curves(cross_table([report("rmb", "rmb", {"scalar_k1": {"overall": 1.0}})]), tmp_path / "x.png") is None
    )


def test_grm_eval_on_judgebench_and_rm_bench_real_text_gives_the_table_and_the_plot(tmp_path, monkeypatch):
    monkeypatch.setattr(eval_cmd, "_build_sampler", lambda model, shard_size: LengthBiasedSampler())
    out = tmp_path / "report"
    args = ["eval", "-b", "judgebench,rm-bench", "--model", "scripted", "--limit", "10", "--k", "1,2,4",
            "--benchdata", str(BENCHDATA), "--output", str(out)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for cell in ("greedy_k1", "voting_k1", "voting_k2", "voting_k4"):
        assert metrics[f"eval/table/scripted/{cell}/judgebench"] == metrics[f"eval/judgebench/scripted/{cell}/overall"]
        assert metrics[f"eval/table/scripted/{cell}/rm-bench"] == metrics[f"eval/rm-bench/scripted/{cell}/overall"]
        assert f"eval/judgebench/scripted/{cell}/position_flip_rate" in metrics
        assert f"eval/rm-bench/scripted/{cell}/style_bias" in metrics
    # a length-biased judge prefers the fancier style whatever the substance: easy >> hard
    assert metrics["eval/rm-bench/scripted/voting_k4/style_bias"] > 0.5
    assert metrics["eval/rm-bench/scripted/greedy_k1/n_items"] == 90.0  # 10 prompts x 9 comparisons
    assert "### Cross-benchmark table - scripted" in result.output
    assert "No paper Overall" in result.output
    assert "Note: overall = accuracy over all pairs under the two-game rule (official, micro)" in result.output
    assert (out / "accuracy_vs_k.png").read_bytes()[:4] == b"\x89PNG"
    report_md = (out / "report.md").read_text()
    assert "Style levels per domain (rm-bench - scripted" in report_md
    assert (
        "### rm-bench - scripted (n=90 comparisons of 10 prompts, tie policy: random; official: strict)" in report_md
    )


@pytest.mark.slow
def test_grm_eval_judgebench_and_rm_bench_on_the_tiny_model_logs_the_table_to_mlflow(
    tiny_model_dir, tmp_path, monkeypatch
):
    """The world teacher cannot read real text (it parses the world's compact prompt), so the tiny model runs the
    protocols end to end: ``grm eval --benchmark judgebench,rm-bench --limit 10 --track``."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # tasks/ is importable from the repo root
    out = tmp_path / "eval"
    args = ["eval", "-b", "judgebench,rm-bench", "--model", str(tiny_model_dir), "--model-name", "tiny",
            "--limit", "10", "--k", "1,2", "--max-new-tokens", "4", "--template", "compact", "--no-hygiene",
            "--benchdata", str(BENCHDATA), "--output", str(out), "--track"]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for cell in ("greedy_k1", "voting_k1", "voting_k2"):
        for bench in ("judgebench", "rm-bench"):
            assert 0.0 <= metrics[f"eval/table/tiny/{cell}/{bench}"] <= 1.0
            assert f"eval/{bench}/tiny/{cell}/parse_fail_rate" in metrics
        assert f"eval/judgebench/tiny/{cell}/position_flip_rate" in metrics
        assert f"eval/rm-bench/tiny/{cell}/style_bias" in metrics
    assert metrics["eval/judgebench/tiny/greedy_k1/n_items"] == 10.0
    assert metrics["eval/rm-bench/tiny/greedy_k1/n_items"] == 90.0

    import mlflow

    (run_id,) = mlflow.search_runs(experiment_names=["grm-eval"])["run_id"]
    logged = mlflow.get_run(run_id).data.metrics
    assert logged["eval/table/tiny/voting_k2/rm-bench"] == pytest.approx(metrics["eval/table/tiny/voting_k2/rm-bench"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id, "eval_report")}
    assert "eval_report/accuracy_vs_k.png" in artifacts and "eval_report/report.md" in artifacts


def test_one_scores_file_over_four_benchmarks_gives_each_official_number_and_the_table(tmp_path):
    """``grm eval -b judgebench,rm-bench,rewardbench,rmb --scores-file``: every column equals the benchmark's
    official formula computed here from the same hand-made scores (RMB: a full copy, else its stand-in)."""
    import numpy as np

    from grm.benchmarks import load_benchmark
    from grm.benchmarks.scoring import rewardbench_sections
    from tests.unit.test_benchmarks_judgebench import official_two_game
    from tests.unit.test_benchmarks_rmbench import official_compute_accuracy

    root = with_rmb(tmp_path)
    rng = np.random.default_rng(7)
    lines, expected = [], {}
    jb = load_benchmark("judgebench", BENCHDATA, limit=12, progress=False)
    jb_scores = {it.id: [float(x) for x in rng.integers(0, 3, 2)] for it in jb}
    expected["judgebench"] = np.mean(
        [official_two_game("A>B" if it.best == 0 else "B>A", *jb_scores[it.id])[0] for it in jb]
    )
    rm = load_benchmark("rm-bench", BENCHDATA, limit=12, progress=False)
    rm_scores = {it.id: [float(x) for x in rng.integers(0, 4, 6)] for it in rm}
    domains = {}
    for it in rm:
        domains.setdefault(it.subset, []).append({"score_chosen": rm_scores[it.id][:3],
                                                  "score_rejected": rm_scores[it.id][3:]})  # fmt: skip
    expected["rm-bench"] = np.mean([np.mean(official_compute_accuracy(r)) for r in domains.values()])
    rb = load_benchmark("rewardbench", BENCHDATA, limit=12, progress=False)
    rb_scores = {it.id: list(rng.normal(size=2)) for it in rb}  # continuous: no ties
    per_subset = {}
    for it in rb:
        per_subset.setdefault(it.subset, []).append(float(rb_scores[it.id][0] > rb_scores[it.id][1]))
    expected["rewardbench"] = rewardbench_sections({s: np.mean(v) for s, v in per_subset.items()})["overall"]
    rmb = load_benchmark("rmb", root, limit=12, progress=False)
    rmb_scores = {it.id: list(rng.normal(size=it.n)) for it in rmb}
    sections = {}
    for it in rmb:
        s = rmb_scores[it.id]
        sections.setdefault(it.meta["section"], []).append(float(all(s[0] > x for x in s[1:])))  # best > every loser
    expected["rmb"] = np.mean([np.mean(v) for v in sections.values()])
    for scores in (jb_scores, rm_scores, rb_scores, rmb_scores):
        lines += [json.dumps({"id": i, "scores": s}) for i, s in scores.items()]
    path = tmp_path / "rm.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "report"
    args = ["eval", "-b", "judgebench,rm-bench,rewardbench,rmb", "--scores-file", str(path), "--limit", "12",
            "--tie-policy", "official", "--benchdata", str(root), "--output", str(out)]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for bench, value in expected.items():
        assert metrics[f"eval/table/rm/scalar_k1/{bench}"] == pytest.approx(value), bench
        assert metrics[f"eval/{bench}/rm/scalar_k1/overall"] == pytest.approx(value), bench
    assert metrics["eval/table/rm/scalar_k1/paper_overall_partial"] == pytest.approx(
        (expected["rewardbench"] + expected["rmb"]) / 2
    )
    assert "missing here: ppe-preference, ppe-correctness" in result.output
    assert not (out / "accuracy_vs_k.png").exists()  # a scalar RM has no k
