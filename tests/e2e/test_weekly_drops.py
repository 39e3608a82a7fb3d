"""Three "weeks" of scheduled retraining through prefect.yaml's ``spct-weekly`` deployment, for real: a Prefect server
on 127.0.0.1 (the session fixture), a process work pool, ``prefect deploy``, three triggered runs each picked up by a
worker, on a landing folder of dated drops (the deployment's ``data`` parameter, ``incoming/``).

- week 1: one drop -> trains, becomes champion v1;
- week 2: nothing new (the same data, config and code) -> a no-op: no registry version, no weights, the earlier run
  linked (``grm.noop_of``);
- week 3: a new dated drop -> recomputes from ``data.prepare`` (its key is the selected drops' content), the champion
  is evaluated on week 3's test split (``eval.champion``) and the gate decides on the paired gap over those same items;
  a new dated folder renames no metric, so the gate keeps working.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.e2e.conftest import REPO, TINY_CONFIG, PrefectServer, make_project, mlflow_runs_of, prefect_cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]  # three tiny trainings on a worker


def world_splits(tmp: Path, env: dict[str, str]) -> Path:
    out = tmp / "world"
    subprocess.run([sys.executable, "-m", "grm_cli.app", "world", "--output", str(out), "--config", str(TINY_CONFIG)],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
    return out


def write_drop(world: Path, folder: Path, part: slice) -> dict[str, int]:
    """``part`` (in thirds) of each world split as a drop (the world's splits are disjoint, so are the drops' ids)."""
    folder.mkdir(parents=True)
    counts = {}
    for split in ("train", "val", "test"):
        lines = (world / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        chosen = lines[part.start * len(lines) // 3 : part.stop * len(lines) // 3]
        (folder / f"{split}.jsonl").write_text("".join(chosen), encoding="utf-8")
        counts[split] = len(chosen)
    return counts


def week(server: PrefectServer, project: Path, client: MlflowClient) -> tuple[dict, dict]:
    """Trigger spct-weekly once, let a worker run it; returns (parent run's tags + metrics, registry decision)."""
    params = {"config_path": "tiny.yaml", "overrides": ["rft.sft_unfiltered=false"]}
    out = prefect_cli(
        ["deployment", "run", "spct_pipeline/spct-weekly", "--params", json.dumps(params)], server, project
    )
    flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
    log = prefect_cli(["worker", "start", "--pool", "grm-process", "--run-once"], server, project, timeout=600)
    runs = mlflow_runs_of(client, "spct_pipeline", flow_run_id)
    assert len(runs) == 1, f"no MLflow run for flow run {flow_run_id}; worker log:\n{log[-4000:]}"
    run = runs[0]
    assert run.info.status == "FINISHED", log[-4000:]
    decision_file = Path(client.download_artifacts(run.info.run_id, "registry/decision.json", str(project / ".dl")))
    decision = json.loads(decision_file.read_text())
    return {"id": run.info.run_id, "tags": run.data.tags, "metrics": run.data.metrics}, decision


def eval_names(metrics: dict[str, float]) -> set[str]:
    return {k for k in metrics if k.startswith("eval/") and "/champion/" not in k}


def prepare_folders(project: Path) -> set[str]:
    return {
        p.name for p in (project / "artifacts" / "stages" / "data.prepare").iterdir() if not p.name.startswith(".")
    }


def test_three_weeks_of_drops_through_the_weekly_deployment(prefect_server: PrefectServer, tmp_path: Path) -> None:
    from tasks import mlflow_store, tracking

    project = make_project(tmp_path / "project")
    for name in ("flows", "tasks"):
        (project / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copy(REPO / "prefect.yaml", project / "prefect.yaml")
    world = world_splits(tmp_path, prefect_server.env())
    incoming = project / "incoming"  # spct-weekly's landing folder (prefect.yaml: data: incoming)
    incoming.mkdir()
    (incoming / "general.jsonl").write_bytes((world / "general.jsonl").read_bytes())
    week1_counts = write_drop(world, incoming / "2026-12-07", slice(0, 2))
    client = MlflowClient(mlflow_store.default_tracking_uri(project))
    prefect_cli(["work-pool", "create", "grm-process", "--type", "process", "--overwrite"], prefect_server, project)
    prefect_cli(["--no-prompt", "deploy", "--name", "spct-weekly"], prefect_server, project)

    run1, d1 = week(prefect_server, project, client)
    assert d1["alias"] == "champion" and d1["version"] == "1" and d1["noop"] is False
    assert run1["tags"]["grm.data.drops"] == "2026-12-07"
    assert run1["metrics"]["data/train/items"] == week1_counts["train"]
    assert len(prepare_folders(project)) == 1

    run2, d2 = week(prefect_server, project, client)  # nothing new arrived
    assert d2["noop"] is True and d2["alias"] == "champion" and d2["same_as"]["run_id"] == run1["id"]
    assert run2["tags"][tracking.NOOP_TAG] == run1["id"]
    assert len(client.search_model_versions("name='grm'")) == 1  # nothing registered
    assert not [a.path for a in client.list_artifacts(run2["id"]) if a.path.startswith("model-")]  # no new weights

    week3_counts = write_drop(world, incoming / "2026-12-14", slice(2, 3))  # next Monday's delivery
    run3, d3 = week(prefect_server, project, client)
    assert len(prepare_folders(project)) == 2  # the new drop recomputed data.prepare
    assert run3["tags"]["grm.data.drops"] == "2026-12-07,2026-12-14"
    assert run3["metrics"]["data/train/items"] == week1_counts["train"] + week3_counts["train"]
    assert eval_names(run3["metrics"]) == eval_names(run1["metrics"])  # a dated folder renames no metric
    assert d3["noop"] is False and d3["version"] == "2" and d3["champion_version"] == "1"
    assert d3["gate_metric"] == d1["gate_metric"] and d3["comparison"] == "paired"
    assert d3["test_split_changed"] is True  # stated in the decision
    n_test = int(run3["metrics"]["data/test/items"])
    assert d3["n_items"] == min(n_test, 24)  # the champion was scored on week 3's own test items (eval.limit 24)
    assert d3["ci_low"] <= d3["gap"] <= d3["ci_high"]
    champion_cell = d3["gate_metric"].replace("/rl/", "/champion/")
    assert d3["champion_value"] == pytest.approx(run3["metrics"][champion_cell])  # measured now, not stored
    promoted = d3["ci_low"] > d3["margin"]
    assert d3["alias"] == ("champion" if promoted else "challenger"), d3["reason"]
