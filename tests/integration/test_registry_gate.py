"""The registry gate against a real SQLite MLflow store: comparisons on a shared metric only, ties and margins,
and promotions a crash interrupts (completed or rolled back by the rerun), plus the dead-predecessor rule."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tasks import mlflow_store, tracking

pytestmark = pytest.mark.slow  # one SQLite store for the module (~5 s of migrations), then ~1 s per test

METRIC = "eval/world/rl/voting_k8/accuracy"


@dataclass(frozen=True)
class Registry:
    model_name: str
    meta_model_name: str
    gate_metric: str = METRIC
    margin: float = 0.0


class SimulatedKill(BaseException):
    """Stands for SIGKILL: nothing after the raise point runs (the code under test has no cleanup for it)."""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def tracker(store: Path) -> tracking.Tracker:
    return tracking.Tracker(mlflow_store.default_tracking_uri(store), f"gate-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def registry() -> Registry:
    name = f"grm-{uuid.uuid4().hex[:6]}"
    return Registry(name, f"{name}-meta")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text("{}")
    return path


def promote(tracker: tracking.Tracker, model: Path, registry: Registry, value: float, metric: str = METRIC) -> dict:
    run = tracker.start_run("pipeline")
    decision = tracker.promote(run, model, {metric: value}, registry, meta_rm_dir=model)
    tracker.end_run(run)
    return decision


def pair(tracker: tracking.Tracker, registry: Registry, alias: str) -> tuple[str | None, str | None]:
    """The runs the GRM and the meta RM holding ``alias`` come from."""
    grm = tracker.alias_version(registry.model_name, alias)
    meta = tracker.alias_version(registry.meta_model_name, alias)
    return (grm.run_id if grm else None), (meta.run_id if meta else None)


def test_a_champion_without_the_gate_metric_is_kept_with_the_reason(
    tracker: tracking.Tracker, registry: Registry, model: Path
) -> None:
    renamed = Registry(registry.model_name, registry.meta_model_name, gate_metric="eval/old_name")
    first = promote(tracker, model, renamed, 0.60, metric="eval/old_name")
    new = promote(tracker, model, registry, 0.99)  # the gate metric changed name: the champion has no value of it
    assert new["alias"] == "challenger"
    assert f"champion v{first['version']} has no value of {METRIC}" in new["reason"]
    assert str(tracker.alias_version(registry.model_name, "champion").version) == first["version"]
    assert new["champion_value"] is None and new["champion_version"] == first["version"]


def test_a_tie_or_a_gain_within_the_margin_keeps_the_champion(
    tracker: tracking.Tracker, registry: Registry, model: Path
) -> None:
    registry = Registry(registry.model_name, registry.meta_model_name, margin=0.05)
    decisions = [promote(tracker, model, registry, v) for v in (0.60, 0.60, 0.64, 0.66)]
    assert [d["alias"] for d in decisions] == ["champion", "challenger", "challenger", "champion"]
    assert "does not beat" in decisions[1]["reason"] and "by more than 0.05" in decisions[3]["reason"]
    assert pair(tracker, registry, "champion")[0] == pair(tracker, registry, "champion")[1] is not None


def _crash_on_alias(monkeypatch: pytest.MonkeyPatch, model_name: str) -> None:
    real = MlflowClient.set_registered_model_alias

    def set_alias(self: MlflowClient, name: str, alias: str, version: str) -> None:
        if name == model_name:
            raise SimulatedKill(f"killed while moving {name}@{alias}")
        real(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", set_alias)


def test_a_crash_between_the_two_alias_moves_is_completed_by_the_rerun(
    tracker: tracking.Tracker, registry: Registry, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = promote(tracker, model, registry, 0.60)
    crashed = tracker.start_run("pipeline")
    with monkeypatch.context() as m:
        _crash_on_alias(m, registry.meta_model_name)
        with pytest.raises(SimulatedKill):
            tracker.promote(crashed, model, {METRIC: 0.80}, registry, meta_rm_dir=model)
    old_run = tracker.client().get_model_version(registry.model_name, old["version"]).run_id
    assert pair(tracker, registry, "champion") == (crashed, old_run)  # split: the GRM moved, the meta RM did not
    tracker.end_run(crashed, "KILLED")

    rerun = promote(tracker, model, registry, 0.50)
    assert any("completed the promotion" in r for r in rerun["repairs"])
    assert pair(tracker, registry, "champion") == (crashed, crashed)
    assert rerun["alias"] == "challenger" and rerun["champion_value"] == pytest.approx(0.80)
    assert pair(tracker, registry, "challenger")[0] == pair(tracker, registry, "challenger")[1] not in (old_run, None)
    versions = tracker.client().search_model_versions(f"name='{registry.model_name}'")
    assert {(v.tags or {}).get(tracking.PROMOTION_TAG) for v in versions} == {"done"}


def test_a_crash_before_the_grm_alias_moves_is_rolled_back_by_the_rerun(
    tracker: tracking.Tracker, registry: Registry, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = promote(tracker, model, registry, 0.60)
    crashed = tracker.start_run("pipeline")
    with monkeypatch.context() as m:
        _crash_on_alias(m, registry.model_name)
        with pytest.raises(SimulatedKill):
            tracker.promote(crashed, model, {METRIC: 0.80}, registry, meta_rm_dir=model)
    client = tracker.client()
    pending = [v for v in client.search_model_versions(f"name='{registry.model_name}'") if v.run_id == crashed]
    assert [v.tags[tracking.PROMOTION_TAG] for v in pending] == ["pending"]
    tracker.end_run(crashed, "KILLED")

    rerun = promote(tracker, model, registry, 0.70)
    assert any("rolled back" in r for r in rerun["repairs"])
    with pytest.raises(MlflowException):
        client.get_model_version(registry.model_name, pending[0].version)
    assert not [v for v in client.search_model_versions(f"name='{registry.meta_model_name}'") if v.run_id == crashed]
    assert rerun["alias"] == "champion" and rerun["champion_version"] == old["version"]
    assert pair(tracker, registry, "champion")[0] == pair(tracker, registry, "champion")[1]


def test_a_pending_promotion_of_a_live_run_is_left_alone(
    tracker: tracking.Tracker, registry: Registry, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live = tracker.start_run("pipeline")
    tracker.own_run(live)  # this process: alive
    with monkeypatch.context() as m:
        _crash_on_alias(m, registry.model_name)
        with pytest.raises(SimulatedKill):
            tracker.promote(live, model, {METRIC: 0.80}, registry, meta_rm_dir=model)
    assert tracker.repair_promotions(registry) == []
    assert [v.run_id for v in tracker.client().search_model_versions(f"name='{registry.model_name}'")] == [live]


SIGKILLED_GATE = """
import os, sys
from dataclasses import dataclass
from mlflow import MlflowClient
from tasks import tracking

