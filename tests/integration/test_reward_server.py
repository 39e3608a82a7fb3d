"""grm serve (FastAPI on uvicorn) against a live server on 127.0.0.1: the world teacher for most tests (fast, no
model), the tiny model for a few (slow). Each test's server is started and stopped by its fixture."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import httpx
import pytest

from grm.sampling import build_sampler
from grm.serving.access import check_bind
from grm.serving.app import AppConfig, ScoringDefaults, ServerLimits
from grm.serving.engine import EngineSettings
from grm.serving.scoring import ScoreSettings, make_item, score_alone
from grm.serving.server import ConnectionLimits, start_in_thread
from grm.world.generator import WorldConfig, generate_world
from tests.helpers.timed_sampler import SlowSampler


@pytest.fixture(scope="module")
def world_items():
    return [it for it in generate_world(WorldConfig())["test"] if it.n == 2][:48]  # the tests read two scores


def _config(**engine) -> AppConfig:
    return AppConfig(
        model_name="teacher",
        template="compact",
        defaults=ScoringDefaults(k=4, temperature=1.0),
        limits=ServerLimits(max_items=32, max_responses=8, max_k=16, max_text_chars=400, body_timeout_s=0.5),
        engine=EngineSettings(**{"max_wait_ms": 5.0, **engine}),
    )


@pytest.fixture(scope="module")
def teacher_server():
    server = start_in_thread(
        build_sampler("world-teacher"), config=_config(), connection=ConnectionLimits(header_timeout_s=0.5)
    )
    yield server
    server.shutdown()


def _body(item, **extra) -> dict:
    return {"query": item.query, "responses": list(item.responses), **extra}


def test_score_one_item_with_samples(teacher_server, world_items):
    item = world_items[0]
    r = httpx.post(f"{teacher_server.url}/v1/score", json=_body(item, id="a", k=6, seed=1, return_samples=True))
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["id"] == "a" and data["k"] == 6 and data["method"] == "voting" and data["n"] == 2
    parsed = [s["scores"] for s in data["samples"] if s["scores"] is not None]
    assert data["n_parsed"] == len(parsed) == data["n_voted"]
    assert data["votes"] == [sum(s[i] for s in parsed) for i in range(2)]
    assert data["scores"] == [v / len(parsed) for v in data["votes"]]
    assert data["best"] == max(range(2), key=lambda i: data["votes"][i]) or data["tied"]
    sample = data["samples"][0]
    assert sorted(sample["shown_order"]) == [0, 1] and sample["principles"] and "answer" in sample["critique"]
    assert data["parse_failures"] == {"count": 6 - len(parsed), "reasons": data["parse_failures"]["reasons"]}


def test_batch_echoes_ids_and_scores_like_alone(teacher_server, world_items):
    items = world_items[:5]
    body = {"items": [{"id": f"x{i}", **_body(it)} for i, it in enumerate(items)], "k": 4, "seed": 7}
    data = httpx.post(f"{teacher_server.url}/v1/score", json=body).json()
    assert [r["id"] for r in data["results"]] == ["x0", "x1", "x2", "x3", "x4"]
    settings = ScoreSettings(4, None, 1.0, 7, 512)
    alone = score_alone(
        build_sampler("world-teacher"),
        [make_item(it.query, list(it.responses)) for it in items],
        [None] * 5,
        settings,
        "compact",
    )
    assert [r["votes"] for r in data["results"]] == [a["votes"] for a in alone]


def test_concurrent_requests_get_their_own_results(world_items):
    """32 concurrent requests (different seeds and k), merged into shared sampler calls, each equal to the same
    request scored alone (the teacher's output depends only on seed, prompt and sample index)."""
    sampler = SlowSampler(0.0)
    server = start_in_thread(sampler, config=_config(cache_size=0, max_wait_ms=30.0))
    reqs = [
        {"id": f"c{i}", **_body(it, k=2 + i % 3, seed=i % 2, temperature=1.0)} for i, it in enumerate(world_items[:32])
    ]

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/v1/score", json=b) for b in reqs))

    try:
        responses = asyncio.run(run())
    finally:
        server.shutdown()
    teacher = build_sampler("world-teacher")
    for req, resp in zip(reqs, responses, strict=True):
        assert resp.status_code == 200
        got = resp.json()
        settings = ScoreSettings(req["k"], None, 1.0, req["seed"], 512)
        (alone,) = score_alone(teacher, [make_item(req["query"], req["responses"])], [None], settings, "compact")
        assert got["id"] == req["id"] and got["votes"] == alone["votes"] and got["best"] == alone["best"]
    assert max(sampler.calls) > 8  # requests were merged: one call held more than one request's samples


def test_get_reward_is_openrlhf_shaped(teacher_server, world_items):
    items = world_items[:3]
    prompts = [f"{it.query}" for it in items for _ in it.responses]
    queries = [f"{it.query} {r}" for it in items for r in it.responses]
    r = httpx.post(f"{teacher_server.url}/get_reward", json={"query": queries, "prompts": prompts, "labels": [""] * 6})
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == {"rewards", "scores", "extra_logs"}
    assert len(data["rewards"]) == len(data["scores"]) == 6
    assert all(0 <= s <= 1 for s in data["scores"])
    assert data["rewards"] == [pytest.approx(2 * s - 1) for s in data["scores"]]
    assert all(len(v) == 6 for v in data["extra_logs"].values())
    raw = data["extra_logs"]["grm_raw_score"]
    assert data["scores"] == [pytest.approx((x - 1) / 9) for x in raw]
    # the pointwise judgement of one sample equals /v1/score on that single response
    one = httpx.post(f"{teacher_server.url}/v1/score", json=_body(items[0], responses=[items[0].responses[0]])).json()
    assert one["scores"][0] == pytest.approx(raw[0])


def test_per_sample_slime_form(teacher_server, world_items):
    item = world_items[1]
    r = httpx.post(
        f"{teacher_server.url}/v1/score", json={"prompt": item.query, "response": item.responses[0], "label": "x"}
    )
    data = r.json()
    assert r.status_code == 200 and data["group"]["mode"] == "pointwise"
    assert data["reward"] == pytest.approx((data["score"] - 1) / 9)


def _raw(port: int, payload: bytes, wait: float = 3.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(payload)
        chunks = []
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            pass
    return b"".join(chunks)


def _head(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


MALFORMED = [
    # (path, body, field named in error.param)
    ("/v1/score", b"{not json", "body"),
    ("/v1/score", b"", "body"),
    ("/v1/score", b"[1, 2]", "body"),
    ("/v1/score", b"\xff\xfe\x00", "body"),
    ("/v1/score", b"[" * 100_000, "body"),
    ("/v1/score", b'{"query": "q"}', "responses"),
    ("/v1/score", b'{"responses": ["a"]}', "query"),
    ("/v1/score", b'{"query": 3, "responses": ["a"]}', "query"),
    ("/v1/score", b'{"query": "q", "responses": []}', "responses"),
    ("/v1/score", b'{"query": "q", "responses": "a"}', "responses"),
    ("/v1/score", b'{"query": "q", "responses": [1]}', "responses[0]"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "k": 0}', "k"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "k": "3"}', "k"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "k": true}', "k"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "k": 99}', "k"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "k_meta": 1}', "k_meta"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "temperature": NaN}', "temperature"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "temperature": Infinity}', "temperature"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "temperature": -1}', "temperature"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "temperature": 50}', "temperature"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "seed": -1}', "seed"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "max_new_tokens": 100000}', "max_new_tokens"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "return_samples": "yes"}', "return_samples"),
    ("/v1/score", b'{"query": "q", "responses": ["a"], "bogus": 1}', "bogus"),
    ("/v1/score", json.dumps({"query": "q", "responses": ["a"] * 9}).encode(), "responses"),
    ("/v1/score", json.dumps({"items": []}).encode(), "items"),
    ("/v1/score", json.dumps({"items": [{"query": "q", "responses": ["a"]}] * 33}).encode(), "items"),
    ("/v1/score", json.dumps({"items": [{"query": "q"}]}).encode(), "items[0].responses"),
    ("/v1/score", json.dumps({"items": [{"query": "q", "responses": ["a"]}], "query": "q"}).encode(), "items"),
    ("/v1/score", json.dumps({"query": [{"role": "bot", "content": "x"}], "responses": ["a"]}).encode(), "query"),
    ("/v1/score", json.dumps({"query": [], "responses": ["a"]}).encode(), "query"),
    ("/v1/score", json.dumps({"prompt": "q"}).encode(), "response"),
    ("/v1/score", json.dumps({"prompt": "q", "response": "a", "group_size": 1}).encode(), "group_size"),
    ("/v1/score", json.dumps({"query": "not a world query", "responses": ["a"]}).encode(), "query"),
    ("/get_reward", json.dumps({"query": ["pa"]}).encode(), "prompts"),
    ("/get_reward", json.dumps({"query": ["pa"], "prompts": ["x"]}).encode(), "query[0]"),
    ("/get_reward", json.dumps({"query": ["pa", "pb"], "prompts": ["p"]}).encode(), "prompts"),
    ("/get_reward", json.dumps({"query": []}).encode(), "query"),
    ("/v1/completions", json.dumps({"prompt": "p", "temperature": float("nan")}).encode(), "temperature"),
    ("/v1/completions", json.dumps({"prompt": 3}).encode(), "prompt"),
]


