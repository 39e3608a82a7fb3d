"""The MLflow UI as a user sees it: a real ``mlflow server`` on 127.0.0.1, pages rendered by headless Chromium.

``chromium --dump-dom`` prints the DOM after the React app ran (``--virtual-time-budget`` lets its requests to the
server finish first), so the assertions read what a browser shows, not the API.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from grm.eval.report.results import headline_metrics
from grm_cli import ui as mlflow_ui
from tasks import mlflow_store, summary, tracking

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (Debian: apt-get install -y chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def render(url: str, profile: Path) -> str:
    """The visible text of ``url`` after its JavaScript ran, in headless Chromium (local network only)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    cmd += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    cmd += [
        "--disable-features=MediaRouter,OptimizationHints",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]
    cmd += [f"--user-data-dir={profile}", "--window-size=1400,1000", "--virtual-time-budget=30000", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True).stdout
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", text).split())


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Two finished pipeline-like parent runs with dataset inputs, served by ``mlflow server``."""
    project = tmp_path_factory.mktemp("project")
    (project / "data").mkdir()
    for split in tracking.SPLIT_CONTEXT:
        (project / "data" / f"{split}.jsonl").write_text("{}\n" * 4)
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(project), "spct_pipeline")
    dv = SimpleNamespace(
        files={"train.jsonl": "0" * 31 + "a", "val.jsonl": "0" * 31 + "b", "test.jsonl": "0" * 31 + "c"},
        remote=str(project / "dvc-remote"),
        dvc_md5="f" * 32 + ".dir",
    )
    runs = []
    for name, acc in (("tiny-seed0", 0.61), ("tiny-seed1", 0.67)):
        run = tracker.start_run(name, tags={"grm.flow": "spct_pipeline"})
        tracker.own_run(run)
        tracker.log_params(run, {"rl.lr": 1e-4, "seed": name[-1]})
        tracker.log_datasets(run, dv, "data", project, "world")
        tracker.log_metrics(run, {"data/train/items": 60, "eval/world/rl/voting_k8/accuracy": acc})  # logged first
        tracker.log_metrics(run, headline_metrics({"eval/world/rl/voting_k8/accuracy": acc}, "world", [1, 8]))
        tracker.set_tags(run, {summary.NOTE_TAG: f"| model | Voting@8 |\n|---|---|\n| RL | {100 * acc:.1f} |"})
        tracker.end_run(run)
        runs.append(run)
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracker.uri, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--workers", "1", "--default-artifact-root", str(project / "mlruns" / "artifacts")]
    log = (project / "server.log").open("w")
    server = subprocess.Popen(cmd, cwd=project, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mlflow server did not start: {(project / 'server.log').read_text()[-3000:]}")
                time.sleep(0.5)
        yield SimpleNamespace(tracker=tracker, base=base, runs=runs, profile=project / "chromium")
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn worker: the group this fixture started
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_the_experiment_link_opens_the_runs_table_with_datasets(ui: SimpleNamespace) -> None:
    link = ui.tracker.ui_url(ui.base)
    assert mlflow_ui.experiment_links(ui.tracker.uri, ui.base) == {"spct_pipeline": link}  # what `grm ui` prints
    text = render(link, ui.profile)
    assert "Runs - Experiment" in text and "Run Name" in text, text[:2000]
    assert "tiny-seed0" in text and "tiny-seed1" in text
    assert "Dataset" in text and "world/train" in text and "training" in text  # the Dataset column is filled
    assert "No data available" not in text and "Traces 0" not in text  # not the GenAI overview
    exp = ui.tracker.client().get_experiment(ui.tracker.experiment_id())
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.TRAINING_KIND


def test_the_compare_page_shows_both_runs_side_by_side(ui: SimpleNamespace) -> None:
    text = render(ui.tracker.ui_url(ui.base, ui.runs), ui.profile)
    assert "Comparing 2 Runs" in text, text[:2000]
    assert all(run in text for run in ui.runs) and "tiny-seed0" in text and "tiny-seed1" in text
    assert "eval/world/rl/voting_k8/accuracy" in text and "rl.lr" in text
    assert "0.61" in text and "0.67" in text


def test_the_compare_page_lists_the_accuracy_cells_before_the_other_metrics(ui: SimpleNamespace) -> None:
    text = render(ui.tracker.ui_url(ui.base, ui.runs), ui.profile)
    metrics = text[text.index("Metrics Show diff only") :]  # the metrics table (alphabetical), not the plot's picks
    assert metrics.index("accuracy/rl/voting_k8") < metrics.index("data/train/items"), metrics[:600]
    assert metrics.index("data/train/items") < metrics.index("eval/world/rl/voting_k8/accuracy")


def test_the_run_page_shows_the_results_table_as_its_description(ui: SimpleNamespace) -> None:
    text = render(ui.tracker.ui_url(ui.base, ui.runs[1:]), ui.profile)
    assert "Description" in text and "Voting@8" in text and "67.0" in text, text[:2000]
