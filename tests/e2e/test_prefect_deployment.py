"""prefect.yaml for real: a Prefect server on 127.0.0.1, a process work pool, ``prefect deploy`` of the nightly
evaluation, a triggered run picked up by a worker, and the MLflow run that flow run produced."""

from __future__ import annotations

import inspect
import re
import shutil
from pathlib import Path

import pytest
import yaml

from flows.pipeline import spct_pipeline
from tests.e2e.conftest import REPO, PrefectServer, make_project, mlflow_runs_of, prefect_cli, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]  # trains tiny models


def test_prefect_yaml_schedules_weekly_training_and_nightly_evaluation_in_utc() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deps = {d["name"]: d for d in spec["deployments"]}
    assert deps["spct-weekly"]["entrypoint"] == "flows/pipeline.py:spct_pipeline"
    weekly = deps["spct-weekly"]["parameters"]
    assert weekly["data"] == "incoming" and weekly["window"] == "all"  # the landing folder of drops (docs/data.md)
    assert set(weekly) <= set(inspect.signature(spct_pipeline.fn).parameters)  # every parameter is the flow's
    assert deps["evaluate-nightly"]["entrypoint"] == "flows/evaluate.py:evaluate"
    assert deps["evaluate-nightly"]["parameters"]["model"] == "champion"
    assert deps["evaluate-nightly"]["parameters"]["data_version"] == "champion"
    for d in deps.values():
        assert d["work_pool"]["name"] == "grm-process"
        assert all(s["timezone"] == "UTC" and s["cron"] for s in d["schedules"])


def test_nightly_evaluate_deployment_runs_the_champion_on_a_worker(
    prefect_server: PrefectServer, tmp_path: Path, tiny_model_dir: Path
) -> None:
    """The champion is evaluated on the data version it was trained on (world seed 7 here), not on what the
    deployment's config would generate; ``data/`` and ``data.dvc`` are byte for byte untouched; the score is
    appended to the model's drift run."""
    from tasks import data_store, mlflow_store, tracking

    project = make_project(tmp_path / "project")
    for name in ("flows", "tasks"):
        (project / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copy(REPO / "prefect.yaml", project / "prefect.yaml")
    run_flow(prefect_server, "prepare_data", project, "--set", "world.seed=7")  # the champion's training data
    trained_md5 = yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(project), "models")
    seed_run = tracker.start_run("seed-champion")
    tracker.set_tags(seed_run, {"grm.data.dvc_md5": trained_md5})  # as the training pipeline tags its run
    version = tracker.register(seed_run, tiny_model_dir, "grm")
    tracker.client().set_registered_model_alias("grm", "champion", version)
    tracker.end_run(seed_run)
    (project / "data" / "notes.txt").write_text("local edit")  # uncommitted work in data/ must survive too
    before = {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in [project / "data.dvc", *(project / "data").iterdir()]
    }

    prefect_cli(["work-pool", "create", "grm-process", "--type", "process", "--overwrite"], prefect_server, project)
    prefect_cli(["--no-prompt", "deploy", "--name", "evaluate-nightly"], prefect_server, project)
    out = prefect_cli(
        ["deployment", "run", "evaluate/evaluate-nightly", "--param", "config_path=tiny.yaml"], prefect_server, project
    )
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
    worker = prefect_cli(
        ["worker", "start", "--pool", "grm-process", "--run-once"], prefect_server, project, timeout=400
    )

    client = tracker.client()
    runs = mlflow_runs_of(client, "evaluate", flow_run_id)
    assert len(runs) == 1, f"no MLflow run tagged with flow run {flow_run_id}"
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert "eval/world/champion/greedy_k1/accuracy" in run.data.metrics
    assert run.data.tags["grm.data.dvc_md5"] == trained_md5 and run.data.tags["grm.data.pinned"] == "champion"
    assert f"data version {trained_md5}" in worker  # the flow's log says which version it read
    after = {
        p.relative_to(project).as_posix(): p.read_bytes()
        for p in [project / "data.dvc", *(project / "data").iterdir()]
    }
    assert after == before, "the nightly evaluation changed data/ or data.dvc"
    assert data_store.version_dir(project / "artifacts" / "datasets", trained_md5).is_dir()

    (drift_run,) = client.search_runs(
        [client.get_experiment_by_name("drift").experiment_id], "tags.`grm.drift_model` = 'grm'"
    )
    history = client.get_metric_history(drift_run.info.run_id, "drift/world/champion/greedy_k1/accuracy")
    assert [h.value for h in history] == [run.data.metrics["eval/world/champion/greedy_k1/accuracy"]]
    assert run.data.metrics["drift/champion_version"] == float(version)
