"""grm.serving (OpenAI-compatible stdlib server) over a fake sampler, and build_sampler's spec dispatch."""

from __future__ import annotations

from collections.abc import Sequence

import httpx
import pytest

from grm.sampling import build_sampler
from grm.sampling.openai_http import OpenAICompatSampler, SamplerHTTPError
from grm.serving import RequestError, parse_completion_request, start_in_thread


class EchoSampler:
    """Deterministic fake: text = prompt|temperature|seed|sample index."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        self.calls.append((list(prompts), n, temperature, max_new_tokens, seed))
        return [[f"{p}|{temperature}|{seed}|{j}" for j in range(n)] for p in prompts]


class FailingSampler:
    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        raise RuntimeError("out of memory")


@pytest.fixture
def echo_server():
    sampler = EchoSampler()
    server = start_in_thread(sampler, model_name="tiny")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    yield url, sampler
    server.shutdown()
    server.server_close()


def test_parse_request_defaults_and_errors():
    req = parse_completion_request({"prompt": "p"}, "m")
    assert req == {"prompts": ["p"], "n": 1, "temperature": 1.0, "max_tokens": 16, "seed": 0}
    with pytest.raises(RequestError, match="does not exist") as ei:
        parse_completion_request({"model": "other", "prompt": "p"}, "m")
    assert ei.value.status == 404
    for bad, field in [
        ({"prompt": 3}, "prompt"),
        ({"prompt": []}, "prompt"),
        ({"prompt": "p", "n": 0}, "n"),
        ({"prompt": "p", "n": True}, "n"),
        ({"prompt": "p", "max_tokens": "9"}, "max_tokens"),
        ({"prompt": "p", "temperature": -1}, "temperature"),
        ({"prompt": "p", "stream": True}, "stream"),
    ]:
        with pytest.raises(RequestError) as ei:
            parse_completion_request(bad, "m")
        assert ei.value.param == field and ei.value.status == 400


def test_models_and_health(echo_server):
    url, _ = echo_server
    assert httpx.get(f"{url}/v1/models").json()["data"][0]["id"] == "tiny"
    assert httpx.get(f"{url}/health").json()["status"] == "ok"
    assert httpx.get(f"{url}/nope").status_code == 404


def test_list_prompt_choices_are_prompt_major(echo_server):
    url, sampler = echo_server
    body = {"model": "tiny", "prompt": ["a", "b"], "n": 2, "temperature": 0.5, "max_tokens": 3, "seed": 9}
    r = httpx.post(f"{url}/v1/completions", json=body)
    assert r.status_code == 200
    data = r.json()
    assert data["object"] == "text_completion" and data["model"] == "tiny"
    assert [(c["index"], c["text"]) for c in data["choices"]] == [
        (0, "a|0.5|9|0"),
        (1, "a|0.5|9|1"),
        (2, "b|0.5|9|0"),
        (3, "b|0.5|9|1"),
    ]
    assert sampler.calls == [(["a", "b"], 2, 0.5, 3, 9)]


def test_client_against_server(echo_server):
    url, _ = echo_server
    build = build_sampler(url, timeout=5.0)  # model name read from /v1/models
    assert isinstance(build, OpenAICompatSampler) and build.model == "tiny"
    with build as s:
        out = s.generate(["x", "y", "z"], 3, 1.0, 4, seed=1)
    assert [len(row) for row in out] == [3, 3, 3]
    assert [row[0].split("|")[0] for row in out] == ["x", "y", "z"]


def test_client_error_statuses(echo_server):
    url, _ = echo_server
    with OpenAICompatSampler(url, "wrong-name") as s, pytest.raises(SamplerHTTPError, match="404.*does not exist"):
        s.generate(["x"], 1, 1.0, 4, seed=0)
    r = httpx.post(f"{url}/v1/completions", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "Invalid JSON" in r.json()["error"]["message"]


def test_sampler_failure_is_a_500_and_client_retries_then_fails():
    server = start_in_thread(FailingSampler(), model_name="m")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        r = httpx.post(f"{url}/v1/completions", json={"prompt": "p"})
        assert r.status_code == 500 and "out of memory" in r.json()["error"]["message"]
        with (
            OpenAICompatSampler(url, "m", max_retries=1, backoff=0.01) as s,
            pytest.raises(SamplerHTTPError, match="HTTP 500") as ei,
        ):
            s.generate(["p"], 1, 1.0, 4, seed=0)
        assert ei.value.status == 500
    finally:
        server.shutdown()
        server.server_close()


def test_build_sampler_rejects_unknown_specs():
    with pytest.raises(ValueError, match=r"(?s)Unknown sampler spec 'nope'.*http://.*vllm:PATH.*world-teacher"):
        build_sampler("nope")
    # a spec that looks like a path names the missing folder instead of listing the spec forms
    with pytest.raises(FileNotFoundError, match=r"nope/nothing: model folder does not exist"):
        build_sampler("nope/nothing")
    with pytest.raises(ValueError, match="vllm:"):
        build_sampler("vllm:")
    with pytest.raises(ValueError, match="ERROR_RATE"):
        build_sampler("world-teacher:lots")


def test_build_sampler_world_teacher():
    teacher = build_sampler("world-teacher:0.3", device="cpu")  # options a backend lacks are ignored
    assert type(teacher).__name__ == "TeacherSampler"
    assert build_sampler("world-teacher").generate is not None


def test_build_sampler_vllm_missing(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="vLLM is not installed"):
        build_sampler("vllm:/models/m")


class RejectingSampler:
    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        raise ValueError("not a compact prompt")


def test_sampler_value_error_is_a_400_not_retried():
    server = start_in_thread(RejectingSampler(), model_name="m")
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with (
            OpenAICompatSampler(url, "m", max_retries=3, backoff=0.01) as s,
            pytest.raises(SamplerHTTPError, match="400.*not a compact prompt"),
        ):
            s.generate(["p"], 1, 1.0, 4, seed=0)
        assert s.stats.requests == 1
    finally:
        server.shutdown()
        server.server_close()
