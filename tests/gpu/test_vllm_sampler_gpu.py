"""VLLMSampler really generating on a GPU with a tiny Llama built locally (tests/helpers/tiny_model.py).

The contract is the ``Sampler`` one every backend meets (n texts per prompt in prompt order, completion only,
greedy copies, seeded sampling) plus two checks against transformers: each greedy token vLLM emits is the argmax
of the same weights under HF (up to fp16 rounding), and judging parses vLLM's texts exactly as it parses any text.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PROMPTS = ["the query is good", "a", "one two three four five six seven", "response : helpful answer"]
LOGIT_TOL = 0.1  # fp16 (vLLM) vs fp32 (HF) logits of magnitude ~10 differ by ~1e-2


@pytest.fixture(scope="module")
def vllm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.helpers.tiny_model import build_tiny_model

    # head_dim 64: the GPU attention kernels (FlashAttention, FlashInfer) take 64/128/256, not the default 8
    return build_tiny_model(
        tmp_path_factory.mktemp("vllm_model") / "model", hidden_size=128, num_heads=2, intermediate_size=256
    )


@pytest.fixture(scope="module")
def sampler(needs_vllm: None, vllm_model_dir: Path):  # skip before building anything
    from grm.sampling.vllm_backend import VLLMSampler

    return VLLMSampler(
        str(vllm_model_dir), gpu_memory_utilization=0.3, max_model_len=512, dtype="float16", progress=False
    )


def test_shapes_prompt_order_and_greedy_copies(sampler) -> None:
    out = sampler.generate(PROMPTS, 3, 0.0, 8, seed=0)
    assert len(out) == len(PROMPTS)
    for row in out:
        assert len(row) == 3 and row == [row[0]] * 3 and isinstance(row[0], str)
    single = [sampler.generate([p], 1, 0.0, 8, seed=0)[0][0] for p in PROMPTS]
    assert [row[0] for row in out] == single  # batching does not reorder or mix prompts


def test_seeded_sampling(sampler) -> None:
    a = sampler.generate(PROMPTS, 4, 1.0, 12, seed=11)
    assert a == sampler.generate(PROMPTS, 4, 1.0, 12, seed=11)
    assert a != sampler.generate(PROMPTS, 4, 1.0, 12, seed=12)
    assert all(len(row) == 4 for row in a) and len({t for row in a for t in row}) > len(PROMPTS)


def test_greedy_tokens_are_the_hf_argmax(sampler, vllm_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(vllm_model_dir)
    model = AutoModelForCausalLM.from_pretrained(vllm_model_dir, dtype=torch.float32).to("cuda").eval()
    for prompt, row in zip(PROMPTS, sampler.generate(PROMPTS, 1, 0.0, 8, seed=0), strict=True):
        completion = row[0]
        assert not completion.startswith(prompt)  # completion only
        prompt_ids = tok(prompt)["input_ids"]
        completion_ids = tok(completion, add_special_tokens=False)["input_ids"]
        assert completion_ids, f"vLLM returned an empty greedy completion for {prompt!r}"
        ids = torch.tensor([prompt_ids + completion_ids], device="cuda")
        with torch.no_grad():
            logits = model(ids).logits[0, len(prompt_ids) - 1 : -1].float()
        chosen = logits.gather(1, torch.tensor(completion_ids, device="cuda")[:, None])[:, 0]
        gap = (logits.max(dim=1).values - chosen).max().item()
        assert gap <= LOGIT_TOL, f"{prompt!r}: a vLLM greedy token is {gap:.3f} below HF's argmax logit"


def test_judging_parses_vllm_texts_like_any_text(sampler) -> None:
    from grm.method.judging import judge_items, parse_sample
    from grm.schemas import Item

    items = [
        Item(id="pair", query="the question", responses=("a good answer", "a bad answer"), best=0),
        Item(id="three", query="one question", responses=("one", "two", "three"), best=2),
    ]
    results = judge_items(items, sampler, k=2, temperature=1.0, max_new_tokens=16, seed=3, template="compact")
    assert [r.id for r in results] == ["pair", "three"]
    for item, res in zip(items, results, strict=True):
        assert len(res.samples) == 2
        for s in res.samples:
            assert sorted(s.order) == list(range(item.n))
            again = parse_sample(s.text, s.order, single_label=False)
            assert (again.status, again.scores) == (s.status, s.scores)
            assert (s.scores is None) == (s.status != "ok")
