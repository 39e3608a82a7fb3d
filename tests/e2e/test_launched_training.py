"""The tiny pipeline with every training launched as 2 gloo DDP processes (``rft.train``, ``rl`` and
``meta_rm.train`` ``launcher: torchrun``) prints the same results table as the in-process run, and its stage
metrics agree: SFT and meta-RM losses within ``LOSS_TOL`` (the ranks' gradients are summed in another order),
evaluation metrics exactly; GRPO's rollouts are sampled per rank, so of its sampled figures only finiteness is
checked. Costs one more tiny run (~2.5 min on a loaded 2-core machine) beside the shared in-process one."""

from __future__ import annotations

import math

import pytest

from grm.eval.report.results import results_table
from tests.e2e.conftest import PrefectServer, make_project, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]

LAUNCHED = ("rft.train.launcher=torchrun", "rl.launcher=torchrun", "meta_rm.train.launcher=torchrun")
LOSS_TOL = 1e-4  # relative; measured: 7.7e-8 at most (rft/train_unfiltered/last_loss)
KS = (1, 4)  # configs/tiny.yaml eval.ks
SAMPLED = ("rl/train/final_",)  # GRPO's logged rollout figures (reward, KL, lengths): a per-rank sampling draw
TIMING = ("seconds", "per_step", "runtime", "per_second")


@pytest.fixture(scope="module")
def launched(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    project = make_project(tmp_path_factory.mktemp("launched") / "project")
    sets = [arg for kv in LAUNCHED for arg in ("--set", kv)]
    return {**run_flow(prefect_server, "spct_pipeline", project, *sets, timeout=500), "project": project}


def test_launched_training_prints_the_in_process_results_table(launched: dict, uninterrupted: dict) -> None:
    got, want = launched["metrics"], uninterrupted["metrics"]
    assert results_table(got, "world", KS) == results_table(want, "world", KS)
    for prefix in ("rft/train", "rft/train_unfiltered", "rl/train", "meta_rm/train"):
        assert got[f"{prefix}/world_size"] == 2.0, prefix  # each of them really ran as 2 processes
        assert f"{prefix}/world_size" not in want
    assert set(got) - set(want) == {f"{p}/world_size" for p in ("rft/train", "rft/train_unfiltered", "rl/train",
                                                                   "meta_rm/train")}  # fmt: skip
    for key, value in want.items():
        if any(t in key for t in TIMING):
            continue
        if key.startswith(SAMPLED):
            assert math.isfinite(got[key]) or math.isnan(value), key
        elif key.startswith(("rft/train", "meta_rm/train", "rl/train")):  # rl/train/train_loss: the tiny GRM's
            # rollouts all score -1 (zero-variance groups), so its loss is the general loss alone, not sampled
            assert got[key] == pytest.approx(value, rel=LOSS_TOL, nan_ok=True), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key
