"""``grm eval`` end to end on every local benchmark with a tiny random model (protocol wiring, not quality)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from grm.benchmarks import available
from grm_cli.eval import eval_command
from tests.helpers.benchdata import SHIPPED, with_rmb

BENCHDATA = SHIPPED  # the copy shipped in the repository (docs/benchdata.md); rmb: with_rmb
LOCAL = ["rewardbench", "rmb", "gsm8k-pairs", "realmistake", "judgebench", "judgebench-claude", "rm-bench"]


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)

    @app.callback()
    def main() -> None:  # keeps "eval" as a subcommand, as in grm_cli.app
        pass

    return app


def test_every_local_benchmark_is_covered():
    assert sorted(LOCAL) == available("benchmark", local=True)


@pytest.mark.slow
def test_grm_eval_runs_every_local_benchmark_on_a_tiny_model(tiny_model_dir, tmp_path):
    out = tmp_path / "eval"
    args = ["eval", "--benchmark", ",".join(LOCAL), "--model", str(tiny_model_dir), "--model-name", "tiny",
            "--limit", "1", "--k", "1,2", "--max-new-tokens", "4", "--template", "compact", "--no-hygiene",
            "--benchdata", str(with_rmb(tmp_path)), "--output", str(out)]  # fmt: skip
    start = time.perf_counter()
    result = CliRunner().invoke(_app(), args)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for bench in LOCAL:
        for cell in ("greedy_k1", "voting_k1", "voting_k2"):
            assert f"eval/{bench}/tiny/{cell}/accuracy" in metrics
            assert f"eval/{bench}/tiny/{cell}/parse_fail_rate" in metrics
    assert "eval/rewardbench/tiny/greedy_k1/overall" in metrics
    assert "eval/rmb/tiny/voting_k2/overall" in metrics
    assert "eval/realmistake/tiny/greedy_k1/roc_auc" in metrics
    report = (out / "report.md").read_text()
    assert all(f"### {b} - tiny" in report for b in LOCAL)
    assert json.loads((out / "params.json").read_text())["limit"] == 1
    assert elapsed < 30, f"the default-run eval test took {elapsed:.1f}s; keep it under 30s"


@pytest.mark.slow
def test_grm_eval_with_hygiene_paper_template_and_mlflow_tracking(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # tasks/ is importable from the repo root
    out = tmp_path / "eval"
    args = ["eval", "--benchmark", "rewardbench,realmistake", "--model", str(tiny_model_dir), "--model-name", "tiny",
            "--limit", "3", "--k", "1,2", "--max-new-tokens", "8", "--benchdata", str(BENCHDATA),
            "--output", str(out), "--track"]  # fmt: skip
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert "eval/rewardbench/tiny/greedy_k1/position_flip_rate" in metrics
    assert "eval/rewardbench/tiny/voting_k2/seed_agreement" in metrics
    assert "logged to MLflow run" in result.output

    import mlflow

    runs = mlflow.search_runs(experiment_names=["grm-eval"])
    assert len(runs) == 1
    assert runs.iloc[0]["params.tie_policy"] == "random"
