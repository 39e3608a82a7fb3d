"""Tracking helpers and the registry gate, against a throw-away SQLite store (no server)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tasks import mlflow_store, tracking


def test_registry_gate_decision_needs_a_strict_improvement_by_the_margin() -> None:
    assert tracking.decide_alias(0.5, None, 0.0)[0] == "champion"  # first version
    assert tracking.decide_alias(0.71, 0.70, 0.0, "3")[0] == "champion"
    assert tracking.decide_alias(0.70, 0.70, 0.0, "3")[0] == "challenger"  # a tie does not move champion
    assert tracking.decide_alias(0.71, 0.70, 0.02, "3")[0] == "challenger"
    assert "does not beat champion v3" in tracking.decide_alias(0.6, 0.7, 0.0, "3")[1]


def test_registry_gate_keeps_a_champion_that_lacks_a_stored_benchmark_metric() -> None:
    # benchmark gate metrics only: a held-out one is measured on the champion (paired, tests/unit/test_gate.py)
    alias, reason = tracking.decide_alias(0.99, None, 0.0, "3", "eval/ks")
    assert alias == "challenger" and "champion v3 has no value of eval/ks" in reason
    assert tracking.decide_alias(0.99, float("nan"), 0.0, "3")[0] == "challenger"
    assert tracking.decide_alias(float("nan"), 0.5, 0.0, "3")[0] == "challenger"


def test_a_run_is_dead_only_when_its_process_on_this_host_is_gone() -> None:
    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert tracking.run_is_dead({tracking.HOST_TAG: host, tracking.PID_TAG: gone.stdout.strip()})
    assert not tracking.run_is_dead({tracking.HOST_TAG: "other-host", tracking.PID_TAG: gone.stdout.strip()})
    assert not tracking.run_is_dead({})  # runs from before the tags: unknown, never ended
    me = {tracking.HOST_TAG: host, tracking.PID_TAG: str(os.getpid())}
    assert not tracking.run_is_dead(me)
    if tracking._proc_start(os.getpid()) is not None:  # Linux: a reused pid is another process
        assert tracking.run_is_dead(me | {tracking.PID_START_TAG: "1"})
        assert not tracking.run_is_dead(me | {tracking.PID_START_TAG: tracking._proc_start(os.getpid())})


def test_ui_links_open_the_model_training_view() -> None:
    class Offline(tracking.Tracker):
        def experiment_id(self) -> str:
            return "7"

    t = Offline("sqlite:///unused.db", "spct_pipeline")
    assert t.ui_url() == "http://127.0.0.1:5000/#/experiments/7/runs?workflowType=machine_learning"
    compare = t.ui_url("http://127.0.0.1:5001", ["a", "b"])
    assert compare == (
        'http://127.0.0.1:5001/#/compare-runs?runs=["a","b"]&experiments=["7"]&workflowType=machine_learning'
    )


def test_tracking_uri_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert mlflow_store.resolve_tracking_uri(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlruns/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert mlflow_store.resolve_tracking_uri(None, tmp_path) == "http://127.0.0.1:5000"
    assert mlflow_store.resolve_tracking_uri("sqlite:///x.db", tmp_path) == "sqlite:///x.db"
    assert mlflow_store.artifact_root_for(f"sqlite:///{tmp_path}/mlruns/mlflow.db").endswith("/mlruns/artifacts")


def test_null_tracker_is_silent_but_refuses_registry_calls() -> None:
    t = tracking.NullTracker()
    assert t.start_run("x") == ""
    t.log_metrics("", {"a": 1.0})
    with pytest.raises(RuntimeError, match="tracking.enabled=true"):
        t.promote("", "", {}, None)
    with pytest.raises(RuntimeError, match="tracking.enabled=true"):
        t.repair_promotions(None)
    assert t.own_run("") is None and t.log_datasets("", None, "data") is None
    with t.trainer_env("") as report_to:
        assert report_to == "none"


def test_null_tracker_answers_every_tracker_method_and_no_typo() -> None:
    t = tracking.NullTracker()
    public = [n for n in dir(tracking.Tracker) if not n.startswith("_") and callable(getattr(tracking.Tracker, n))]
    assert "log_metrics" in public
    for name in public:  # a no-op, or a refusal naming the setting (registry calls)
        try:
            assert callable(getattr(t, name))
        except RuntimeError as exc:
            assert "tracking.enabled=true" in str(exc)
    with pytest.raises(AttributeError, match="log_metric_s"):
        t.log_metric_s("", {"a": 1.0})  # a typo fails here as it would with tracking on
    with pytest.raises(AttributeError):
        getattr(t, "_private")  # noqa: B009


@dataclass(frozen=True)
class Registry:
    model_name: str = "grm"
    meta_model_name: str = "grm-meta-rm"
    gate_metric: str = "eval/world/rl/voting_k8/accuracy"
    margin: float = 0.01


@pytest.mark.slow  # creates an MLflow SQLite store (~5 s of migrations)
def test_promote_moves_champion_only_on_improvement(tmp_path: Path) -> None:
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(tmp_path), "unit")
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    metric = Registry.gate_metric
    decisions = []
    for value in (0.60, 0.605, 0.70):
        run = tracker.start_run("p")
        decisions.append(tracker.promote(run, model, {metric: value}, Registry(), meta_rm_dir=model))
        tracker.end_run(run)
    assert [d["alias"] for d in decisions] == ["champion", "challenger", "champion"]
    assert str(tracker.alias_version("grm", "champion").version) == decisions[2]["version"]
    assert str(tracker.alias_version("grm-meta-rm", "challenger").version) == decisions[1]["meta_rm_version"]
    with pytest.raises(KeyError, match="registry.gate_metric"):
        tracker.promote(tracker.start_run("p"), model, {"other": 1.0}, Registry())
    downloaded = tracker.download("models:/grm@champion", tmp_path / "dl")
    assert (downloaded / "config.json").exists() or any(downloaded.rglob("config.json"))
