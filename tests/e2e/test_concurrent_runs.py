"""Runs started together in one project.

Two first runs of one config, each with its own temporary Prefect server (no ``PREFECT_API_URL``), from a working
directory outside the project: both exit 0, every stage is computed once (the other run waits for it and reuses
it), metrics are equal, and ``.prefect/`` is inside the project.

Three runs of different seeds (so different data versions, each republishing ``data/``): each gives exactly the
metrics of the same run done alone, because every stage reads the content-addressed copy of the data version its
key names (``artifacts/datasets/{md5}/``), never the live ``data/`` folder."""

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


FAST = [*SHORT, "rft.train.max_steps=2"]  # the point is which data each stage reads, not how well it trains
SEEDS = (1, 2, 3)


def _run_cmd(project: Path, seed: int) -> list[str]:
    cmd = [sys.executable, "-m", "flows", "spct_pipeline", "--config", str(project / "tiny.yaml")]
    return cmd + ["--project-dir", str(project)] + [a for o in [*FAST, f"seed={seed}"] for a in ("--set", o)]


def _result(proc: subprocess.Popen, log: Path) -> dict:
    out = proc.communicate(timeout=800)[0]
    assert proc.returncode == 0, f"run failed ({proc.returncode}):\n{log.read_text()[-6000:]}"
    return json.loads(out.strip().splitlines()[-1])


def _own_keys(result: dict) -> dict[str, str]:
    """The keys of the stages a run computes from its own data and config (not the champion's evaluation)."""
    return {s: r["key"] for s, r in result["stages"].items() if "champion" not in s.split(".")}


def _model_metrics(result: dict) -> dict[str, float]:
    """What a run computed from its own data and config: not timings, and not the champion's evaluation (which
    champion there is depends on the project's registry: who gated first, not what this run trained)."""
    return {
        k: v
        for k, v in result["metrics"].items()
        if not any(t in k for t in TIMING) and not k.startswith("bench/") and "champion" not in k.split("/")
    }


def test_three_seeds_at_once_give_the_metrics_of_each_run_done_alone(tmp_path: Path) -> None:
    together = make_project(tmp_path / "together")
    procs, logs = {}, {}
    for seed in SEEDS:
        logs[seed] = tmp_path / f"together-{seed}.log"
        with logs[seed].open("w") as err:
            procs[seed] = subprocess.Popen(
                _run_cmd(together, seed), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=err, text=True
            )
    at_once = {seed: _result(procs[seed], logs[seed]) for seed in SEEDS}

    alone = make_project(tmp_path / "alone")  # one after another: each run has the project to itself
    for seed in SEEDS:
        log = tmp_path / f"alone-{seed}.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                _run_cmd(alone, seed), cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=err, text=True
            )
        result = _result(proc, log)
        got, want = _model_metrics(at_once[seed]), _model_metrics(result)
        assert set(got) == set(want), f"seed {seed}: metric names differ"
        differ = {k: (got[k], v) for k, v in want.items() if got[k] != pytest.approx(v, abs=1e-9)}
        assert not differ, (
            f"seed {seed}: {len(differ)} metrics differ from the run alone: {dict(list(differ.items())[:5])}"
        )
        assert _own_keys(at_once[seed]) == _own_keys(result), f"seed {seed}: stage keys differ"
    versions = [p.name for p in (together / "artifacts" / "datasets").iterdir() if not p.name.startswith(".")]
    assert len(versions) == len(SEEDS), f"one content-addressed copy per data version, got {versions}"
