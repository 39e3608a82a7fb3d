"""vLLM workers on Ray: Ray actors each holding a ``VLLMSampler`` (spec ``vllm:PATH``, a share of the GPU) sample the
same texts as the local executor, shard for shard."""

from __future__ import annotations

from pathlib import Path

import pytest

PROMPTS = [f"the query {i} is good" for i in range(10)]


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.tiny_model import build_tiny_model

    # head_dim 64: the GPU attention kernels take 64/128/256 (see test_vllm_sampler_gpu.py)
    return build_tiny_model(
        tmp_path_factory.mktemp("vllm_ray") / "model", hidden_size=128, num_heads=2, intermediate_size=256
    )


def test_vllm_actors_on_ray_sample_like_the_local_executor(needs_vllm: None, vllm_model_dir: Path) -> None:
    ray = pytest.importorskip("ray", reason="the Ray executor needs the ray extra (pip install 'grm[ray]')")
    from grm.executors import LocalExecutor, RayExecutor, SamplerSpec, ShardedSampler, local_runtime_env

    options = {"gpu_memory_utilization": 0.2, "max_model_len": 512, "dtype": "float16", "progress": False}
    spec = SamplerSpec(f"vllm:{vllm_model_dir}", options)
    local_ex = LocalExecutor()
    local = ShardedSampler(spec, 4, local_ex).generate(PROMPTS, 3, 1.0, 12, seed=5)
    ray.init(address="local", num_cpus=4, num_gpus=1, include_dashboard=False, runtime_env=local_runtime_env())
    ex = RayExecutor(workers=2, num_cpus=1, num_gpus=0.3, shutdown=False)
    try:
        got = ShardedSampler(spec, 4, ex).generate(PROMPTS, 3, 1.0, 12, seed=5)
        assert len({t.worker_pid for t in ex.timings}) == 2  # both GPU actors sampled
    finally:
        ex.close()
        ray.shutdown()
        local_ex.close()
    assert got == local
    assert len({t for row in got for t in row}) > len(PROMPTS)  # really sampled, not greedy copies
