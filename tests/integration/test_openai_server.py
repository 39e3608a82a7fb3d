"""OpenAICompatSampler against real servers on 127.0.0.1: grm.serving backed by HFSampler (default run) and,
when the optional ``openai`` package is installed, ``transformers serve`` (slow)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from grm.sampling.openai_http import OpenAICompatSampler

pytestmark = pytest.mark.slow  # serves and samples the tiny model

PROMPTS = ["the query is good", "a", "one two three four five six seven eight nine ten the best response"]


@pytest.fixture(scope="module")
def hf_server(tiny_model_dir):
    from grm.sampling.hf import HFSampler
    from grm.serving import start_in_thread

    local = HFSampler(tiny_model_dir, progress=False, num_threads=1)
    server = start_in_thread(local, model_name="tiny")
    yield f"http://127.0.0.1:{server.server_address[1]}", local
    server.shutdown()
    server.server_close()


def test_greedy_over_http_equals_local(hf_server):
    url, local = hf_server
    with OpenAICompatSampler(url, "tiny", concurrency=2) as client:
        remote = client.generate(PROMPTS, 2, 0.0, 10, seed=0)
    assert remote == local.generate(PROMPTS, 2, 0.0, 10, seed=0)


def test_sampled_over_http_is_seeded(hf_server):
    url, _ = hf_server
    with OpenAICompatSampler(url, "tiny", concurrency=3) as client:
        a = client.generate(PROMPTS, 3, 1.0, 6, seed=5)
        b = client.generate(PROMPTS, 3, 1.0, 6, seed=5)
    assert a == b and [len(r) for r in a] == [3, 3, 3]
    assert client.stats.requests == 2 * len(PROMPTS)  # n samples in one request per prompt


def test_raw_request_usage_and_finish_reason(hf_server):
    url, _ = hf_server
    body = {"model": "tiny", "prompt": ["a", "the query"], "n": 2, "temperature": 1.0, "max_tokens": 4, "seed": 1}
    data = httpx.post(f"{url}/v1/completions", json=body, timeout=30).json()
    assert [c["index"] for c in data["choices"]] == [0, 1, 2, 3]
    assert all(c["finish_reason"] in {"stop", "length"} for c in data["choices"])
    assert data["usage"]["prompt_tokens"] == 2 + 3  # "<s> a" and "<s> the query", each counted once
    assert data["usage"]["total_tokens"] == data["usage"]["prompt_tokens"] + data["usage"]["completion_tokens"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("openai") is None, reason="transformers serve needs transformers[serving]"
)
def test_transformers_serve_with_fewer_choices(tiny_model_dir, tmp_path):
    """``transformers serve`` ignores ``n``: the client requests the missing samples itself."""
    model_dir = Path(tmp_path) / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    gen_cfg = model_dir / "generation_config.json"
    cfg = json.loads(gen_cfg.read_text())
    cfg["do_sample"] = True  # otherwise transformers serve decodes greedily whatever the temperature
    gen_cfg.write_text(json.dumps(cfg))
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or "transformers"
    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [exe, "serve", str(model_dir), "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            pytest.fail("transformers serve did not come up in 120 s")
        with OpenAICompatSampler(url, str(model_dir), timeout=60, concurrency=1) as client:
            out = client.generate(PROMPTS[:2], 3, 1.0, 4, seed=0)
        assert [len(r) for r in out] == [3, 3]
        assert client.stats.requests == 6  # one choice per request
    finally:
        proc.terminate()
        proc.wait(timeout=30)
