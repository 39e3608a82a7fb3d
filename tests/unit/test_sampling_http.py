"""OpenAI-compatible HTTP sampler against scripted local servers: n handling, seeds, retries, errors, timeouts."""

from __future__ import annotations

import socket
import time

import pytest

from grm.sampling.openai_http import (
    OpenAICompatSampler,
    SamplerConnectionError,
    SamplerHTTPError,
    SamplerTimeoutError,
    derive_seed,
    list_models,
    normalize_base_url,
)
from tests.helpers.http_stub import StubServer, completion


def echo_n(body: dict):
    """Reply with ``n`` choices naming the prompt, the seed and the sample index."""
    n = body.get("n", 1)
    return 200, completion([f"{body['prompt']}|{body['seed']}|{j}" for j in range(n)]), {}


def test_derive_seed_is_stable_and_spread():
    assert derive_seed(1, 2) == derive_seed(1, 2)
    assert derive_seed(1, 2) != derive_seed(2, 1)
    assert 0 <= derive_seed(123, 456, 7) < 2**31
    assert len({derive_seed(0, i) for i in range(1000)}) == 1000


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://h:8000", "http://h:8000"),
        ("http://h:8000/", "http://h:8000"),
        ("http://h:8000/v1", "http://h:8000"),
        ("https://h/v1/", "https://h"),
    ],
)
def test_normalize_base_url(given, expected):
    assert normalize_base_url(given) == expected


def test_normalize_base_url_rejects_other_schemes():
    with pytest.raises(ValueError, match="http"):
        normalize_base_url("ftp://h")


def test_n_per_request_shapes_order_and_request_fields():
    with StubServer([echo_n]) as srv, OpenAICompatSampler(srv.url + "/v1", "m", api_key="k", concurrency=2) as s:
        out = s.generate(["a", "b", "c"], 3, 0.7, 5, seed=11)
    assert [[t.split("|")[0] for t in row] for row in out] == [["a"] * 3, ["b"] * 3, ["c"] * 3]
    assert [[t.split("|")[2] for t in row] for row in out] == [["0", "1", "2"]] * 3
    assert len(srv.requests) == 3
    bodies = sorted((r["body"] for r in srv.requests), key=lambda b: b["prompt"])
    assert all(r["path"] == "/v1/completions" for r in srv.requests)
    assert bodies[0] == {
        "model": "m",
        "prompt": "a",
        "max_tokens": 5,
        "temperature": 0.7,
        "seed": derive_seed(11, 0),
        "n": 3,
    }
    assert bodies[1]["seed"] == derive_seed(11, 1)


def test_same_seed_same_requests():
    with StubServer([echo_n]) as srv, OpenAICompatSampler(srv.url, "m") as s:
        assert s.generate(["a", "b"], 2, 1.0, 4, seed=3) == s.generate(["a", "b"], 2, 1.0, 4, seed=3)
        assert s.generate(["a"], 2, 1.0, 4, seed=3) != s.generate(["a"], 2, 1.0, 4, seed=4)


def test_fewer_choices_than_n_requests_the_rest_with_fresh_seeds():
    def one_choice(body):  # like `transformers serve`, which ignores n
        return 200, completion([f"s{body['seed']}"]), {}

    with StubServer([one_choice]) as srv, OpenAICompatSampler(srv.url, "m") as s:
        out = s.generate(["p"], 4, 1.0, 4, seed=0)
    assert len(out[0]) == 4
    assert len(set(out[0])) == 4  # four different seeds, not the same sample four times
    assert [r["body"].get("n", 1) for r in srv.requests] == [4, 3, 2, 1]


def test_supports_n_false_sends_one_sample_per_request():
    with StubServer([echo_n]) as srv, OpenAICompatSampler(srv.url, "m", supports_n=False, concurrency=1) as s:
        out = s.generate(["p"], 3, 1.0, 4, seed=0)
    assert len(out[0]) == 3 and len(set(out[0])) == 3
    assert all("n" not in r["body"] for r in srv.requests)
    assert len(srv.requests) == 3


