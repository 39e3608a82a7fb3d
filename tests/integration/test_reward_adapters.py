"""The adapters (TRL remote GRMReward, verl compute_score, OpenRLHF reward_func file) against a live grm serve
over the world teacher."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
from pathlib import Path

import httpx
import pytest

from grm.integrations.trl import grm_reward
from grm.rewards import GRMReward
from grm.sampling import build_sampler
from grm.serving.app import AppConfig, ScoringDefaults
from grm.serving.client import GRMServerError, RemoteGRMReward, ScoreClient
from grm.serving.server import start_in_thread
from grm.world.generator import WorldConfig, generate_world


@pytest.fixture(scope="module")
def items():
    return [it for it in generate_world(WorldConfig())["test"] if it.n == 2][:8]  # the tests read two scores


@pytest.fixture(scope="module")
def server():
    config = AppConfig(model_name="teacher", template="compact", defaults=ScoringDefaults(k=4, temperature=1.0))
    running = start_in_thread(build_sampler("world-teacher"), config=config)
    yield running
    running.shutdown()


@pytest.fixture
def grm_env(server, monkeypatch):
    import grm.integrations.verl as verl

    monkeypatch.setenv("GRM_URL", server.url)
    monkeypatch.delenv("GRM_API_KEY", raising=False)
    monkeypatch.setattr(verl, "_CLIENT", None)
    return server.url


def test_trl_remote_reward_is_async_and_matches_the_server(server, items):
    reward = grm_reward(server.url, k=4, temperature=1.0, group_size=2)
    # TRL's is_async_callable reads the coroutine flag off a callable instance's __call__ (trl.trainer.utils)
    assert isinstance(reward, RemoteGRMReward) and inspect.iscoroutinefunction(type(reward).__call__)
    prompts = [it.query for it in items[:3] for _ in it.responses]
    completions = [r for it in items[:3] for r in it.responses]
    got = asyncio.run(reward(prompts=prompts, completions=completions))
    assert len(got) == 6
    for g, it in enumerate(items[:3]):
        direct = httpx.post(
            f"{server.url}/v1/score", json={"query": it.query, "responses": list(it.responses), "k": 4, "seed": 1}
        ).json()
        assert got[2 * g : 2 * g + 2] == [pytest.approx((s - 1) / 9) for s in direct["scores"]]
    # pointwise, chat-form completions (TRL's conversational datasets), sync wrapper
    point = grm_reward(server.url, k=2).sync(
        prompts=[items[0].query], completions=[[{"role": "assistant", "content": items[0].responses[1]}]]
    )
    assert len(point) == 1 and 0 <= point[0] <= 1
    assert isinstance(grm_reward(build_sampler("world-teacher"), template="compact"), GRMReward)
    with pytest.raises(ValueError, match="grm_reward"):  # a plain class: a server URL is not silently another type
        GRMReward(server.url)


def test_remote_errors_name_the_field(server):
    with pytest.raises(GRMServerError, match="k") as err:
        ScoreClient(server.url).score("3 + 18 ?", ["21"], k=0)
    assert err.value.status == 400 and err.value.param == "k"


def test_verl_compute_score_sync_and_async(grm_env, items):
    from grm.integrations import verl

    item = items[1]
    info = {"question": item.query, "index": 3}
    sync = verl.compute_score("world", item.responses[0], None, info)
    direct = httpx.post(f"{grm_env}/v1/score", json={"prompt": item.query, "response": item.responses[0]}).json()
    assert sync["score"] == pytest.approx(direct["reward"]) and sync["grm_grouped"] == 0.0

    async def both():
        return await asyncio.gather(
            *(verl.compute_score_async("world", r, None, {"prompt": item.query}) for r in item.responses)
        )

    results = asyncio.run(both())
    assert results[0] == sync and all(0 <= r["score"] <= 1 for r in results)
    with pytest.raises(ValueError, match="extra_info"):
        verl.compute_score("world", "x", None, {"other": 1})


def test_openrlhf_reward_func_file_loaded_by_path(grm_env, items):
    import grm.integrations

    path = Path(grm.integrations.__file__).parent / "openrlhf_reward_func.py"
    spec = importlib.util.spec_from_file_location("reward_func", path)  # as OpenRLHF loads a .py reward
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prompts = [items[2].query, items[2].query]
    queries = [f"{p} {r}" for p, r in zip(prompts, items[2].responses, strict=True)]
    out = module.reward_func(queries, prompts, ["", ""])
    assert tuple(out["rewards"].shape) == (2,) and tuple(out["scores"].shape) == (2,)
    direct = httpx.post(f"{grm_env}/get_reward", json={"query": queries, "prompts": prompts}).json()
    assert out["rewards"].tolist() == pytest.approx(direct["rewards"])
    assert set(out["extra_logs"]) == set(direct["extra_logs"])
