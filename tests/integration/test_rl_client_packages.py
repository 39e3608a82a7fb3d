"""grm serve driven by the RL trainers' own packages, installed from PyPI (``requirements-rl-clients.txt``, with
``--no-deps`` into ``.rl-clients/`` by ``make setup``, or the folder ``GRM_RL_CLIENTS`` names: their GPU stacks are
not needed for the reward client), against servers started here on 127.0.0.1:

- OpenRLHF 0.11.2: ``openrlhf.utils.agent.SingleTurnAgentExecutor``, the code that asks the remote reward for every
  rollout sample (``--reward.remote_url``). Its vLLM engine is replaced by a scripted policy that answers each
  prompt with a fixed response plus ``</s>``; everything after generation (prompt truncation, ``decode`` with
  ``skip_special_tokens=False``, the POST, 5 tries 1 s apart, ``None`` on failure) is OpenRLHF's own.
- verl 0.9.1: ``verl.trainer.ppo.reward.load_reward_manager`` with ``custom_reward_function`` pointing at
  ``grm/integrations/verl.py``, and the reward loop's ``naive`` manager's ``run_single`` on a ``DataProto`` of token
  ids (verl decodes the response itself).

slime is not on PyPI (the name ``slime`` there is an unrelated 2020 package, "Simple linear mixed effects model"),
so its ``remote_rm`` stays reproduced in ``tests/helpers/rl_clients.py`` (``tests/integration/test_rl_clients.py``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from grm.sampling import build_sampler
from grm.serving.server import start_in_thread
from grm.world.generator import WorldConfig, generate_world
from tests.helpers.byte_tokenizer import build_byte_tokenizer
from tests.helpers.timed_sampler import SlowSampler
from tests.integration.test_rl_clients import KEY, _config

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = Path(os.environ.get("GRM_RL_CLIENTS") or ROOT / ".rl-clients")
INSTALL = "pip install --no-deps --target .rl-clients -r requirements-rl-clients.txt (or make setup)"
if CLIENTS.is_dir() and str(CLIENTS) not in sys.path:
    sys.path.append(str(CLIENTS))  # last: the venv's packages and this repository's `tests` stay first
agent = pytest.importorskip("openrlhf.utils.agent", reason=f"OpenRLHF not installed: {INSTALL}")
VERL_ADAPTER = ROOT / "src" / "grm" / "integrations" / "verl.py"


@pytest.fixture(scope="module")
def world_items():
    return [it for it in generate_world(WorldConfig())["test"] if it.n == 2][:32]


@pytest.fixture(scope="module")
def tokenizer():
    return build_byte_tokenizer()


@pytest.fixture(scope="module")
def keyed_server():
    running = start_in_thread(build_sampler("world-teacher"), config=_config(api_key=KEY))
    yield running
    running.shutdown()


class ScriptedPolicy:
    """Stands in for OpenRLHF's vLLM engine: answers with ``response`` and the end-of-sequence token."""

    def __init__(self, tokenizer, response: str) -> None:
        self.ids = tokenizer(text=f" {response}", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]

    async def generate(self, prompt_token_ids, sampling_params, multi_modal_data=None):
        out = SimpleNamespace(token_ids=list(self.ids), finish_reason="stop", logprobs=None)
        return SimpleNamespace(outputs=[out])


def _openrlhf_rollout(url: str, tokenizer, samples: list[tuple[str, str]], max_length: int = 8192) -> list[dict]:
    """One OpenRLHF executor runs every (prompt, response) sample concurrently, as its rollout workers do."""
    executor = agent.SingleTurnAgentExecutor(url)
    params = SimpleNamespace(max_tokens=256, logprobs=None)

    async def run() -> list[dict]:
        return await asyncio.gather(
            *(executor.execute(p, "", params, max_length, tokenizer, ScriptedPolicy(tokenizer, r)) for p, r in samples)
        )

    return asyncio.run(run())


