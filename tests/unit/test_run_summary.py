"""What a user compares: run names from the config diff, the results text on the parent run, timings on a child run,
and the UI links (``grm.run_label``, ``grm.eval.report.results``, ``tasks.summary``, ``tasks.engine.runtime.log_timings``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm.config import PipelineConfig
from grm.eval.report.results import headline_metrics, report_html, results_report
from grm.plan import load_pipeline
from grm.run_label import config_diff, run_label
from tasks import mlflow_store, summary, tracking
from tasks.engine import runtime, timings
from tasks.engine.stages import StageResult

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"
CELLS = {
    f"eval/world/{m}/{c}/accuracy": v
    for m, v in (("teacher", 0.5), ("rft", 0.625), ("rl", 0.75))
    for c in ("greedy_k1", "voting_k1", "voting_k4", "metarm_k4")
}
METRICS = CELLS | {"eval/world/rl/greedy_k1/parse_fail_rate": 0.1, "data/train/items": 60.0, "rft/train/steps": 3.0}


@dataclass
class RecordingTracker:
    """A tracker that keeps what it was given, per run."""

    uri: str = "sqlite:///unused.db"
    experiment: str = "spct_pipeline"
    enabled: bool = True
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def _run(self, run_id: str) -> dict[str, Any]:
        return self.runs.setdefault(run_id, {"metrics": {}, "tags": {}, "artifacts": {}, "name": None})

    def start_run(self, name: str, parent_id: str | None = None, tags: dict | None = None) -> str:
        run_id = f"run{len(self.runs)}"
        self._run(run_id).update(name=name, parent=parent_id, tags=dict(tags or {}))
        return run_id

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        self._run(run_id)["metrics"].update(metrics)

    def set_tags(self, run_id: str, tags: dict[str, Any]) -> None:
        self._run(run_id)["tags"].update(tags)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._run(run_id)["artifacts"][artifact_file] = text

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        self._run(run_id)["artifacts"][artifact_file] = "<figure>"

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self._run(run_id)["status"] = status


@dataclass
class Ctx:
    cfg: PipelineConfig
    tracker: Any
    parent_run_id: str = "parent"
    flow: str = "spct_pipeline"
    run_name: str = "rl.beta=0.02"


def tiny(*overrides: str) -> PipelineConfig:
    return load_pipeline([TINY], list(overrides))


# ---- names ---------------------------------------------------------------------------------------------------------
def test_a_run_with_an_override_is_named_after_what_it_changed() -> None:
    assert summary.run_diff(tiny("rl.beta=0.02"), str(TINY)) == {"rl.beta": 0.02}
    overrides = ["rl.beta=0.02", "seed=3"]
    diff = summary.run_diff(tiny(*overrides), str(TINY))
    assert {"rl.beta", "seed", "rl.seed"} <= set(diff)  # seed=3 also resolves every stage seed left null
    assert run_label(summary.named_diff(diff, overrides), "x") == "rl.beta=0.02,seed=3"  # the name: what was set
    name, tags = summary.parent_run_name(tracking.NullTracker(), tiny(*overrides), str(TINY), overrides)
    assert name == "rl.beta=0.02,seed=3" and "rl.seed=3" in tags[summary.DIFF_TAG].splitlines()
    assert summary.parent_run_name(tracking.NullTracker(), tiny(), str(TINY), [])[0] == tiny().name


def test_a_run_that_changed_nothing_is_named_after_its_config() -> None:
    cfg = tiny()
    assert summary.run_diff(cfg, str(TINY)) == {}
    assert run_label({}, cfg.name) == cfg.name
    same = tiny(f"rl.beta={cfg.rl.beta}")  # an override equal to the file's value changes nothing
    assert summary.run_diff(same, str(TINY)) == {}
    assert summary.run_diff(tiny("name=mine"), str(TINY)) == {}  # the name names the run; it is no difference


def test_long_diffs_are_cut_and_paths_keep_their_last_part() -> None:
    label = run_label({f"section.key_{i}": i for i in range(20)}, "x")
    assert len(label) <= 60 and label.endswith("more") and label.startswith("section.key_0=0,")
    assert run_label({"data.source": "/srv/drops/2026-w50/"}, "x") == "data.source=2026-w50"
    assert config_diff({"a": 1, "b": [1, 2]}, {"a": 1, "b": [1, 3], "c": None}) == {"b": [1, 3], "c": None}


def test_a_taken_name_gets_the_next_free_number(tmp_path: Path) -> None:
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(tmp_path), "spct_pipeline")
    assert summary.unique_name(tracker, "rl.beta=0.02") == "rl.beta=0.02"
    tracker.start_run("rl.beta=0.02")
    assert summary.unique_name(tracker, "rl.beta=0.02") == "rl.beta=0.02 #2"
    tracker.start_run("rl.beta=0.02 #2")
    assert summary.unique_name(tracker, "rl.beta=0.02") == "rl.beta=0.02 #3"
    assert summary.unique_name(tracker, "it's 100%") == "it's 100%"  # quotes and wildcards do not break the query


# ---- results -------------------------------------------------------------------------------------------------------
def test_the_results_table_cells_sort_before_every_other_metric() -> None:
    cells = headline_metrics(METRICS, "world", [1, 4])
    assert cells["accuracy/rl/voting_k4"] == 0.75 and len(cells) == 9  # 3 models x greedy, Voting@4, MetaRM@4
    assert sorted([*cells, *METRICS])[: len(cells)] == sorted(cells)  # what MLflow's compare page lists first


def test_results_report_is_markdown_with_the_table_and_the_gaps() -> None:
    text = results_report(METRICS, tiny(), "| claim (a > b) | a - b |\n|---|---|\n| RL greedy > RFT greedy | +25.0 |")
    assert "| RL | 75.0 | 75.0 | 75.0 |" in text and "| RL greedy > RFT greedy | +25.0 |" in text
    assert text.index("| model |") < text.index("The paper's orderings")
    html = report_html(text)
    assert "<th>MetaRM@4</th>" in html and "<td>75.0</td>" in html and "<li>RL: Voting@1" in html


def test_publish_results_gives_the_parent_run_its_description_artifacts_and_headline_cells(monkeypatch) -> None:
    tracker = RecordingTracker()
    monkeypatch.setattr(summary, "run_links", lambda *a: {})  # links need a store: tested below
    stages = [StageResult("rft.train", "k" * 16, "/x", cached=True), None]
    decision = {"model": "grm", "version": "2", "alias": "challenger", "reason": "does not beat v1"}
    text = summary.publish_results(Ctx(tiny(), tracker), METRICS, "| g |\n|---|\n| 1 |", stages, decision)
    parent = tracker.runs["parent"]
    assert parent["tags"][summary.NOTE_TAG].startswith(text)  # the Description = what `grm run` prints
    assert "| RL | 75.0 | 75.0 | 75.0 |" in parent["artifacts"]["results.md"]
    assert "<td>75.0</td>" in parent["artifacts"]["results.html"]
    assert "registry: grm v2 -> challenger" in text
    assert set(parent["metrics"]) == set(headline_metrics(METRICS, "world", [1, 4]))


def test_timings_go_to_a_child_run_not_to_the_parent() -> None:
    tracker = RecordingTracker()
    parent = tracker.start_run("rl.beta=0.02")
    led = timings.Ledger()
    with led.measure("rft.train", "compute"):
        time.sleep(0.001)
    child = runtime.log_timings(tracker, parent, led.report(0.01))
    assert not any(k.startswith("bench/") for k in tracker.runs[parent]["metrics"])
    assert tracker.runs[child]["parent"] == parent and tracker.runs[child]["name"] == runtime.TIMINGS_RUN
    assert "bench/rft.train/compute_s" in tracker.runs[child]["metrics"]
    assert "bench/stage_times.txt" in tracker.runs[child]["artifacts"]
    assert tracker.runs[parent]["tags"]["grm.timings_run"] == child


def test_tracking_off_publishes_nothing_and_fails_nothing() -> None:
    ctx = Ctx(tiny(), tracking.NullTracker(), parent_run_id="")
    assert "| RL | 75.0" in summary.publish_results(ctx, METRICS)
    assert summary.run_links(tracking.NullTracker(), "") == {}
    assert runtime.log_timings(tracking.NullTracker(), "", timings.Ledger().report(1.0)) == ""


# ---- links ---------------------------------------------------------------------------------------------------------
def test_links_compare_a_run_with_the_previous_run_of_its_flow(tmp_path: Path) -> None:
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(tmp_path), "spct_pipeline")
    first = tracker.start_run("a", tags={"grm.flow": "spct_pipeline"})
    tracker.start_run("rft.train", parent_id=first)  # a stage run is no "previous run"
    time.sleep(0.01)
    second = tracker.start_run("b", tags={"grm.flow": "spct_pipeline"})
    assert "compare" not in summary.run_links(tracker, first)
    links = summary.run_links(tracker, second)
    assert links["previous"] == first
    assert links["compare"] == tracker.ui_url(summary.UI_BASE, [first, second])
    assert links["runs"].endswith("/runs?workflowType=machine_learning")
    assert "grm ui" in summary.how_to_open(tracker)
    server = tracking.Tracker("http://mlflow.example:5000/", "spct_pipeline")
    assert summary.ui_base(server) == "http://mlflow.example:5000"


def test_prefect_artifacts_are_skipped_outside_a_flow_run() -> None:
    assert not summary.link_flow_run(RecordingTracker(), "parent", "x")  # no flow run: nothing to attach it to


def test_the_evaluate_flow_gets_a_table_of_the_model_it_evaluated(monkeypatch) -> None:
    tracker = RecordingTracker()
    monkeypatch.setattr(summary, "run_links", lambda *a: {})
    metrics = {k.replace("/rl/", "/champion/"): v for k, v in CELLS.items() if "/rl/" in k}
    text = summary.publish_results(Ctx(tiny(), tracker, flow="evaluate"), metrics, models=["champion"])
    assert "| champion | 75.0 | 75.0 | 75.0 |" in text
    assert set(tracker.runs["parent"]["metrics"]) == {
        f"accuracy/champion/{c}" for c in ("greedy_k1", "voting_k4", "metarm_k4")
    }
    assert "gaps.md" not in tracker.runs["parent"]["tags"][summary.NOTE_TAG]  # evaluate compares nothing
