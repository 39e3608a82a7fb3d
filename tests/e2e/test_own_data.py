"""A user's first run on their own data, end to end: the tiny pipeline on a data folder that is not the embedded
world (written by ``grm world`` into a folder of another name, with its general.jsonl), plus one real benchmark and
one of the paper's RFT ablations. Metrics are named eval/heldout/... (never after the folder), the registry decides
on a benchmark metric. The benchmark is read from the copy shipped in the repository (the default eval.benchdata):
no ../shared needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, TINY_CONFIG, PrefectServer, make_project, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]  # trains tiny models


def test_tiny_pipeline_on_a_non_world_folder_with_a_benchmark(prefect_server: PrefectServer, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    data = project / "my prefs"  # a space too: the folder's name is in no metric name
    subprocess.run(
        [sys.executable, "-m", "grm_cli.app", "world", "--output", str(data), "--config", str(TINY_CONFIG)],
        cwd=REPO, env=prefect_server.env(), check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert {p.name for p in data.iterdir()} == {"train.jsonl", "val.jsonl", "test.jsonl", "general.jsonl"}
    overrides = ["data.source=my prefs", "rft.sft_unfiltered=false", "eval.limit=12", "rft.ablations=[no_principles]"]
    gate = "eval/realmistake/rl/greedy_k1/accuracy"  # a benchmark metric gates the registry
    overrides += ["eval.benchmarks=[realmistake]", "eval.benchmark_limit=2", f"registry.gate_metric={gate}"]
    out = run_flow(prefect_server, "spct_pipeline", project, *[a for o in overrides for a in ("--set", o)])
    metrics = out["metrics"]
    assert "eval/heldout/rl/voting_k4/accuracy" in metrics and "eval/heldout/rft/greedy_k1/accuracy" in metrics
    assert not any(k.startswith("eval/world/") for k in metrics)
    assert "rft.ablation.no_principles" in out["stages"] and "rft.train_unfiltered" not in out["stages"]
    assert "eval/heldout/rft_no_principles/greedy_k1/accuracy" in metrics  # the paper's row, evaluated
    assert "eval/heldout/rft_vs_rft_no_principles/gap_greedy_k1/value" in metrics  # and compared with full RFT
    decision = out["registry"]
    assert decision["gate_metric"] == gate and decision["new_value"] == metrics[gate]
    assert decision["alias"] in ("champion", "challenger") and decision["version"]
    for model in ("rft", "rl"):
        assert f"bench.realmistake.{model}" in out["stages"]
        assert metrics[f"eval/realmistake/{model}/context/n_loaded"] == 2
        fit = metrics[f"eval/realmistake/{model}/context/n_fit"]
        assert fit + metrics[f"eval/realmistake/{model}/context/n_refused"] == 2
