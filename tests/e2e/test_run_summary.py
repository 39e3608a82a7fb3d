"""Comparison at a glance, on a real tiny run against the session's Prefect server: the parent MLflow run carries the
results table (Description, ``results.md``/``.html``) and the accuracy cells first, its timings sit on a child run,
and the Prefect flow run has the ``grm-results`` and ``grm-mlflow-run`` artifacts. Then a second run with one
override is named after it and links the first for comparison; its Prefect artifact says which stages were reused.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tasks import mlflow_store, summary, tracking

from .conftest import PrefectServer, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def artifacts_of(server: PrefectServer, flow_run_id: str) -> dict[str, dict]:
    """The Prefect artifacts of one flow run, by key (the REST API the UI reads)."""
    body = json.dumps({"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).encode()
    req = urllib.request.Request(
        f"{server.api_url}/artifacts/filter", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return {a["key"]: a for a in json.load(resp)}


def test_the_parent_run_shows_the_results_first_and_keeps_timings_on_a_child(uninterrupted: dict, tmp_path) -> None:
    store = MlflowClient(mlflow_store.default_tracking_uri(uninterrupted["project"]))
    run = store.get_run(uninterrupted["run_id"])
    keys = sorted(run.data.metrics)
    assert not any(k.startswith("bench/") for k in keys)  # no timing rows among what a user compares
    cells = [k for k in keys if k.startswith("accuracy/")]
    assert "accuracy/rl/greedy_k1" in cells and keys[: len(cells)] == cells  # alphabetical: the cells come first
    note = run.data.tags[summary.NOTE_TAG]
    assert "| model | greedy |" in note and "| RL |" in note and "The paper's orderings" in note
    files = {f.path for f in store.list_artifacts(run.info.run_id)}
    assert {"results.md", "results.html"} <= files
    assert "| RL |" in Path(store.download_artifacts(run.info.run_id, "results.md", str(tmp_path))).read_text()
    timings = store.get_run(run.data.tags["grm.timings_run"])
    assert timings.data.tags["mlflow.parentRunId"] == run.info.run_id
    assert "bench/total_s" in timings.data.metrics and "bench/rft.train/compute_s" in timings.data.metrics
    assert run.info.run_name == run.data.tags["grm.config_name"]  # nothing overridden: the config's name


def test_the_flow_run_has_the_results_and_a_link_to_its_mlflow_run(
    uninterrupted: dict, prefect_server: PrefectServer
) -> None:
    run = MlflowClient(mlflow_store.default_tracking_uri(uninterrupted["project"])).get_run(uninterrupted["run_id"])
    found = artifacts_of(prefect_server, run.data.tags["prefect.flow_run_id"])
    assert set(found) >= {summary.RESULTS_KEY, summary.LINK_KEY}, found.keys()
    results = found[summary.RESULTS_KEY]["data"]
    assert results.index("| model | greedy |") < results.index("## Stages")  # the table first
    assert "| RL |" in results and "0 of" in results  # a first run reuses nothing
    assert "#/experiments/" in found[summary.LINK_KEY]["data"] and run.info.run_id in found[summary.LINK_KEY]["data"]


def test_a_run_with_one_override_is_named_after_it_and_links_the_previous_run(
    uninterrupted: dict, prefect_server: PrefectServer
) -> None:
    project = uninterrupted["project"]
    out = run_flow(prefect_server, "spct_pipeline", project, "--set", "rl.beta=0.02")
    assert out["run_name"] == "rl.beta=0.02"
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(project), "spct_pipeline")
    run = tracker.client().get_run(out["run_id"])
    assert run.info.run_name == "rl.beta=0.02" and run.data.tags[summary.DIFF_TAG] == "rl.beta=0.02"
    links = summary.run_links(tracker, out["run_id"])
    assert links["previous"] == uninterrupted["run_id"]
    assert links["compare"] == tracker.ui_url(summary.UI_BASE, [uninterrupted["run_id"], out["run_id"]])
    results = artifacts_of(prefect_server, run.data.tags["prefect.flow_run_id"])[summary.RESULTS_KEY]["data"]
    assert "| rft.train | reused" in results and "| rl.train | computed" in results  # reuse visible in Prefect
