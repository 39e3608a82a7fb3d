"""Two first runs started together in one fresh project, each with its own temporary Prefect server (no
``PREFECT_API_URL``), from a working directory outside the project: both exit 0, every stage is computed once
(the other run waits for it and reuses it), metrics are equal, and ``.prefect/`` is inside the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # trains tiny models

SHORT = [  # the tiny config without the stages this test does not need: data, base model, sampling, RFT, eval
    "rl.max_steps=0",
    "meta_rm.enabled=false",
    "rft.sft_unfiltered=false",
    "world.n_train=30",
    "world.n_test=12",
    "eval.limit=8",
]
TIMING = ("seconds", "per_step", "runtime", "per_second")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env.pop("GRM_ARTIFACTS_DIR", None)
    env.pop("GRM_DVC_REMOTE", None)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    return env


def test_two_first_runs_at_once_compute_each_stage_once(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    cmd = [sys.executable, "-m", "flows", "spct_pipeline", "--config", str(project / "tiny.yaml")]
    cmd += ["--project-dir", str(project)] + [a for o in SHORT for a in ("--set", o)]
    logs = [(tmp_path / f"run{i}.log").open("w") for i in range(2)]
    procs = [
        subprocess.Popen(cmd, cwd=elsewhere, env=_env(), stdout=subprocess.PIPE, stderr=log, text=True) for log in logs
    ]
    outs = [p.communicate(timeout=800)[0] for p in procs]
    for log in logs:
        log.close()
    for i, p in enumerate(procs):
        assert p.returncode == 0, f"run {i} failed ({p.returncode}):\n{(tmp_path / f'run{i}.log').read_text()[-6000:]}"
    results = [json.loads(out.strip().splitlines()[-1]) for out in outs]
    a, b = (r["stages"] for r in results)
    assert set(a) == set(b) and {"data.prepare", "model.base", "rft.sample", "rft.train"} <= set(a)
    for stage in a:
        assert a[stage]["key"] == b[stage]["key"], stage
        computed = [not a[stage]["cached"], not b[stage]["cached"]]
        assert computed.count(True) == 1, f"{stage} computed {computed.count(True)} times"
    got, want = results[0]["metrics"], results[1]["metrics"]
    assert set(got) == set(want)
    for key, value in want.items():
        if not any(t in key for t in TIMING) and not key.startswith("bench/"):
            assert got[key] == pytest.approx(value, abs=1e-9), key
    assert (project / ".prefect").is_dir() and not (elsewhere / ".prefect").exists()
    assert not (elsewhere / "mlruns").exists() and not (elsewhere / "artifacts").exists()
    both = "".join((tmp_path / f"run{i}.log").read_text() for i in range(2))
    assert "duplicate column" not in both and "expected to match one row" not in both
