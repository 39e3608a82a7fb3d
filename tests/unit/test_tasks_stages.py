"""Stage store: content-hash keys, completion markers, crash leftovers, and the bench ledger."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from grm.config import PipelineConfig, from_dict
from tasks import prefect_env, training
from tasks.engine import timings
from tasks.engine.runtime import RunContext, StageError, run_stage
from tasks.engine.stages import (
    BuildContext,
    FileInput,
    Skip,
    Stage,
    StageOutput,
    StageResult,
    StageStore,
    stage_key,
    tree_md5,
)
from tasks.tracking import NullTracker


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
    led = timings.Ledger()
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


# --- run_stage over a declared Stage -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ToySlice:
    ks: tuple[int, ...]
    seed: int


def _toy_select(cfg: PipelineConfig, tag: str = "a") -> _ToySlice | Skip:
    if cfg.eval.limit == 1:  # any recognisable value: the toy stage skips on it
        return Skip("eval.limit is 1")
    return _ToySlice(cfg.eval.ks, cfg.eval.seed)


def _toy_files(cfg: PipelineConfig, tag: str = "a") -> dict[str, FileInput]:
    return {"notes": FileInput("notes.txt", "eval.benchdata", required=False)}


SEEN: list[tuple[object, BuildContext]] = []


def _toy_build(s: _ToySlice, b: BuildContext) -> StageOutput:
    SEEN.append((s, b))
    (b.out / "ks.txt").write_text(",".join(map(str, s.ks)))
    return StageOutput({"ks": "ks.txt"}, {"toy/k": float(len(s.ks))}, {"up": b.inputs["up"].key})


TOY = Stage("toy.{tag}", _toy_select, _toy_build, inputs=("up",), files=_toy_files)


def _ctx(tmp_path: Path, cfg: PipelineConfig) -> RunContext:
    return RunContext("t", str(tmp_path), cfg, NullTracker(), "", str(tmp_path / "stages"), "code-0")


def test_run_stage_hands_the_build_only_its_slice_and_reuses_the_result(tmp_path: Path) -> None:
    SEEN.clear()
    up = StageResult("up", "k-up", str(tmp_path))
    ctx = _ctx(tmp_path, PipelineConfig())
    first = run_stage(ctx, TOY, {"up": up}, tag="b")
    assert first is not None and first.stage == "toy.b" and not first.cached
    ((s, b),) = SEEN
    assert s == _ToySlice(PipelineConfig().eval.ks, PipelineConfig().eval.seed)
    assert b.files == {"notes": None} and b.inputs == {"up": up} and b.project_dir == tmp_path
    assert not any(isinstance(getattr(b, f.name), PipelineConfig) for f in dataclasses.fields(b))
    again = run_stage(ctx, TOY, {"up": up}, tag="b")
    assert again is not None and again.cached and again.key == first.key and len(SEEN) == 1
    (tmp_path / "notes.txt").write_text("now present")  # an optional file appearing changes the key
    third = run_stage(ctx, TOY, {"up": up}, tag="b")
    assert third is not None and third.key != first.key and not third.cached
    unrelated = dataclasses.replace(ctx.cfg, registry=dataclasses.replace(ctx.cfg.registry, margin=0.5))
    assert run_stage(_ctx(tmp_path, unrelated), TOY, {"up": up}, tag="b").key == third.key  # type: ignore[union-attr]


def test_run_stage_returns_none_when_select_skips(tmp_path: Path) -> None:
    cfg = dataclasses.replace(PipelineConfig(), eval=dataclasses.replace(PipelineConfig().eval, limit=1))
    assert run_stage(_ctx(tmp_path, cfg), TOY, {"up": StageResult("up", "k", "/x")}) is None
    assert not (tmp_path / "stages").exists()


def test_run_stage_names_the_stage_and_config_key_of_a_missing_file(tmp_path: Path) -> None:
    cfg = from_dict(PipelineConfig, {"model": {"base": str(tmp_path / "no_model")}})
    with pytest.raises(StageError, match=r"stage model\.base failed: .*model\.base: .*no_model does not exist"):
        run_stage(_ctx(tmp_path, cfg), training.BASE)


def test_a_build_must_return_a_stage_output(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="a build returns a StageOutput, got tuple"):
        StageStore(tmp_path).run("s", "k", lambda out: ({}, {}, {}))
    assert StageStore(tmp_path).lookup("s", "k") is None
