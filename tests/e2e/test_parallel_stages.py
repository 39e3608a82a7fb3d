"""Stages at once vs one at a time: the tiny pipeline with ``runtime.parallel_stages`` 2 (builds in their own
processes, beside each other) and 1 (one build at a time in the flow's process) computes the same stages under the
same keys with the same metrics; only the wall time may differ. The run with 2 is the session's plain tiny run
(``uninterrupted``: tiny.yaml leaves ``runtime.parallel_stages`` at its default, 2, in a fresh project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.engine import workers
from tests.e2e.conftest import TINY_CONFIG, PrefectServer, make_project, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # one tiny pipeline beside the shared one
TIMING = ("seconds", "per_step", "runtime", "per_second")


def test_stages_at_once_give_the_keys_and_metrics_of_one_at_a_time(
    prefect_server: PrefectServer, uninterrupted: dict, tmp_path: Path
):
    assert "parallel_stages" not in TINY_CONFIG.read_text()  # the shared run builds with the default: 2 at once
    project = make_project(tmp_path / "parallel1")
    one = run_flow(prefect_server, "spct_pipeline", project, "--set", "runtime.parallel_stages=1")
    one["log"] = (project / "spct_pipeline.log").read_text()
    two = uninterrupted
    assert {s: v["key"] for s, v in one["stages"].items()} == {s: v["key"] for s, v in two["stages"].items()}
    assert {"rft.train", "rft.train_unfiltered", "rl.train", "meta_rm.train", "eval.rl"} <= set(one["stages"])
    assert not any(v["cached"] for v in two["stages"].values())  # a fresh project: everything computed
    assert set(one["metrics"]) == set(two["metrics"])
    for key, value in one["metrics"].items():
        if not any(t in key for t in TIMING) and not key.startswith("bench/"):
            assert two["metrics"][key] == value, key  # bitwise: same builds, same threads (tiny.yaml: 1)
    assert "building in its own process" not in one["log"]
    if workers.cpu_count() >= 2:
        assert "stage rl.train: building in its own process" in two["log"]
        assert "stages ran at once:" in two["log"]  # the stage table says how much they overlapped