def test_malformed_requests_get_a_4xx_naming_the_field(teacher_server, world_items):
    assert len(MALFORMED) >= 30
    client = httpx.Client(base_url=teacher_server.url)
    for path, body, param in MALFORMED:
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500, (path, body[:60], r.status_code, r.text)
        err = r.json()["error"]
        assert err["param"] == param, (body[:60], err)
        assert err["message"]
    good = httpx.post(f"{teacher_server.url}/v1/score", json=_body(world_items[0]))
    assert good.status_code == 200 and httpx.get(f"{teacher_server.url}/health").json()["status"] == "ok"


def test_transport_level_abuse_is_answered(teacher_server, world_items):
    port = teacher_server.port
    ok_body = json.dumps(_body(world_items[0])).encode()
    # Content-Length that is negative, not a number, or over the limit
    assert _raw(port, _head("/v1/score", b"", "").replace(b"Content-Length: 0", b"Content-Length: -1")).startswith(
        b"HTTP/1.1 400"
    )
    assert _raw(port, _head("/v1/score", b"", "").replace(b"Content-Length: 0", b"Content-Length: abc")).startswith(
        b"HTTP/1.1 400"
    )
    huge_head = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert _raw(port, huge_head).startswith((b"HTTP/1.1 431", b"HTTP/1.1 400"))  # at once: 431; trickled: h11's 400
    big = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n"
    assert _raw(port, big).startswith(b"HTTP/1.1 413")
    # a chunked body is read, valid or too large
    chunk = hex(len(ok_body))[2:].encode()
    chunked = b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    resp = _raw(port, chunked + b"Connection: close\r\n\r\n" + chunk + b"\r\n" + ok_body + b"\r\n0\r\n\r\n")
    assert resp.startswith(b"HTTP/1.1 200"), resp[:200]
    piece = b"x" * 65536
    huge = chunked + b"\r\n" + b"".join(hex(len(piece))[2:].encode() + b"\r\n" + piece + b"\r\n" for _ in range(70))
    assert _raw(port, huge + b"0\r\n\r\n").startswith(b"HTTP/1.1 413")
    # a body that stalls gets 408 after the body timeout (0.5 s here)
    t0 = time.monotonic()
    stalled = _raw(port, b"POST /v1/score HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", wait=5)
    assert stalled.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3
    assert httpx.get(f"{teacher_server.url}/health").status_code == 200


