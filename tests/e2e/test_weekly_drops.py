"""Two "weeks" of the tiny pipeline on a landing folder of dated drops, through the flow's ``data`` parameter (what
prefect.yaml's spct-weekly passes): week 1 trains on one drop; week 2, with a new dated drop added, recomputes from
``data.prepare`` (its key is the content of the selected drops), trains on both drops, and logs the same metric
names as week 1 (a new dated folder never renames a metric, so the registry gate keeps comparing like with like)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, TINY_CONFIG, PrefectServer, make_project, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # trains tiny models twice


def world_splits(tmp: Path, env: dict[str, str]) -> Path:
    out = tmp / "world"
    subprocess.run([sys.executable, "-m", "grm_cli.app", "world", "--output", str(out), "--config", str(TINY_CONFIG)],
                   cwd=REPO, env=env, check=True, capture_output=True, timeout=120)  # fmt: skip
    return out


def write_drop(world: Path, folder: Path, part: slice) -> dict[str, int]:
    """``part`` of each world split as a drop (the world's splits are disjoint, so are the drops' ids)."""
    folder.mkdir(parents=True)
    counts = {}
    for split in ("train", "val", "test"):
        lines = (world / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
        chosen = lines[part.start * len(lines) // 3 : part.stop * len(lines) // 3]
        (folder / f"{split}.jsonl").write_text("".join(chosen), encoding="utf-8")
        counts[split] = len(chosen)
    return counts


def eval_names(metrics: dict[str, float]) -> set[str]:
    return {k for k in metrics if k.startswith("eval/")}


def prepare_info(project: Path, key: str) -> dict:
    return json.loads((project / "artifacts" / "stages" / "data.prepare" / key / "stage.json").read_text())["info"]


def test_a_new_dated_drop_recomputes_and_keeps_the_metric_names(prefect_server: PrefectServer, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project")
    world = world_splits(tmp_path, prefect_server.env())
    incoming = project / "incoming"  # the deployment's landing folder, outside the DVC-tracked data/
    incoming.mkdir()
    (incoming / "general.jsonl").write_bytes((world / "general.jsonl").read_bytes())
    week1_counts = write_drop(world, incoming / "2026-12-07", slice(0, 2))
    args = ("--data", "incoming", "--set", "rft.sft_unfiltered=false")

    week1 = run_flow(prefect_server, "spct_pipeline", project, *args, timeout=420)
    prep1 = week1["stages"]["data.prepare"]
    assert prep1["cached"] is False
    assert prepare_info(project, prep1["key"])["drops"] == ["2026-12-07"]
    assert week1["metrics"]["data/train/items"] == week1_counts["train"]

    week2_counts = write_drop(world, incoming / "2026-12-14", slice(2, 3))  # next Monday's delivery
    week2 = run_flow(prefect_server, "spct_pipeline", project, *args, timeout=420)
    prep2 = week2["stages"]["data.prepare"]
    assert prep2["cached"] is False and prep2["key"] != prep1["key"]  # the new drop recomputes
    assert prepare_info(project, prep2["key"])["drops"] == ["2026-12-07", "2026-12-14"]
    assert week2["metrics"]["data/train/items"] == week1_counts["train"] + week2_counts["train"]
    assert week2["stages"]["rft.sample"]["cached"] is False  # new train rows: sampled again, not reused
    assert eval_names(week2["metrics"]) == eval_names(week1["metrics"]) and eval_names(week1["metrics"])
    assert week2["registry"]["gate_metric"] == week1["registry"]["gate_metric"]
    assert week2["registry"]["gate_metric"] in week2["metrics"]
    tags = [run_tags(project, out["run_id"]) for out in (week1, week2)]
    assert [t["grm.data.drops"] for t in tags] == ["2026-12-07", "2026-12-07,2026-12-14"]
    assert tags[1]["grm.data.window"] == "all" and tags[1]["grm.data.drop_count"] == "2"


def run_tags(project: Path, run_id: str) -> dict[str, str]:
    from mlflow.tracking import MlflowClient

    from tasks.tracking import default_tracking_uri

    return MlflowClient(default_tracking_uri(project)).get_run(run_id).data.tags
