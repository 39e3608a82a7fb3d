"""vLLM backend without a GPU: pure helpers, a fake ``vllm`` module, and the missing-install message."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

from grm.sampling import vllm_backend
from grm.sampling.openai_http import derive_seed
from grm.sampling.vllm_backend import collect_outputs, sampling_params_kwargs


@dataclass
class FakeCompletion:
    index: int
    text: str


@dataclass
class FakeRequestOutput:
    prompt: str
    outputs: list[FakeCompletion] = field(default_factory=list)


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class FakeTokenizer:
    chat_template = "{{ messages }}"

    def apply_chat_template(self, messages, tokenize, add_generation_prompt):
        return f"<s>[USER] {messages[0]['content']} [ASSISTANT]"

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [len(w) for w in text.split()]}


class FakeLLM:
    instances: list[FakeLLM] = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls: list[tuple[list, list, bool]] = []
        FakeLLM.instances.append(self)

    def get_tokenizer(self):
        return FakeTokenizer()

    def generate(self, prompts, params, use_tqdm=True):
        self.calls.append((prompts, params, use_tqdm))
        out = []
        for p, sp in zip(prompts, params, strict=True):
            n = sp.kwargs["n"]
            # Completions come back out of index order: the sampler must sort them.
            comps = [FakeCompletion(j, f"{p}#{sp.kwargs['seed']}#{j}") for j in reversed(range(n))]
            out.append(FakeRequestOutput(str(p), comps))
        return out


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.LLM = FakeLLM
    module.SamplingParams = FakeSamplingParams
    monkeypatch.setitem(sys.modules, "vllm", module)
    FakeLLM.instances.clear()
    return module


def test_sampling_params_kwargs_sampled_and_greedy():
    assert sampling_params_kwargs(4, 0.5, 64, 7) == {"n": 4, "temperature": 0.5, "max_tokens": 64, "seed": 7}
    assert sampling_params_kwargs(4, 0.0, 64, 7)["n"] == 1  # greedy samples are copied
    assert sampling_params_kwargs(2, 1.0, 8, 1, top_p=0.9)["top_p"] == 0.9
    assert "top_p" not in sampling_params_kwargs(2, 0.0, 8, 1, top_p=0.9)
    with pytest.raises(ValueError, match="n must be"):
        sampling_params_kwargs(0, 1.0, 8, 1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sampling_params_kwargs(1, 1.0, 0, 1)


def test_collect_outputs_sorts_by_index_and_checks_counts():
    outs = [FakeRequestOutput("a", [FakeCompletion(1, "a1"), FakeCompletion(0, "a0")])]
    assert collect_outputs(outs, 2, greedy=False) == [["a0", "a1"]]
    assert collect_outputs([FakeRequestOutput("g", [FakeCompletion(0, "g")])], 3, greedy=True) == [["g", "g", "g"]]
    with pytest.raises(RuntimeError, match="returned 2 samples for prompt 0, expected 3"):
        collect_outputs(outs, 3, greedy=False)


def test_sampler_with_fake_vllm(fake_vllm):
    s = vllm_backend.VLLMSampler("/models/m", max_model_len=2048, progress=False)
    llm = FakeLLM.instances[-1]
    assert llm.kwargs == {
        "model": "/models/m",
        "tensor_parallel_size": 1,
        "gpu_memory_utilization": 0.9,
        "enable_prefix_caching": True,
        "trust_remote_code": False,
        "dtype": "auto",
        "max_model_len": 2048,
    }
    out = s.generate(["a", "b"], 3, 0.5, 16, seed=5)
    assert out == [[f"a#{derive_seed(5, 0)}#{j}" for j in range(3)], [f"b#{derive_seed(5, 1)}#{j}" for j in range(3)]]
    prompts, params, use_tqdm = llm.calls[-1]
    assert prompts == ["a", "b"] and use_tqdm is False
    assert [p.kwargs["n"] for p in params] == [3, 3]  # one request per prompt with n samples: one shared prefill
    greedy = s.generate(["a"], 4, 0.0, 16, seed=5)
    assert greedy == [[f"a#{derive_seed(5, 0)}#0"] * 4]
    assert s.generate([], 2, 1.0, 4, 0) == []


def test_chat_template_passes_token_ids(fake_vllm):
    s = vllm_backend.VLLMSampler("/models/m", chat_template=True, progress=False)
    s.generate(["hello there"], 1, 1.0, 4, seed=0)
    prompts, _, _ = FakeLLM.instances[-1].calls[-1]
    assert prompts == [{"prompt_token_ids": [9, 5, 5, 11]}]


def test_missing_vllm_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(ImportError, match=r"vLLM is not installed in this environment.*requirements-gpu\.txt"):
        vllm_backend.VLLMSampler("/models/m")


def test_package_import_does_not_import_heavy_modules():
    import subprocess

    code = (
        "import sys, grm.sampling, grm.sampling.vllm_backend, grm.sampling.openai_http, grm.serving;"
        "bad=[m for m in ('vllm','torch','transformers') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