def test_stalled_headers_are_dropped(teacher_server):
    """50 clients that send half a request head and stall are disconnected after the header timeout."""
    socks = [socket.create_connection(("127.0.0.1", teacher_server.port)) for _ in range(50)]
    try:
        for s in socks:
            s.sendall(b"POST /v1/score HTTP/1.1\r\nHost: x\r\n")
            s.settimeout(3)
        t0 = time.monotonic()
        closed = sum(1 for s in socks if s.recv(10) == b"")
        assert closed == 50 and time.monotonic() - t0 < 3
        idle = socket.create_connection(("127.0.0.1", teacher_server.port))  # no byte at all: dropped as well
        idle.settimeout(3)
        assert idle.recv(10) == b""
        idle.close()
    finally:
        for s in socks:
            s.close()
    assert httpx.get(f"{teacher_server.url}/health").status_code == 200


def test_metrics_and_models_and_docs(teacher_server, world_items):
    httpx.post(f"{teacher_server.url}/v1/score", json=_body(world_items[2]))
    text = httpx.get(f"{teacher_server.url}/metrics").text
    for name in (
        'grm_requests_total{route="/v1/score",status="200"}',
        "grm_request_seconds_bucket",
        "grm_batch_samples_count",
        "grm_queue_samples",
        "grm_parse_failure_rate",
    ):
        assert name in text
    models = httpx.get(f"{teacher_server.url}/v1/models").json()
    assert models["data"][0]["id"] == "teacher" and models["data"][0]["meta_rm"] is False
    assert httpx.get(f"{teacher_server.url}/docs").status_code == 200
    schema = httpx.get(f"{teacher_server.url}/openapi.json").json()
    assert {"/v1/score", "/get_reward", "/health", "/metrics"} <= set(schema["paths"])


