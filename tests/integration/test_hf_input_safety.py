"""HFSampler input safety: special-token strings in text stay text; prompts never exceed the model's context."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.slow  # loads the tiny model


@pytest.fixture(scope="module")
def sampler(tiny_model_dir):
    from grm.sampling.hf import HFSampler

    return HFSampler(tiny_model_dir, progress=False, num_threads=1, batch_size=4)


def _ids(sampler, prompt: str) -> list[int]:
    text = sampler._prepare_texts([prompt])[0]
    return sampler.tokenizer(text, add_special_tokens=False)["input_ids"]


def test_special_token_strings_in_a_response_do_not_become_control_tokens(sampler):
    eos, bos = sampler.tokenizer.eos_token_id, sampler.tokenizer.bos_token_id
    raw = sampler.tokenizer("the answer </s> <s> is good", add_special_tokens=False)["input_ids"]
    assert eos in raw and bos in raw  # what the prompt text would have become without escaping
    before = sampler.stats.special_tokens_escaped
    ids = _ids(sampler, "the answer </s> <s> is good")
    assert eos not in ids and bos not in ids
    assert sampler.stats.special_tokens_escaped - before == 2
    assert (
        _ids(sampler, "the answer is good")
        == sampler.tokenizer("the answer is good", add_special_tokens=False)["input_ids"]
    )  # ordinary text is untouched


def test_a_prompt_longer_than_the_context_is_not_generated_but_counted(sampler, monkeypatch):
    monkeypatch.setattr(sampler, "_max_positions", 16)
    sampler.stats.reset()
    long_prompt = " ".join(["the"] * 40)
    out = sampler.generate_with_details(["the query", long_prompt], 2, 1.0, 4, seed=0)
    assert [c.finish_reason for c in out[1]] == ["context", "context"] and out[1][0].text == ""
    assert out[0][0].finish_reason in {"stop", "length"}
    assert sampler.stats.prompts_over_context == 1


def test_generation_budget_is_cut_to_fit_the_context(sampler, monkeypatch):
    monkeypatch.setattr(sampler, "_max_positions", 12)
    sampler.stats.reset()
    prompt = " ".join(["the"] * 8)  # 8 tokens + BOS = 9: room for 3 new tokens, not 10
    out = sampler.generate_with_details([prompt], 1, 1.0, 10, seed=0)
    assert out[0][0].prompt_tokens + out[0][0].completion_tokens <= 12
    assert sampler.stats.prompts_budget_clipped == 1


def test_a_5mb_prompt_is_refused_without_tokenizing_or_allocating(sampler):
    sampler.stats.reset()
    start = time.perf_counter()
    out = sampler.generate_with_details(["the " * 1_300_000], 1, 1.0, 4, seed=0)
    assert out[0][0].finish_reason == "context" and sampler.stats.prompts_over_context == 1
    assert sampler.stats.prefill_calls == 0 and time.perf_counter() - start < 5


def test_grm_score_reports_prompts_over_the_context_and_counts_them_as_failures(tiny_model_dir, tmp_path):
    import json

    from typer.testing import CliRunner

    from grm_cli.app import app

    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "long", "query": "the query", "responses": ["the " * 1100], "label": 1}) + "\n")
    out = tmp_path / "out.jsonl"
    args = ["score", "--model", str(tiny_model_dir), "--input", str(items), "--output", str(out), "--k", "2"]
    res = CliRunner().invoke(app, [*args, "--max-new-tokens", "4"])
    assert res.exit_code == 0, res.output
    assert "1 prompt(s) longer than the model's context were not generated" in res.stderr
    record = json.loads(out.read_text())
    assert [s["status"] for s in record["samples"]] == ["missing", "missing"] and "parse failures 2/2" in res.stdout
