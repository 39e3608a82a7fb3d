"""Stage store: content-hash keys, completion markers, crash leftovers, and the bench ledger."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tasks import bench, prefect_env
from tasks.stages import StageOutput, StageResult, StageStore, stage_key, tree_md5


def test_stage_key_changes_with_config_inputs_code_and_version() -> None:
    base = {"config": {"lr": 1.0}, "inputs": {"train": "abc"}, "code": "c1"}
    key = stage_key("rft.train", **base)
    assert key == stage_key("rft.train", **base)  # deterministic
    assert key != stage_key("rft.train", **{**base, "config": {"lr": 2.0}})
    assert key != stage_key("rft.train", **{**base, "inputs": {"train": "abd"}})
    assert key != stage_key("rft.train", **{**base, "code": "c2"})
    assert key != stage_key("rft.train", **base, version="2")
    assert key != stage_key("rl.train", **base)


def test_upstream_stage_counts_by_key_not_by_cached_flag_or_timing() -> None:
    a = StageResult("up", "k1", "/x", cached=False, seconds=3.0)
    b = StageResult("up", "k1", "/y", cached=True, seconds=0.0)
    assert stage_key("s", config={}, inputs={"up": a}, code="c") == stage_key(
        "s", config={}, inputs={"up": b}, code="c"
    )


def test_completed_stage_is_reused_and_build_not_called(tmp_path: Path) -> None:
    store = StageStore(tmp_path)
    calls = []

    def build(out: Path):
        calls.append(out)
        (out / "model.txt").write_text("weights")
        return StageOutput({"model": "model.txt"}, {"loss": 0.5}, {"note": "x"})

    first = store.run("rft.train", "k", build)
    second = store.run("rft.train", "k", build)
    assert len(calls) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.metrics == {"loss": 0.5}
    assert second.output("model").read_text() == "weights"
    with pytest.raises(KeyError, match="has no output 'nope'"):
        second.output("nope")


def test_failed_build_leaves_no_completed_folder(tmp_path: Path) -> None:
    store = StageStore(tmp_path)

    def boom(out: Path):
        (out / "partial").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        store.run("rl.train", "k", boom)
    assert store.lookup("rl.train", "k") is None
    assert list((tmp_path / "rl.train").iterdir()) == []


def test_tmp_folder_of_a_killed_process_is_cleared_before_rebuilding(tmp_path: Path) -> None:
    store = StageStore(tmp_path)
    dead = tmp_path / "eval.base" / ".k.999999999.tmp"  # no such pid
    dead.mkdir(parents=True)
    (dead / "junk").write_text("x")
    result = store.run("eval.base", "k", lambda out: StageOutput())
    assert not dead.exists()
    assert result.cached is False and Path(result.path).name == "k"


def test_folder_without_marker_is_not_a_completed_stage(tmp_path: Path) -> None:
    (tmp_path / "s" / "k").mkdir(parents=True)
    assert StageStore(tmp_path).lookup("s", "k") is None


def test_tree_md5_depends_on_names_and_content(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("1")
    h1 = tree_md5(tmp_path)
    (tmp_path / "a").write_text("2")
    assert tree_md5(tmp_path) != h1


def test_bench_report_charges_unmeasured_time_to_orchestration() -> None:
    led = bench.Ledger()
    led.add("rft.train", "compute", 9.0)
    led.add("rft.train", "tracking", 0.5)
    led.add("data.validate", "validation", 0.5)
    report = led.report(total_seconds=11.0)
    assert report.stages["flow"]["orchestration"] == pytest.approx(1.0)
    assert report.overhead_seconds == pytest.approx(2.0)
    assert report.overhead_share == pytest.approx(2 / 11)
    assert "ABOVE the 10% target" in report.table()
    assert report.metrics()["bench/rft.train/compute_s"] == 9.0
    with pytest.raises(ValueError, match="Unknown category"):
        led.add("x", "gpu", 1.0)


def test_prefect_defaults_do_not_override_what_is_set(tmp_path: Path) -> None:
    env = {"PREFECT_HOME": "/elsewhere"}
    applied = prefect_env.configure_defaults(tmp_path, env)
    assert env["PREFECT_HOME"] == "/elsewhere" and "PREFECT_HOME" not in applied
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert int(env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]) >= 60
    assert prefect_env.defaults_for(tmp_path)["PREFECT_HOME"] == str(tmp_path.resolve() / ".prefect")
    assert os.environ.get("PREFECT_HOME") != str(tmp_path / ".prefect")  # the real environment was not touched
