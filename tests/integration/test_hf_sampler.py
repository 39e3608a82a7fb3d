"""HFSampler on a tiny random Llama: shapes, seeds, greedy == model.generate, shared prefill, left padding, EOS."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow  # loads and samples the tiny model

PROMPTS = [
    "the query is good",
    "a",
    "one two three four five six seven eight nine ten the best response",
    "user : which answer is best ?",
]


@pytest.fixture(scope="module")
def sampler(tiny_model_dir):
    from grm.sampling.hf import HFSampler

    return HFSampler(tiny_model_dir, progress=False, num_threads=1, batch_size=8)


def hf_greedy(sampler, prompt: str, max_new_tokens: int) -> str:
    import torch

    enc = sampler.tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        out = sampler.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
    return sampler.tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def test_shapes_and_completion_only(sampler):
    out = sampler.generate(PROMPTS, 3, 1.0, 6, seed=0)
    assert len(out) == len(PROMPTS) and all(len(row) == 3 for row in out)
    assert all(isinstance(t, str) for row in out for t in row)
    details = sampler.generate_with_details(PROMPTS[:1], 2, 1.0, 6, seed=0)
    c = details[0][0]
    assert c.prompt_tokens == 5 and 1 <= c.completion_tokens <= 6 and c.finish_reason in {"stop", "length"}


def test_seed_determinism(sampler):
    a = sampler.generate(PROMPTS, 4, 1.0, 8, seed=123)
    b = sampler.generate(PROMPTS, 4, 1.0, 8, seed=123)
    c = sampler.generate(PROMPTS, 4, 1.0, 8, seed=124)
    assert a == b
    assert a != c
    assert len({t for row in a for t in row}) > len(PROMPTS)  # samples differ within a prompt


def test_greedy_identical_and_equal_to_hf_generate(sampler):
    out = sampler.generate(PROMPTS, 3, 0.0, 10, seed=0)
    for prompt, row in zip(PROMPTS, out, strict=True):
        assert row == [row[0]] * 3
        assert row[0] == hf_greedy(sampler, prompt, 10)


def test_left_padding_batch_equals_one_by_one(sampler):
    batched = sampler.generate(PROMPTS, 1, 0.0, 12, seed=0)
    single = [sampler.generate([p], 1, 0.0, 12, seed=0)[0] for p in PROMPTS]
    assert batched == single


def test_shared_prefill_prefills_each_prompt_once(sampler):
    n = 4
    sampler.stats.reset()
    shared = sampler.generate(PROMPTS, n, 1.0, 5, seed=0)
    lengths = [len(sampler.tokenizer(p)["input_ids"]) for p in PROMPTS]
    assert sampler.stats.sequences_prefilled == len(PROMPTS)
    assert sampler.stats.prompt_tokens_prefilled == sum(lengths)
    assert sampler.stats.prefill_calls == 1  # 4 prompts <= batch_size
    assert len(shared) == len(PROMPTS)

    sampler.stats.reset()
    naive = sampler.generate_naive(PROMPTS, n, 0.0, 10, seed=0)
    assert sampler.stats.sequences_prefilled == n * len(PROMPTS)
    assert sampler.stats.prompt_tokens_prefilled == n * sum(lengths)
    assert naive == sampler.generate(PROMPTS, n, 0.0, 10, seed=0)

    sampler.stats.reset()
    sampler.generate_with_details(PROMPTS, n, 1.0, 5, seed=0, share_prefill=False)
    assert sampler.stats.sequences_prefilled == n * len(PROMPTS)


def test_eos_stops_each_row(sampler):
    greedy = sampler.generate_with_details(PROMPTS[:1], 1, 0.0, 8, seed=0)[0][0]
    words = greedy.text.split()
    assert greedy.finish_reason == "length" and len(words) == 8
    stop_word = words[2]
    first = words.index(stop_word)
    stop_id = sampler.tokenizer.convert_tokens_to_ids(stop_word)
    saved = sampler.eos_token_ids
    try:
        sampler.eos_token_ids = {stop_id}
        c = sampler.generate_with_details(PROMPTS[:1], 2, 0.0, 8, seed=0)[0]
        assert c[0].text == " ".join(words[:first]) and c[0].finish_reason == "stop"
        assert c[0].completion_tokens == first + 1  # the EOS token counts, its text does not
        # Sampled rows stop independently, and never run past max_new_tokens.
        rows = sampler.generate_with_details(PROMPTS, 6, 1.5, 8, seed=3)
        flat = [comp for row in rows for comp in row]
        for comp in flat:
            assert stop_word not in comp.text.split()
            assert comp.completion_tokens <= 8
            assert comp.finish_reason == "stop" or comp.completion_tokens == 8
        assert any(comp.finish_reason == "stop" and comp.completion_tokens < 8 for comp in flat)
        assert any(comp.finish_reason == "length" for comp in flat)
        sampler.ignore_eos = True
        fixed = sampler.generate_with_details(PROMPTS[:1], 1, 0.0, 8, seed=0)[0][0]
        assert fixed.completion_tokens == 8 and fixed.finish_reason == "length"
    finally:
        sampler.eos_token_ids = saved
        sampler.ignore_eos = False


def test_top_p_and_chat_template(tiny_model_dir):
    from grm.sampling.hf import HFSampler

    s = HFSampler(tiny_model_dir, progress=False, chat_template=True, top_p=0.5)
    out = s.generate(["the query"], 2, 1.0, 4, seed=0)
    assert len(out[0]) == 2
    s.stats.reset()
    s.generate(["the query"], 1, 0.0, 1, seed=0)
    # "<s> user : the query assistant :" -- BOS comes from the template only (no second BOS).
    assert s.stats.prompt_tokens_prefilled == 7


def test_refuses_dirs_without_safetensors(tmp_path):
    from grm.sampling.hf import HFSampler

    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(FileNotFoundError, match=r"No \*\.safetensors.*pytorch_model\.bin.*safe_serialization=True"):
        HFSampler(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        HFSampler(tmp_path / "missing")


def test_argument_errors(sampler):
    with pytest.raises(ValueError, match="n must be"):
        sampler.generate(["a"], 0, 1.0, 4, 0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sampler.generate(["a"], 1, 1.0, 0, 0)
    with pytest.raises(TypeError, match="sequence of strings"):
        sampler.generate("a", 1, 1.0, 4, 0)
    assert sampler.generate([], 3, 1.0, 4, 0) == []


def test_build_sampler_local_dir(tiny_model_dir):
    from grm.sampling import build_sampler
    from grm.sampling.hf import HFSampler

    s = build_sampler(str(tiny_model_dir), progress=False, api_key="ignored")
    assert isinstance(s, HFSampler)
