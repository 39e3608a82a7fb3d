"""Crash + resume: SIGKILL the pipeline mid-way through a later stage, rerun, and check that completed stages were
reused (not recomputed) and that the final metrics equal an uninterrupted run's. Then browse both runs of the
resumed project through a real ``mlflow server`` REST API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, PrefectServer, flow_cmd, free_port, make_project, run_flow, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]  # trains tiny models

KILL_STAGE = "rft.train"  # a later stage: after data, validation, versioning, base model and rejective sampling


def completed(project: Path) -> dict[str, float]:
    """Completed stage folders: '{stage}/{key}' -> mtime of its stage.json."""
    root = project / "artifacts" / "stages"
    return {f"{p.parent.parent.name}/{p.parent.name}": p.stat().st_mtime for p in root.glob("*/*/stage.json")}


@pytest.fixture(scope="module")
def resumed(prefect_server: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Kill a run inside KILL_STAGE with SIGKILL, then rerun the same command."""
    project = make_project(tmp_path_factory.mktemp("crash") / "project")
    stage_dir = project / "artifacts" / "stages" / KILL_STAGE
    log = (project / "killed.log").open("w")
    proc = subprocess.Popen(
        flow_cmd("spct_pipeline", project), cwd=REPO, env=prefect_server.env(), stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        if stage_dir.exists() and any(p.name.endswith(".tmp") for p in stage_dir.iterdir()):
            os.kill(proc.pid, signal.SIGKILL)  # mid-way through the stage's build
            break
        time.sleep(0.02)
    rc = proc.wait(timeout=60)
    log.close()
    assert rc == -signal.SIGKILL, f"the run was not killed inside {KILL_STAGE} (rc {rc}); see {project}/killed.log"
    before = completed(project)
    assert not any(k.startswith(f"{KILL_STAGE}/") for k in before), "the killed stage must not look completed"
    result = run_flow(prefect_server, "spct_pipeline", project)
    return {"project": project, "before": before, "after": completed(project), "result": result}


def test_rerun_after_sigkill_reuses_completed_stages(resumed: dict) -> None:
    stages = resumed["result"]["stages"]
    done_before = {k.split("/")[0] for k in resumed["before"]}
    assert {"data.prepare", "data.validate", "model.base", "rft.sample"} <= done_before
    for stage, info in stages.items():
        if stage in done_before:
            assert info["cached"], f"{stage} was completed before the crash but was recomputed"
    assert stages[KILL_STAGE]["cached"] is False, "the interrupted stage must be computed on the rerun"
    for key, mtime in resumed["before"].items():  # completed folders were not rewritten
        assert resumed["after"][key] == mtime, f"{key} was rewritten"
    leftovers = list((resumed["project"] / "artifacts" / "stages" / KILL_STAGE).glob(".*.tmp"))
    assert not leftovers, f"the crashed build's tmp folder was not cleaned: {leftovers}"


def test_resumed_run_metrics_equal_an_uninterrupted_run(resumed: dict, uninterrupted: dict) -> None:
    got, want = resumed["result"]["metrics"], uninterrupted["metrics"]
    assert set(got) == set(want)
    assert any(k.startswith("eval/world/rl/") for k in got) and any(k.startswith("rl/train/") for k in got)
    timing = ("seconds", "per_step", "runtime", "per_second")  # wall-clock figures differ between any two runs
    for key, value in want.items():
        if any(t in key for t in timing):
            continue
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
    assert {s for s in resumed["result"]["stages"]} == {s for s in uninterrupted["stages"]}


def _post(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_mlflow_server_lists_both_pipeline_runs_and_compares_a_metric(resumed: dict) -> None:
    from grm_cli.ui import serve_ui, stop_group

    port = free_port()
    proc = serve_ui(resumed["project"], port=port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/health", 120, proc)
        with urllib.request.urlopen(
            f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name=spct_pipeline"
        ) as r:
            exp_id = json.loads(r.read())["experiment"]["experiment_id"]
        runs = _post(
            f"{base}/api/2.0/mlflow/runs/search",
            {"experiment_ids": [exp_id], "filter": "tags.`grm.flow` = 'spct_pipeline'", "max_results": 50},
        )["runs"]
        parents = [r for r in runs if "mlflow.parentRunId" not in {t["key"] for t in r["data"].get("tags", [])}]
        assert len(parents) == 2, [r["info"]["run_id"] for r in parents]
        status = {r["info"]["run_id"]: r["info"]["status"] for r in parents}
        assert sorted(status.values()) == ["FINISHED", "KILLED"], status  # the rerun closed its dead predecessor
        rerun = next(run_id for run_id, s in status.items() if s == "FINISHED")
        killed = next(r for r in parents if r["info"]["status"] == "KILLED")
        assert {t["key"]: t["value"] for t in killed["data"]["tags"]}.get("grm.superseded_by") == rerun
        metric = "rft/sample/sample_accuracy"  # completed before the kill in both runs (the rerun reuses it)
        values = [{m["key"]: m["value"] for m in r["data"].get("metrics", [])}.get(metric) for r in parents]
        assert None not in values, f"{metric} missing in a run: {values}"
        assert values[0] == pytest.approx(values[1])  # same stage output, reused by the rerun
    finally:
        stop_group(proc)  # the server's own process group: its uvicorn worker too
        proc.wait(timeout=30)


# What a user must not see during a run (a git project, the DVC/GX/MLflow/Trainer paths all taken), by source.
NOISE = {
    "DVC shell hints": ("To track the changes with git", "core.autostage", "Initialized DVC repository"),
    "GX temp folders": ("for ephemeral docs site",),
    "library deprecations": ("FutureWarning",),
    "MLflow schema setup": ("Creating initial MLflow database tables",),
    "Trainer log dicts": ("{'loss'", "{'train_runtime'"),
    "HF sub-second bars": ("Loading weights", "Writing model shards", "Tokenizing train dataset"),
    "meta-RM new-head report": ("LOAD REPORT", "were not sharded"),
}


def test_a_run_prints_one_start_and_end_line_per_stage_and_no_library_noise(uninterrupted: dict) -> None:
    log = uninterrupted["log"]
    found = {source: [p for p in patterns if p in log] for source, patterns in NOISE.items()}
    assert not any(found.values()), {k: v for k, v in found.items() if v}
    task_lines = [line for line in log.splitlines() if "Finished in state Completed()" in line]
    assert all("Flow run" in line for line in task_lines), task_lines  # task states: our stage end lines say it
    for stage in uninterrupted["stages"]:
        assert sum(f"stage {stage} (key " in line for line in log.splitlines()) == 1, stage
        assert sum(f"stage {stage} computed in " in line for line in log.splitlines()) == 1, stage


def test_the_gate_registers_a_pyfunc_grm_that_scores_a_test_item(uninterrupted: dict) -> None:
    """`registry.gate` also logs the GRM + meta RM as a pyfunc (what `mlflow models serve` serves), under the
    gate's alias; loaded back from the registry it judges a held-out item of the run."""
    import mlflow
    import pandas as pd

    decision = uninterrupted["registry"]
    assert decision["pyfunc"] == f"models:/grm-pyfunc@{decision['alias']}"
    from tasks.mlflow_store import default_tracking_uri

    project = uninterrupted["project"]
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri  # restores MLFLOW_TRACKING_URI too

    with _use_tracking_uri(default_tracking_uri(project)):
        model = mlflow.pyfunc.load_model(decision["pyfunc"])
    item = json.loads((project / "data" / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    out = model.predict(pd.DataFrame([{"query": item["query"], "responses": item["responses"]}]), params={"k": 2})
    row = out.iloc[0]
    assert row["n_parsed"] + row["n_failed"] == 2 and row["method"].startswith("voting")
    if row["n_parsed"]:
        assert len(row["scores"]) == len(item["responses"])
