"""The Ray executor on a local Ray cluster (127.0.0.1, 2 CPUs) started and stopped by this module: judgements and
metrics equal the local executor's at 1 and 2 workers, a SIGKILLed worker's shard is retried with the same result,
and a shard that fails for good fails the stage with nothing published."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from grm.benchmarks import bundled
from grm.eval.run import evaluate
from grm.eval.spec import EvalSpec
from grm.executors import LocalExecutor, RayExecutor, SamplerSpec, ShardedSampler, local_runtime_env
from grm.method import judging
from grm.world.generator import WorldConfig, generate_world

ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra (pip install 'grm[ray]')")

WORLD = WorldConfig(n_train=0, n_val=0, n_test=24)


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env=local_runtime_env()
    )
    yield
    ray.shutdown()


def _report(sampler, items) -> dict:
    """The evaluation report (as JSON text in ``cells``: NaN == NaN) plus the raw sampled texts."""
    rep = evaluate(items, sampler, EvalSpec(benchmark="world", model_name="teacher", ks=(1, 4), temperature=0.5, max_new_tokens=50, seed=3, template="compact"))  # fmt: skip
    texts = judging.judge_items(items, sampler, k=3, temperature=1.0, max_new_tokens=50, seed=5, template="compact")
    out = dataclasses.asdict(rep)
    out["cells"] = json.dumps(out["cells"], sort_keys=True)
    out["texts"] = [[s.text for s in j.samples] for j in texts]
    return out


def test_world_teacher_eval_equals_local_at_1_and_2_workers(ray_cluster) -> None:
    items = generate_world(WORLD)["test"]
    spec = SamplerSpec("world-teacher", {"world": WORLD, "seed": 0})
    local = _report(ShardedSampler(spec, 5, LocalExecutor()), items)
    for workers in (1, 2):
        ex = RayExecutor(workers=workers, shutdown=False)
        try:
            got = _report(ShardedSampler(spec, 5, ex), items)
            assert len({t.worker_pid for t in ex.timings}) == workers
        finally:
            ex.close()
        assert got["per_item"] == local["per_item"]
        assert got["cells"] == local["cells"]
        assert got["texts"] == local["texts"]


def _kill_first_worker(flags: Path, killed: list[int]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        started = sorted(flags.iterdir())
        if started:
            pid = int(started[0].name)
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def _slow_spec(tmp_path: Path) -> SamplerSpec:
    flags = tmp_path / "flags"
    flags.mkdir()
    return SamplerSpec("slow-teacher", {"flag_dir": str(flags), "delay": 0.5}, "tests.helpers.slow_sampler:make",
                       per_prompt=True)  # fmt: skip


def test_a_killed_worker_is_retried_and_the_result_is_unchanged(ray_cluster, tmp_path: Path) -> None:
    items = generate_world(WORLD)["test"]
    prompts = [f"Query: {it.query}\nR1: {it.responses[0]}\nR2: {it.responses[1]}\nJudge:" for it in items]
    spec = _slow_spec(tmp_path)
    expected = ShardedSampler(spec, 4, LocalExecutor()).generate(prompts, 2, 0.5, 50, 9)
    for f in Path(spec.options["flag_dir"]).iterdir():
        f.unlink()
    ex = RayExecutor(workers=2, max_retries=2, shutdown=False)
    try:
        ex.pool(spec)
        killed: list[int] = []
        killer = threading.Thread(target=_kill_first_worker, args=(Path(spec.options["flag_dir"]), killed))
        killer.start()
        got = ShardedSampler(spec, 4, ex).generate(prompts, 2, 0.5, 50, 9)
        killer.join()
        assert killed, "no worker was killed"
        assert got == expected
        assert killed[0] not in ex.worker_pids(spec)  # the dead actor was restarted in a new process
    finally:
        ex.close()


def test_a_shard_that_fails_for_good_fails_the_stage_and_publishes_nothing(ray_cluster, tmp_path: Path) -> None:
    from tasks.engine.stages import StageOutput, StageStore

    spec = _slow_spec(tmp_path)
    ex = RayExecutor(workers=1, max_retries=0, shutdown=False)
    store = StageStore(tmp_path / "stages")

    def build(out: Path) -> StageOutput:
        (out / "partial.json").write_text("{}")
        killer = threading.Thread(target=_kill_first_worker, args=(Path(spec.options["flag_dir"]), []))
        killer.start()
        try:
            ShardedSampler(spec, 2, ex).generate(
                [f"Query: q{i}\nR1: a\nR2: b\nJudge:" for i in range(4)], 1, 0.0, 8, 0
            )
        finally:
            killer.join()
        return StageOutput({"x": "partial.json"})

    try:
        with pytest.raises(RuntimeError, match=r"shard 0 .*failed on a Ray worker after 0 retries"):
            store.run("eval.teacher", "k" * 64, build)
    finally:
        ex.close()
    assert store.lookup("eval.teacher", "k" * 64) is None
    assert not list((tmp_path / "stages" / "eval.teacher").iterdir())  # no final folder, no leftover tmp folder


@pytest.mark.slow
def test_tiny_world_model_eval_equals_local_at_1_and_2_workers(ray_cluster, tmp_path: Path) -> None:
    from grm.config import ModelTinyConfig, SamplingConfig
    from grm.training import spct

    tiny = ModelTinyConfig(hidden_size=32, num_layers=1, intermediate_size=64, max_position_embeddings=256)
    model = spct.build_base_model("embedded", tiny, WORLD, tmp_path / "base", seed=0)
    items = generate_world(WORLD)["test"][:12]
    sampling = SamplingConfig(max_new_tokens=12, batch_size=4, num_threads=1, shard_size=5)
    local = _report(spct.student_sampler(model, sampling), items)  # no executor around: a local one
    assert len({t for row in local["texts"] for t in row}) > 1  # sampled texts differ: the check can fail
    other = dataclasses.replace(sampling, shard_size=3)  # other shards sample otherwise: why the shards are fixed
    assert _report(spct.student_sampler(model, other), items)["texts"] != local["texts"]
    for workers in (1, 2):
        ex = RayExecutor(workers=workers, shutdown=False)
        try:
            from grm import executors

            with executors.using(ex):
                got = _report(spct.student_sampler(model, sampling), items)
        finally:
            ex.close()
        assert got["per_item"] == local["per_item"]
        assert got["cells"] == local["cells"]
        assert got["texts"] == local["texts"]


BENCHDATA = bundled.bundled_root()  # the copy shipped in the repository (docs/benchdata.md)


@pytest.mark.slow
def test_grm_eval_executor_ray_equals_local(ray_cluster, tiny_model_dir: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from grm_cli.eval import eval_command

    app = typer.Typer()
    app.command("eval")(eval_command)
    app.callback()(lambda: None)
    outputs = {}
    for executor in ("local", "ray"):
        out = tmp_path / executor
        args = ["eval", "--benchmark", "rewardbench", "--model", str(tiny_model_dir), "--model-name", "tiny",
                "--limit", "6", "--k", "1,2", "--max-new-tokens", "6", "--template", "compact", "--no-hygiene",
                "--benchdata", str(BENCHDATA), "--output", str(out), "--executor", executor, "--workers", "2",
                "--shard-size", "3"]  # fmt: skip
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs[executor] = [(out / name).read_text() for name in ("metrics.json", "items_rewardbench.jsonl")]
    assert outputs["ray"] == outputs["local"]


def test_more_workers_than_the_cluster_holds_is_a_clear_error(ray_cluster) -> None:
    ex = RayExecutor(workers=3, num_cpus=1, shutdown=False)  # the module's cluster has 2 CPUs
    try:
        with pytest.raises(
            ValueError, match=r"runtime.workers=3 x runtime.num_cpus=1 needs 3 CPUs; the Ray cluster has 2"
        ):
            ShardedSampler(SamplerSpec("world-teacher", {}), 4, ex).generate(["Query: x\nR1: a\nJudge:"], 1, 0.0, 8, 0)
    finally:
        ex.close()