def test_identical_requests_come_from_the_cache(teacher_server, world_items):
    body = _body(world_items[3], seed=11)
    a = httpx.post(f"{teacher_server.url}/v1/score", json={**body, "id": "first"}).json()
    hits = teacher_server.app.api.state.metrics.cache_hits
    b = httpx.post(f"{teacher_server.url}/v1/score", json={**body, "id": "second"}).json()
    assert teacher_server.app.api.state.metrics.cache_hits == hits + 1
    assert b["id"] == "second" and {**b, "id": None} == {**a, "id": None}


def test_api_key(world_items):
    with pytest.raises(ValueError, match="--api-key"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "k")
    config = _config()
    config.api_key = "s3cret"
    server = start_in_thread(build_sampler("world-teacher"), config=config)
    try:
        url = server.url
        assert httpx.get(f"{url}/health").status_code == 200
        r = httpx.post(f"{url}/v1/score", json=_body(world_items[0]))
        assert r.status_code == 401 and r.json()["error"]["param"] == "authorization"
        assert httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = httpx.post(f"{url}/v1/score", json=_body(world_items[0]), headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
    finally:
        server.shutdown()


def test_back_pressure_queues_within_the_deadline_then_429_with_retry_after(world_items):
    """Past ``max_pending_samples`` a request waits for room instead of being refused (clients such as OpenRLHF retry
    on a fixed schedule and ignore Retry-After); only past its deadline is it refused, with Retry-After, and the
    refusal is counted in /metrics."""

    async def burst(url: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/v1/score", json=_body(it, k=8)) for it in world_items[:12]))

    server = start_in_thread(SlowSampler(0.005), config=_config(max_pending_samples=40, max_wait_ms=0.0))
    try:
        responses = asyncio.run(burst(server.url))
        assert [r.status_code for r in responses] == [200] * 12  # 96 generations through a 40-generation queue
    finally:
        server.shutdown()
    # two 8-generation requests fit the queue, each takes ~0.16 s: the ones still queued at 0.5 s get 429
    config = _config(max_pending_samples=16, max_batch_size=8, max_wait_ms=0.0, request_timeout_s=0.5)
    server = start_in_thread(SlowSampler(0.02), config=config)
    try:
        responses = asyncio.run(burst(server.url))
        codes = [r.status_code for r in responses]
        assert 200 in codes and 429 in codes and set(codes) <= {200, 429, 504}, codes
        rejected = next(r for r in responses if r.status_code == 429)
        assert int(rejected.headers["retry-after"]) >= 1 and "busy" in rejected.json()["error"]["message"]
        metrics = httpx.get(f"{server.url}/metrics").text
        assert f'grm_rejected_total{{status="429"}} {codes.count(429)}' in metrics
        if 504 in codes:  # admitted but not finished by the deadline
            assert f'grm_rejected_total{{status="504"}} {codes.count(504)}' in metrics
    finally:
        server.shutdown()


def test_small_request_is_not_stuck_behind_a_huge_one(world_items):
    """A 32-item x k=16 request (512 generations, ~2.5 s here) is in flight when a 1-item request arrives; the
    round-robin scheduler serves the small one within a cycle or two instead of after the whole big one."""
    server = start_in_thread(SlowSampler(0.005), config=_config(max_batch_size=32, max_wait_ms=0.0))
    big = {"items": [_body(it) for it in world_items[:32]], "k": 16}
    done: dict[str, float] = {}

    def post(name, body):
        httpx.post(f"{server.url}/v1/score", json=body, timeout=60).raise_for_status()
        done[name] = time.monotonic()

    try:
        t0 = time.monotonic()
        thread = threading.Thread(target=post, args=("big", big))
        thread.start()
        time.sleep(0.3)
        post("small", _body(world_items[40], k=4))
        thread.join()
    finally:
        server.shutdown()
    assert done["small"] < done["big"]
    assert done["small"] - t0 < 0.3 + 1.0 and done["big"] - t0 > 2.0


def test_meta_rm_voting(world_items):
    """MetaRM@k keeps the k_meta samples the meta RM rates highest (here a fake meta RM that prefers samples whose
    analysis has no 'wrong' verdict on Response 1)."""

    def meta(texts: list[str]) -> list[float]:
        return [0.9 if "R1" in t and "wrong" not in t.split("R2")[0].split("R1")[-1] else 0.1 for t in texts]

    server = start_in_thread(build_sampler("world-teacher"), config=_config(), meta=meta)
    try:
        body = _body(world_items[0], k=8, k_meta=2, return_samples=True)
        data = httpx.post(f"{server.url}/v1/score", json=body).json()
        assert data["method"] == "metarm" and data["n_voted"] == 2
        voted = [s for s in data["samples"] if s["voted"]]
        assert len(voted) == 2 and all(s["meta_score"] is not None for s in voted)
        assert data["votes"] == [sum(s["scores"][i] for s in voted) for i in range(2)]
        assert httpx.get(f"{server.url}/v1/models").json()["data"][0]["meta_rm"] is True
        too_many = httpx.post(f"{server.url}/v1/score", json=_body(world_items[0], k=2, k_meta=3))
        assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "k_meta"
    finally:
        server.shutdown()


def test_group_mode_assembles_groups_and_falls_back(world_items):
    server = start_in_thread(build_sampler("world-teacher"), config=_config(group_window_ms=300.0))
    item = world_items[5]
    try:

        async def run(bodies):
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                return [r.json() for r in await asyncio.gather(*(client.post("/v1/score", json=b) for b in bodies))]

        grouped = asyncio.run(
            run(
                [
                    {"prompt": item.query, "response": r, "id": f"s{i}", "group_id": "g1", "group_size": 2}
                    for i, r in enumerate(item.responses)
                ]
            )
        )
        assert [g["group"]["mode"] for g in grouped] == ["group", "group"]
        assert [g["id"] for g in grouped] == ["s0", "s1"]
        together = httpx.post(f"{server.url}/v1/score", json=_body(item)).json()
        assert [g["score"] for g in grouped] == together["scores"]
        # same prompt, no group id: the window groups them
        same = asyncio.run(run([{"prompt": item.query, "response": r, "seed": 3} for r in item.responses]))
        assert [g["group"]["mode"] for g in same] == ["group", "group"]
        # a group that never fills falls back to pointwise after the window
        t0 = time.monotonic()
        (alone,) = asyncio.run(
            run([{"prompt": item.query, "response": item.responses[0], "group_id": "g2", "group_size": 2}])
        )
        assert alone["group"]["mode"] == "pointwise" and time.monotonic() - t0 >= 0.3
    finally:
        server.shutdown()


@pytest.mark.slow
def test_tiny_model_server(tiny_model_dir):
    """The tiny random model behind /v1/score and /get_reward: every field present, failures counted (a random
    model rarely writes a valid box), and /v1/completions still serves OpenAICompatSampler."""
    from grm.sampling.hf import HFSampler
    from grm.sampling.openai_http import OpenAICompatSampler

    sampler = HFSampler(tiny_model_dir, progress=False, num_threads=1)
    config = AppConfig(model_name="tiny", template="compact", defaults=ScoringDefaults(k=2, max_new_tokens=8))
    server = start_in_thread(sampler, config=config)
    try:
        data = httpx.post(
            f"{server.url}/v1/score", json={"query": "the query", "responses": ["a", "the best"]}, timeout=60
        ).json()
        assert data["k"] == 2 and data["n_parsed"] + data["parse_failures"]["count"] == 2
        reward = httpx.post(
            f"{server.url}/get_reward", json={"query": ["the query a"], "prompts": ["the query"]}, timeout=60
        ).json()
        assert len(reward["rewards"]) == 1 and 0 <= reward["scores"][0] <= 1
        with OpenAICompatSampler(server.url, "tiny") as client:
            assert len(client.generate(["a"], 2, 1.0, 3, seed=0)[0]) == 2
    finally:
        server.shutdown()


def test_grm_serve_command(tmp_path):
    """`grm serve` in a subprocess: refuses a public bind without a key, serves /v1/score, stops on SIGTERM."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("GRM_API_KEY", None)
    cli = [sys.executable, "-m", "grm_cli.app", "serve", "--model", "world-teacher", "--template", "compact"]
    refused = subprocess.run([*cli, "--host", "0.0.0.0"], env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "--api-key" in refused.stdout + refused.stderr
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([*cli, "--port", str(port), "--k", "3"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "grm serve did not come up"
                time.sleep(0.2)
        body = {"query": "3 + 18 ?", "responses": ["maybe 31", "21"]}
        data = httpx.post(f"http://127.0.0.1:{port}/v1/score", json=body, timeout=10).json()
        assert data["k"] == 3 and data["best"] == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_bad_request_does_not_fail_good_ones_batched_with_it(world_items):
    """A request the sampler rejects shares a cycle with good ones: it alone gets its 400, they get their results."""
    server = start_in_thread(SlowSampler(0.0), config=_config(cache_size=0, max_wait_ms=50.0))
    bodies = [_body(it) for it in world_items[:6]]
    bodies.insert(3, {"query": "not a world query", "responses": ["a", "b"]})

    async def run():
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/v1/score", json=b) for b in bodies))

    try:
        codes = [r.status_code for r in asyncio.run(run())]
    finally:
        server.shutdown()
    assert codes == [200, 200, 200, 400, 200, 200, 200]


def test_request_timeout_is_a_504_and_the_server_stays_up(world_items):
    config = _config(request_timeout_s=0.3, max_wait_ms=0.0, max_batch_size=4)
    sampler = SlowSampler(0.05)
    server = start_in_thread(sampler, config=config)
    try:
        r = httpx.post(f"{server.url}/v1/score", json={"items": [_body(it) for it in world_items[:8]], "k": 4})
        assert r.status_code == 504 and "timeout" in r.json()["error"]["message"]
        time.sleep(0.3)
        calls = len(sampler.calls)
        time.sleep(0.3)
        assert len(sampler.calls) == calls  # the abandoned request's remaining work was dropped
        assert httpx.post(f"{server.url}/v1/score", json=_body(world_items[0], k=1)).status_code == 200
    finally:
        server.shutdown()


def test_get_reward_group_mode_judges_a_prompts_samples_together(world_items):
    server = start_in_thread(build_sampler("world-teacher"), config=_config(group_window_ms=100.0))
    item = world_items[6]
    try:
        body = {"query": [f"{item.query} {r}" for r in item.responses], "prompts": [item.query] * item.n}
        data = httpx.post(f"{server.url}/get_reward", json=body).json()
        assert data["extra_logs"]["grm_grouped"] == [1.0] * item.n
        together = httpx.post(f"{server.url}/v1/score", json=_body(item)).json()
        assert data["scores"] == [pytest.approx((s - 1) / 9) for s in together["scores"]]
    finally:
        server.shutdown()