def test_greedy_sends_one_request_and_copies():
    with StubServer([echo_n]) as srv, OpenAICompatSampler(srv.url, "m") as s:
        out = s.generate(["p"], 5, 0.0, 4, seed=0)
    assert len(srv.requests) == 1 and srv.requests[0]["body"]["temperature"] == 0.0
    assert out == [[out[0][0]] * 5]


def test_retries_503_twice_then_succeeds():
    replies = [(503, {"error": {"message": "busy"}}, {}), (503, {"error": {"message": "busy"}}, {}), echo_n]
    with StubServer(replies) as srv, OpenAICompatSampler(srv.url, "m", backoff=0.01) as s:
        out = s.generate(["p"], 2, 1.0, 4, seed=0)
    assert len(out[0]) == 2
    assert len(srv.requests) == 3
    assert s.stats.retries == 2 and s.stats.requests == 3


def test_429_honours_retry_after():
    replies = [(429, {"error": "slow down"}, {"Retry-After": "0.05"}), echo_n]
    with StubServer(replies) as srv, OpenAICompatSampler(srv.url, "m", backoff=5.0) as s:
        start = time.perf_counter()
        s.generate(["p"], 1, 1.0, 4, seed=0)
    assert time.perf_counter() - start < 2.0  # Retry-After (0.05 s) wins over backoff (5 s)


def test_persistent_5xx_raises_with_url_and_status():
    match = r"/v1/completions failed after 3 attempt\(s\): HTTP 500: boom"
    with (
        StubServer([(500, {"error": {"message": "boom"}}, {})]) as srv,
        OpenAICompatSampler(srv.url, "m", max_retries=2, backoff=0.01) as s,
        pytest.raises(SamplerHTTPError, match=match) as ei,
    ):
        s.generate(["p"], 1, 1.0, 4, seed=0)
    assert ei.value.status == 500 and ei.value.url == srv.url + "/v1/completions"
    assert len(srv.requests) == 3


def test_4xx_is_not_retried_and_names_url_status_message():
    with (
        StubServer([(404, {"error": {"message": "The model `x` does not exist."}}, {})]) as srv,
        OpenAICompatSampler(srv.url, "x", backoff=0.01) as s,
        pytest.raises(SamplerHTTPError) as ei,
    ):
        s.generate(["p"], 1, 1.0, 4, seed=0)
    msg = str(ei.value)
    assert srv.url in msg and "404" in msg and "does not exist" in msg
    assert len(srv.requests) == 1


def test_timeout_raises_after_retries():
    with (
        StubServer([echo_n], delay_s=1.0) as srv,
        OpenAICompatSampler(srv.url, "m", timeout=0.1, max_retries=1, backoff=0.01) as s,
        pytest.raises(SamplerTimeoutError, match="timed out after 0.1s.*raise timeout="),
    ):
        s.generate(["p"], 1, 1.0, 4, seed=0)
    assert len(srv.requests) == 2


def test_connection_refused_raises_connection_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    with (
        OpenAICompatSampler(f"http://127.0.0.1:{port}", "m", max_retries=1, backoff=0.01) as s,
        pytest.raises(SamplerConnectionError, match="server is running"),
    ):
        s.generate(["p"], 1, 1.0, 4, seed=0)


def test_malformed_body_is_an_error():
    with (
        StubServer([(200, {"nope": 1}, {})]) as srv,
        OpenAICompatSampler(srv.url, "m") as s,
        pytest.raises(SamplerHTTPError, match="unexpected body"),
    ):
        s.generate(["p"], 1, 1.0, 4, seed=0)


def test_argument_validation():
    s = OpenAICompatSampler("http://127.0.0.1:1", "m")
    with pytest.raises(TypeError, match="sequence of strings"):
        s.generate("p", 1, 1.0, 4, 0)
    with pytest.raises(ValueError, match="n must be"):
        s.generate(["p"], 0, 1.0, 4, 0)
    with pytest.raises(ValueError, match="temperature"):
        s.generate(["p"], 1, -1.0, 4, 0)
    assert s.generate([], 2, 1.0, 4, 0) == []
    s.close()


def test_list_models():
    with StubServer([(200, {"object": "list", "data": [{"id": "a"}, {"id": "b"}]}, {})]) as srv:
        assert list_models(srv.url + "/v1/") == ["a", "b"]
        assert srv.requests[0]["path"] == "/v1/models"
