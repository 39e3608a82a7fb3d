"""HFSampler on CUDA: same contract as on CPU (shapes, completion only, seeded, greedy = CPU greedy)."""

from __future__ import annotations

import pytest

PROMPTS = ["the query is good", "a", "one two three four five six seven", "response : helpful answer"]


@pytest.fixture(scope="module")
def samplers(tiny_model_dir):
    from grm.sampling.hf import HFSampler

    cuda = HFSampler(tiny_model_dir, device="cuda", progress=False, batch_size=2)
    cpu = HFSampler(tiny_model_dir, device="cpu", progress=False, num_threads=1, batch_size=2)
    return cuda, cpu


def test_model_runs_on_cuda(samplers) -> None:
    cuda, _ = samplers
    assert next(cuda.model.parameters()).device.type == "cuda"


def test_shapes_and_seeded_sampling_on_cuda(samplers) -> None:
    cuda, _ = samplers
    a = cuda.generate(PROMPTS, 3, 1.0, 8, seed=7)
    assert len(a) == len(PROMPTS) and all(len(row) == 3 and all(isinstance(t, str) for t in row) for row in a)
    assert a == cuda.generate(PROMPTS, 3, 1.0, 8, seed=7)
    assert a != cuda.generate(PROMPTS, 3, 1.0, 8, seed=8)


def test_greedy_on_cuda_equals_greedy_on_cpu(samplers) -> None:
    cuda, cpu = samplers  # float32 on both; the tiny model's wide head leaves no near-ties
    gpu_out = cuda.generate(PROMPTS, 2, 0.0, 10, seed=0)
    assert all(row == [row[0]] * 2 for row in gpu_out)
    assert gpu_out == cpu.generate(PROMPTS, 2, 0.0, 10, seed=0)