@dataclass(frozen=True)
class Registry:
    model_name: str
    meta_model_name: str
    gate_metric: str = {metric!r}
    margin: float = 0.0

registry = Registry({name!r}, {meta!r})
real = MlflowClient.set_registered_model_alias
def set_alias(self, name, alias, version):
    if name == registry.meta_model_name:
        print("KILL", flush=True)
        os._exit(137)  # no cleanup at all, like SIGKILL
    real(self, name, alias, version)
MlflowClient.set_registered_model_alias = set_alias
tracker = tracking.Tracker({uri!r}, {experiment!r})
run = tracker.start_run("pipeline")
tracker.own_run(run)
print("RUN", run, flush=True)
tracker.promote(run, {model!r}, {{registry.gate_metric: 0.9}}, registry, meta_rm_dir={model!r})
"""


def test_a_sigkilled_gate_is_repaired_by_the_next_pipeline_run(
    tracker: tracking.Tracker, registry: Registry, model: Path
) -> None:
    promote(tracker, model, registry, 0.60)
    script = SIGKILLED_GATE.format(
        metric=METRIC, name=registry.model_name, meta=registry.meta_model_name, uri=tracker.uri,
        experiment=tracker.experiment, model=str(model),
    )  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env)
    assert out.returncode == 137 and "KILL" in out.stdout, out.stderr[-2000:]
    killed = out.stdout.split("RUN ", 1)[1].split()[0]
    client = tracker.client()
    assert client.get_run(killed).info.status == "RUNNING"  # nobody closed it
    assert pair(tracker, registry, "champion")[0] == killed != pair(tracker, registry, "champion")[1]

    rerun = tracker.start_run("pipeline")
    assert tracker.own_run(rerun) == [killed]
    dead = client.get_run(killed)
    assert dead.info.status == "KILLED" and dead.data.tags[tracking.SUPERSEDED_TAG] == rerun
    decision = tracker.promote(rerun, model, {METRIC: 0.5}, registry, meta_rm_dir=model)
    assert decision["alias"] == "challenger"
    assert pair(tracker, registry, "champion") == (killed, killed)
    assert pair(tracker, registry, "challenger") == (rerun, rerun)


def test_own_run_ends_only_this_hosts_dead_runs(tracker: tracking.Tracker) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    host = socket.gethostname()
    dead = tracker.start_run("dead", tags={tracking.HOST_TAG: host, tracking.PID_TAG: str(dead_pid)})
    stage = tracker.start_run("dead-stage", parent_id=dead)
    remote = tracker.start_run("remote", tags={tracking.HOST_TAG: "elsewhere", tracking.PID_TAG: str(dead_pid)})
    legacy = tracker.start_run("legacy")  # no host/pid tags: unknown, left alone
    alive = tracker.start_run("alive", tags={tracking.HOST_TAG: host, tracking.PID_TAG: str(os.getpid())})
    new = tracker.start_run("new")
    assert sorted(tracker.own_run(new)) == sorted([dead, stage])
    client = tracker.client()
    status = {r: client.get_run(r).info.status for r in (dead, stage, remote, legacy, alive, new)}
    assert status == {dead: "KILLED", stage: "KILLED", remote: "RUNNING", legacy: "RUNNING", alive: "RUNNING",
                      new: "RUNNING"}  # fmt: skip
    assert client.get_run(dead).data.tags[tracking.SUPERSEDED_TAG] == new
    tags = client.get_run(new).data.tags
    assert tags[tracking.HOST_TAG] == host and tags[tracking.PID_TAG] == str(os.getpid())
    assert (
        client.get_experiment(tracker.experiment_id()).tags[tracking.EXPERIMENT_KIND_TAG] == "custom_model_development"
    )


def test_each_dvc_split_is_a_dataset_input_of_the_run(tracker: tracking.Tracker, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    for split, rows in (("train", 3), ("val", 2), ("test", 1)):
        (tmp_path / "data" / f"{split}.jsonl").write_text("{}\n" * rows)
    files = {"train.jsonl": "a" * 32, "val.jsonl": "b" * 32, "test.jsonl": "c" * 32}
    dv = SimpleNamespace(files=files, remote="/srv/dvc-remote", dvc_md5="d" * 32 + ".dir")
    run = tracker.start_run("p")
    assert tracker.log_datasets(run, dv, "data", tmp_path, "world") == ["world/train", "world/val", "world/test"]
    inputs = tracker.client().get_run(run).inputs.dataset_inputs
    got = {i.dataset.name: (i.dataset.digest, {t.key: t.value for t in i.tags}) for i in inputs}
    assert got["world/train"] == ("a" * 32, {"mlflow.data.context": "training"})
    assert got["world/val"][1]["mlflow.data.context"] == "validation"
    train = next(i.dataset for i in inputs if i.dataset.name == "world/train")
    assert '"uri": "data/train.jsonl"' in train.source and "/srv/dvc-remote" in train.source
    assert '"num_rows": 3' in train.profile


def test_dataset_inputs_carry_the_real_dvc_md5s(tracker: tracking.Tracker, tmp_path: Path) -> None:
    from tasks import versioning

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "data").mkdir()
    for split in ("train", "val", "test"):
        (tmp_path / "data" / f"{split}.jsonl").write_text(f'{{"split": "{split}"}}\n')
    dv = versioning.version_data(tmp_path, "data")
    run = tracker.start_run("p")
    tracker.log_datasets(run, dv, "data", tmp_path, str(tmp_path / "my-source"))
    inputs = tracker.client().get_run(run).inputs.dataset_inputs
    assert {i.dataset.name: i.dataset.digest for i in inputs} == {
        f"my-source/{split}": dv.files[f"{split}.jsonl"] for split in ("train", "val", "test")
    }
    assert all(dv.remote in i.dataset.source and '"dvc_file": "data.dvc"' in i.dataset.source for i in inputs)


def test_grm_eval_experiments_are_marked_model_training(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlflow

    from tasks.eval_tracking import log_eval_report

    before = mlflow.get_tracking_uri()
    uri = mlflow_store.default_tracking_uri(store)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "summary.md").write_text("x\n")
    name = f"eval-{uuid.uuid4().hex[:6]}"
    try:
        log_eval_report(tmp_path / "report", {"eval/x/acc": 0.5}, {"k": 1}, experiment=name)
    finally:
        mlflow.set_tracking_uri(before)
    exp = MlflowClient(uri).get_experiment_by_name(name)
    assert exp.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.TRAINING_KIND


def test_resolving_the_champion_repairs_a_split_pair_first(
    tracker: tracking.Tracker, registry: Registry, model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import registry as registry_tasks

    promote(tracker, model, registry, 0.60)
    crashed = tracker.start_run("pipeline")
    with monkeypatch.context() as m:
        _crash_on_alias(m, registry.meta_model_name)
        with pytest.raises(SimulatedKill):
            tracker.promote(crashed, model, {METRIC: 0.80}, registry, meta_rm_dir=model)
    tracker.end_run(crashed, "KILLED")
    assert pair(tracker, registry, "champion")[1] != crashed
    ctx = SimpleNamespace(cfg=SimpleNamespace(registry=registry), tracker=tracker, store_root=str(tmp_path / "stages"))
    local = Path(registry_tasks.resolve_model.fn(ctx, "champion"))
    assert any(local.rglob("config.json"))
    assert pair(tracker, registry, "champion") == (crashed, crashed)
