"""A week with nothing new registers nothing, and ``grm gc`` cleans a project without breaking it, on real tiny runs.

One project: seed 0 (champion v1), seed 0 again (a no-op: no version, no weights, the earlier run linked), seed 1 and
seed 2 (challengers v2, v3: the champion is evaluated on their test split). ``grm gc --keep-runs 1
--keep-versions 0``: the dry run deletes nothing; the real one keeps the champion's stages and downloaded model and
the last run's stages, deletes v2 with its weights and seed 1's stage folders; seed 1 then runs again.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tasks import mlflow_store, tracking
from tests.e2e.conftest import REPO, PrefectServer, make_project, run_flow

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]  # five tiny runs


def gc(server: PrefectServer, project: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "grm_cli.app", "gc", "--project-dir", str(project), "--keep-runs", "1"]
    cmd += ["--keep-versions", "0", *args]
    out = subprocess.run(cmd, cwd=REPO, env=server.env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}


def test_an_unchanged_run_is_a_noop_and_gc_keeps_what_the_champion_needs(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    client = MlflowClient(mlflow_store.default_tracking_uri(project))
    first = run_flow(prefect_server, "spct_pipeline", project)
    assert first["registry"]["alias"] == "champion" and first["registry"]["noop"] is False
    versions = len(client.search_model_versions("name='grm'"))

    again = run_flow(prefect_server, "spct_pipeline", project)
    decision = again["registry"]
    assert decision["noop"] is True and decision["alias"] == "champion"
    assert decision["same_as"] == {**decision["same_as"], "version": "1", "run_id": first["run_id"]}
    assert first["run_id"] in decision["reason"]
    assert len(client.search_model_versions("name='grm'")) == versions  # nothing registered
    assert not [a.path for a in client.list_artifacts(again["run_id"]) if a.path.startswith("model-")]
    assert client.get_run(again["run_id"]).data.tags[tracking.NOOP_TAG] == first["run_id"]
    assert "eval.champion" not in again["stages"]  # the champion is this very model

    seed1 = run_flow(prefect_server, "spct_pipeline", project, "--set", "seed=1")
    assert seed1["registry"]["comparison"] == "paired" and seed1["registry"]["test_split_changed"] is True
    assert seed1["registry"]["n_items"] == 24 and not seed1["stages"]["eval.champion"]["cached"]
    seed2 = run_flow(prefect_server, "spct_pipeline", project, "--set", "seed=2")
    assert seed2["registry"]["version"] == "3" and seed2["registry"]["champion_version"] == "1"

    stages = project / "artifacts" / "stages"
    before = tree(project / "artifacts") | tree(project / "mlruns")
    dry = gc(prefect_server, project)
    assert "would remove version grm v2" in dry and "dry run: nothing removed" in dry
    assert tree(project / "artifacts") | tree(project / "mlruns") == before

    done = gc(prefect_server, project, "--yes")
    assert "deleted grm v2 and its model artifact" in done
    assert sorted(int(v.version) for v in client.search_model_versions("name='grm'")) == [1, 3]
    v2_weights = project / "mlruns" / "artifacts" / "spct_pipeline" / seed1["run_id"] / "artifacts" / "model-grm"
    assert not v2_weights.exists()
    for run in (first, seed2):  # the champion's stages and the last run's stay
        for stage, info in run["stages"].items():
            assert (stages / stage / info["key"] / "stage.json").exists(), stage
    assert not (stages / "rl.train" / seed1["stages"]["rl.train"]["key"]).exists()
    assert (project / "artifacts" / "models" / "grm-v1").is_dir()

    rerun = run_flow(prefect_server, "spct_pipeline", project, "--set", "seed=1")
    assert not rerun["stages"]["rl.train"]["cached"] and rerun["registry"]["noop"] is False