def _clean_rewards(url: str, samples: list[tuple[str, str]]) -> list[float]:
    """The reward of each sample sent alone, without an end-of-sequence token (one request each, as OpenRLHF)."""
    out = []
    for p, r in samples:
        body = {"query": [f"{p} {r}"], "prompts": [p]}
        answer = httpx.post(f"{url}/key/{KEY}/get_reward", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        out += answer.json()["rewards"]
    return out


def test_openrlhf_executor_key_in_url_eos_stripped_concurrent_rollout(keyed_server, world_items, tokenizer):
    samples = [(it.query, r) for it in world_items[:8] for r in it.responses]  # 16 samples, sent concurrently
    outputs = _openrlhf_rollout(f"{keyed_server.url}/key/{KEY}/get_reward", tokenizer, samples)
    # one query per POST: "rewards" is a list of one, which OpenRLHF turns into a [1, 1] tensor and concatenates
    assert [o["reward"] for o in outputs] == [[r] for r in _clean_rewards(keyed_server.url, samples)]
    assert all(o["extra_logs"]["grm_stop_stripped"] == [1.0] for o in outputs)  # "... 42</s>" judged as "... 42"
    assert all(o["extra_logs"]["grm_split"] == [0.0] for o in outputs)
    assert all(0.0 <= o["scores"][0] <= 1.0 for o in outputs)


def test_openrlhf_executor_left_truncated_prompt_is_split(keyed_server, world_items, tokenizer):
    """OpenRLHF keeps the *last* ``max_length - max_tokens`` prompt tokens of a long prompt, so its query starts in
    the middle of ``prompts[i]``: the reward must still come back, judged against the whole prompt."""
    samples = [(it.query, it.responses[0]) for it in world_items if len(it.query) > 36][:4]
    assert len(samples) == 4  # the byte tokenizer: one token per byte, so the query keeps the prompt's last 24 bytes
    outputs = _openrlhf_rollout(f"{keyed_server.url}/key/{KEY}/get_reward", tokenizer, samples, max_length=256 + 24)
    assert all(o["reward"] is not None for o in outputs), [o["reward"] for o in outputs]
    assert all(o["extra_logs"]["grm_split"] == [4.0] for o in outputs)
    assert [o["reward"] for o in outputs] == [[r] for r in _clean_rewards(keyed_server.url, samples)]


def test_openrlhf_whole_rollout_in_one_post(keyed_server, world_items, tokenizer):
    """``_fetch_rewards_via_http`` with one endpoint sends the batch it is given in one POST (OpenRLHF <= 0.9's
    whole-rollout pattern): 64 samples past ``--max-items`` 32, split server-side."""
    executor = agent.SingleTurnAgentExecutor(f"{keyed_server.url}/key/{KEY}/get_reward")
    queries = [f"{it.query} {r}</s>" for it in world_items for r in it.responses]
    prompts = [it.query for it in world_items for _ in it.responses]
    (whole,) = asyncio.run(executor._fetch_rewards_via_http(queries, prompts, [""] * len(queries)))
    assert len(whole["rewards"]) == 64 and None not in whole["rewards"]
    (part,) = asyncio.run(executor._fetch_rewards_via_http(queries[40:42], prompts[40:42], ["", ""]))
    assert part["rewards"] == whole["rewards"][40:42]


@pytest.mark.slow
def test_openrlhf_executor_without_the_key_gets_none_after_its_retries(keyed_server, world_items, tokenizer):
    samples = [(world_items[0].query, world_items[0].responses[0])]
    (out,) = _openrlhf_rollout(f"{keyed_server.url}/get_reward", tokenizer, samples)
    assert out["reward"] is None  # 401 five times: OpenRLHF logs it and leaves the reward empty


@pytest.mark.slow
def test_openrlhf_executor_retries_through_503s_past_the_in_flight_cap(world_items, tokenizer):
    """24 concurrent samples, 8 requests allowed in flight: the rest get 503 and OpenRLHF's own retry loop (1 s
    apart, 5 tries) gets every reward."""
    with start_in_thread(SlowSampler(0.05), config=_config(limits={"max_in_flight": 8})) as running:
        samples = [(it.query, r) for it in world_items[:12] for r in it.responses]
        outputs = _openrlhf_rollout(f"{running.url}/get_reward", tokenizer, samples)
        assert all(o["reward"] is not None for o in outputs), sum(o["reward"] is None for o in outputs)
        metrics = httpx.get(f"{running.url}/metrics").text
    rejected = [line for line in metrics.splitlines() if line.startswith('grm_rejected_total{status="503"}')]
    assert rejected and float(rejected[0].split()[-1]) > 0  # the retries really happened


# verl 0.9.1: its reward loop with grm's compute_score as custom_reward_function
def _verl_batch(tokenizer, samples: list[tuple[str, str]]):
    import numpy as np
    import torch
    from verl import DataProto

    def ids(text: str) -> list[int]:
        return tokenizer(text=text, add_special_tokens=False)["input_ids"]

    prompts = [ids(p) for p, _ in samples]
    responses = [ids(f" {r}") + [tokenizer.eos_token_id] for _, r in samples]
    plen, rlen, pad = max(map(len, prompts)), max(map(len, responses)), tokenizer.pad_token_id
    p_t = torch.tensor([[pad] * (plen - len(p)) + p for p in prompts])  # left-padded prompts, right-padded responses
    r_t = torch.tensor([r + [pad] * (rlen - len(r)) for r in responses])
    mask = torch.tensor(
        [
            [0] * (plen - len(p)) + [1] * len(p) + [1] * len(r) + [0] * (rlen - len(r))
            for p, r in zip(prompts, responses, strict=True)
        ]
    )
    return DataProto.from_dict(
        tensors={"prompts": p_t, "responses": r_t, "attention_mask": mask},
        non_tensors={
            "data_source": np.array(["grm-world"] * len(samples), dtype=object),
            "reward_model": np.array([{"ground_truth": None} for _ in samples], dtype=object),
            "extra_info": np.array([{"prompt": p} for p, _ in samples], dtype=object),
        },
    )


@pytest.mark.parametrize("name", ["compute_score_async", "compute_score"])
def test_verl_reward_loop_scores_with_grm_compute_score(keyed_server, world_items, tokenizer, monkeypatch, name):
    pytest.importorskip("verl", reason=f"verl not installed: {INSTALL}")
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager

    monkeypatch.setenv("GRM_URL", keyed_server.url)
    monkeypatch.setenv("GRM_API_KEY", KEY)  # the adapter sends it as a bearer header
    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {"path": str(VERL_ADAPTER), "name": name, "reward_kwargs": {}},
                "reward_manager": {"source": "register", "name": "naive"},
            }
        }
    )
    samples = [(it.query, r) for it in world_items[:6] for r in it.responses]
    data = _verl_batch(tokenizer, samples)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        manager = load_reward_manager(config, tokenizer)
        results = loop.run_until_complete(asyncio.gather(*(manager.run_single(data[i : i + 1]) for i in range(12))))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    alone = [
        httpx.post(
            f"{keyed_server.url}/v1/score",
            json={"prompt": p, "response": r},
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()["reward"]
        for p, r in samples
    ]
    assert [res["reward_score"] for res in results] == alone  # verl decoded without </s>: judged as the clean text
    assert all(res["reward_extra_info"]["grm_parse_failed"] == 0.0 for res in results)
