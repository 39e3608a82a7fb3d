"""``grm reproduce RUN_ID`` end to end: a tiny run on a ``data.source`` folder, the folder changes afterwards (new
rows, new general data), the stage store is wiped, and the printed rerun command recomputes every stage from the
data pulled from the DVC remote: its metrics are exactly the original run's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import BIN, REPO, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # trains tiny models twice

FAST = [  # the tiny config without the stages this test does not need: data, base model, sampling, RFT, eval
    "rl.max_steps=0",
    "meta_rm.enabled=false",
    "rft.sft_unfiltered=false",
    "rft.train.max_steps=2",
    "eval.limit=8",
]
WORLD = ["--set", "world.n_train=30", "--set", "world.n_val=10", "--set", "world.n_test=12"]
TIMING = ("seconds", "per_step", "runtime", "per_second")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    for name in ("GRM_ARTIFACTS_DIR", "GRM_DVC_REMOTE"):
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _sh(cmd: str | list[str], cwd: Path, timeout: float = 600) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, shell=isinstance(cmd, str)
    )
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout


def _pipeline_runs(project: Path) -> list:
    from tasks import mlflow_store, tracking

    client = tracking.Tracker(mlflow_store.default_tracking_uri(project), "").client()
    exp = client.get_experiment_by_name("spct_pipeline")
    runs = client.search_runs([exp.experiment_id], "tags.`grm.flow` = 'spct_pipeline'", order_by=["start_time ASC"])
    return [r for r in runs if "mlflow.parentRunId" not in r.data.tags]


def _model_metrics(run) -> dict[str, float]:
    return {
        k: v
        for k, v in run.data.metrics.items()
        if not any(t in k for t in TIMING) and not k.startswith(("bench/", "registry/"))
    }


def test_the_printed_rerun_reproduces_the_run_from_the_pulled_data(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    incoming = project / "incoming"
    _sh([str(BIN / "grm"), "world", "--output", str(incoming), *WORLD], project)
    sets = [a for o in [f"data.source={incoming}", *FAST] for a in ("--set", o)]
    _sh([str(BIN / "grm"), "run", "--config", "tiny.yaml", "--project-dir", str(project), *sets], project)
    (original,) = _pipeline_runs(project)

    # next week's drop lands in the same folder: other rows, other general data
    _sh([str(BIN / "grm"), "world", "--output", str(incoming), *WORLD, "--set", "world.seed=11"], project)
    shutil.rmtree(project / "artifacts")  # nothing computed before may be reused: the rerun recomputes every stage
    shutil.rmtree(project / "data")

    out = _sh([str(BIN / "grm"), "reproduce", original.info.run_id, "--project-dir", str(project)], project)
    result = json.loads(out)  # the JSON, printed once
    assert result["data_dvc_md5"] == original.data.tags["grm.data.dvc_md5"]
    assert "general.jsonl" in result["files"]  # the general data is part of the version
    assert result["data_source"] == f"reproduce/{original.info.run_id}/incoming"
    _sh(result["rerun"], project)

    first, rerun = _pipeline_runs(project)
    assert first.info.run_id == original.info.run_id
    assert rerun.data.tags["grm.data.dvc_md5"] == original.data.tags["grm.data.dvc_md5"]
    got, want = _model_metrics(rerun), _model_metrics(original)
    assert set(got) == set(want) and len(want) > 20
    differ = {k: (got[k], v) for k, v in want.items() if got[k] != pytest.approx(v, abs=1e-9)}
    assert not differ, f"{len(differ)} metrics differ from the original run: {dict(list(differ.items())[:5])}"
