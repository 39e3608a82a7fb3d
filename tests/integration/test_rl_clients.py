"""grm serve against what RL trainers' reward clients send (issue 27's table, one test per row): OpenRLHF's and
slime's pinned clients (``tests/helpers/rl_clients.py``), verl's adapter call, against servers started here on
127.0.0.1 (or 0.0.0.0 for the cluster set-up) over the world teacher."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import aiohttp
import httpx
import pytest

from grm.sampling import build_sampler
from grm.serving import default_template
from grm.serving.app import AppConfig, ScoringDefaults, ServerLimits
from grm.serving.engine import EngineSettings
from grm.serving.requests import Access
from grm.serving.server import ConnectionLimits, check_bind, loopback_hosts, start_in_thread
from grm.serving.texts import stop_tokens
from grm.world.generator import WorldConfig, generate_world
from tests.helpers.rl_clients import openrlhf_remote_rm, slime_remote_rm
from tests.helpers.timed_sampler import SlowSampler

KEY = "s3cret-key"


@pytest.fixture(scope="module")
def world_items():
    return [it for it in generate_world(WorldConfig())["test"] if it.n == 2][:64]


def _config(limits: dict | None = None, engine: dict | None = None, **kw) -> AppConfig:
    return AppConfig(
        model_name="teacher",
        template="compact",
        defaults=ScoringDefaults(k=2, temperature=1.0),
        limits=ServerLimits(**{"max_items": 32, "max_responses": 16, **(limits or {})}),
        engine=EngineSettings(**{"max_wait_ms": 2.0, **(engine or {})}),
        stop_tokens=stop_tokens(),
        **kw,
    )


@pytest.fixture(scope="module")
def server():
    running = start_in_thread(build_sampler("world-teacher"), config=_config())
    yield running
    running.shutdown()


def _rollout(items, per_item: int = 1) -> tuple[list[str], list[str]]:
    """OpenRLHF's (queries, prompts): query = prompt + response."""
    prompts, queries = [], []
    for it in items:
        for r in list(it.responses)[:per_item]:
            prompts.append(it.query)
            queries.append(f"{it.query} {r}")
    return queries, prompts


# row 1: a key that clients without headers can carry; the cluster (non-loopback) set-up
def test_row1_key_in_the_url_for_openrlhf_and_slime_on_a_non_loopback_bind(world_items):
    with pytest.raises(ValueError, match="trust-network"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", None, ("10.0.0.0/8",))  # an explicit trusted network is enough
    running = start_in_thread(build_sampler("world-teacher"), host="0.0.0.0", config=_config(api_key=KEY))
    try:
        base = f"http://127.0.0.1:{running.port}"
        queries, prompts = _rollout(world_items[:4])
        refused = httpx.post(f"{base}/get_reward", json={"query": queries, "prompts": prompts})
        assert refused.status_code == 401 and "/key/<key>/get_reward" in refused.json()["error"]["message"]
        rewards = openrlhf_remote_rm(f"{base}/key/{KEY}/get_reward", queries, prompts)
        assert rewards is not None and len(rewards) == 4
        assert openrlhf_remote_rm(f"{base}/get_reward?api_key={KEY}", queries, prompts) == rewards
        assert (
            httpx.post(f"{base}/key/wrong/get_reward", json={"query": queries, "prompts": prompts}).status_code == 401
        )

        async def slime() -> list:
            async with aiohttp.ClientSession() as session:
                url = f"{base}/key/{KEY}/v1/score"
                return [await slime_remote_rm(session, url, it.query, it.responses[0]) for it in world_items[:2]]

        answers = asyncio.run(slime())
        assert all(a["reward"] is not None for a in answers)
    finally:
        running.shutdown()


def test_row1_trusted_network_and_host_check(world_items):
    queries, prompts = _rollout(world_items[:2])
    config = _config(api_key=KEY, access=Access(trusted_networks=("127.0.0.0/8",)))
    with start_in_thread(build_sampler("world-teacher"), config=config) as running:
        assert openrlhf_remote_rm(f"{running.url}/get_reward", queries, prompts) is not None
    hosts = loopback_hosts("127.0.0.1", None, (), ())
    assert loopback_hosts("127.0.0.1", KEY, (), ()) == () and "localhost" in hosts
    with start_in_thread(build_sampler("world-teacher"), config=_config(access=Access(allowed_hosts=hosts))) as s:
        body = {"query": queries, "prompts": prompts}
        assert httpx.post(f"{s.url}/get_reward", json=body).status_code == 200
        evil = httpx.post(f"{s.url}/get_reward", json=body, headers={"host": "attacker.example:80"})
        assert evil.status_code == 421 and evil.json()["error"]["param"] == "host"


def test_row1_key_from_a_file_or_the_environment(tmp_path, monkeypatch):
    from grm.serving.server import api_key_from_env

    path = tmp_path / "key"
    path.write_text(KEY + "\n")
    monkeypatch.setenv("GRM_API_KEY", "from-env")
    assert api_key_from_env(None, str(path)) == KEY
    assert api_key_from_env(None) == "from-env"
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        api_key_from_env(None, str(path))


# row 2: OpenRLHF's retry policy (5 tries, 1 s apart, Retry-After ignored) against a full queue
@pytest.mark.slow
def test_row2_openrlhf_retries_get_every_reward_when_the_queue_is_full(world_items):
    """96 concurrent one-sample requests (192 generations at 50 ms: ~10 s) through a 16-generation queue: today's
    early 429 leaves about half of them None after OpenRLHF's ~5 s of retries; queued, every one is answered."""
    sampler = SlowSampler(0.05)
    config = _config(engine={"max_pending_samples": 16, "max_batch_size": 16})
    with start_in_thread(sampler, config=config) as running:
        results: list = [None] * 96
        items = (world_items * 2)[:96]

        def one(i: int) -> None:
            q, p = _rollout([items[i]])
            results[i] = openrlhf_remote_rm(f"{running.url}/get_reward", q, p)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(96)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(r is not None for r in results), sum(r is None for r in results)
        assert time.monotonic() - t0 > 6.0  # longer than OpenRLHF's retry window: the queue really was full
        metrics = httpx.get(f"{running.url}/metrics").text
        assert 'grm_rejected_total{status="429"}' not in metrics


def test_row2_503_past_the_in_flight_cap_is_counted(world_items):
    config = _config(limits={"max_in_flight": 2})
    with start_in_thread(SlowSampler(0.01), config=config) as running:

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
                bodies = [{"query": it.query, "responses": list(it.responses)} for it in world_items[:12]]
                return [
                    r.status_code for r in await asyncio.gather(*(client.post("/v1/score", json=b) for b in bodies))
                ]

        codes = asyncio.run(burst())
        assert 503 in codes and 200 in codes
        metrics = httpx.get(f"{running.url}/metrics").text
        assert f'grm_rejected_total{{status="503"}} {codes.count(503)}' in metrics


# row 3: query as decoded by the trainer's tokenizer
def test_row3_tokenizer_clean_up_and_a_truncated_prompt_are_split(server, world_items):
    it = world_items[0]
    prompt, response = it.query, it.responses[0]
    assert " ?" in prompt and " ," in prompt
    cleaned = prompt.replace(" ?", "?").replace(" ,", ",")  # what clean_up_tokenization_spaces does on decode
    body = {
        "query": [
            f"{cleaned} {response}",
            f"{prompt[:20]} {response}",  # the prompt cut by the trainer's prompt_max_len
            f"<|im_start|>user\n{prompt}<|im_end|>\n{response}",  # a chat template around it
            f"{prompt} {response}",
        ],
        "prompts": [prompt] * 4,
    }
    r = httpx.post(f"{server.url}/get_reward", json=body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["extra_logs"]["grm_split"] == [1.0, 2.0, 3.0, 0.0]
    exact = openrlhf_remote_rm(f"{server.url}/get_reward", body["query"][3:], body["prompts"][3:])
    for q in (body["query"][0], body["query"][2]):  # judged as the exact split is
        assert openrlhf_remote_rm(f"{server.url}/get_reward", [q], [prompt]) == exact
    bad = httpx.post(f"{server.url}/get_reward", json={"query": ["something else"], "prompts": [prompt]})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query[0]"


# row 4: end-of-sequence tokens left in the response
def test_row4_stop_tokens_are_stripped_before_judging(server, world_items):
    it = world_items[0]
    r = it.responses[0]
    suffixes = ["", "</s>", "<|im_end|>", "<|eot_id|><|endoftext|>", "<|im_end|>\n<pad><pad>"]
    rewards, stripped = [], []
    for suffix in suffixes:  # one request each: identical samples in one request share a prompt's sample indices
        data = httpx.post(
            f"{server.url}/get_reward", json={"query": [f"{it.query} {r}{suffix}"], "prompts": [it.query]}
        )
        rewards += data.json()["rewards"]
        stripped += data.json()["extra_logs"]["grm_stop_stripped"]
    assert len(set(rewards)) == 1, rewards
    assert stripped == [0.0, 1.0, 1.0, 1.0, 1.0]
    one = httpx.post(f"{server.url}/v1/score", json={"prompt": it.query, "response": r + "</s>"}).json()
    alone = httpx.post(f"{server.url}/v1/score", json={"prompt": it.query, "response": r}).json()
    assert one["reward"] == alone["reward"]


def test_row4_the_models_own_tokens_join_the_list():
    class Tok:
        eos_token, pad_token, all_special_tokens = "<|my_eos|>", "<|my_pad|>", ["<|my_eos|>", "<|sep|>"]

    class Sampler:
        tokenizer = Tok()

    tokens = stop_tokens(["[END]"], Sampler())
    assert {"<|my_eos|>", "<|my_pad|>", "<|sep|>", "[END]", "</s>"} <= set(tokens)


# row 5: the whole rollout in one POST
def test_row5_a_whole_rollout_is_split_server_side(server, world_items):
    queries, prompts = _rollout(world_items, per_item=2)  # 128 samples, max_items 32
    whole = openrlhf_remote_rm(f"{server.url}/get_reward", queries, prompts)
    assert whole is not None and len(whole) == 128
    part = openrlhf_remote_rm(f"{server.url}/get_reward", queries[40:42], prompts[40:42])
    assert part == whole[40:42]
    over = httpx.post(f"{server.url}/get_reward", json={"query": ["a"] * 8193, "prompts": ["a"] * 8193})
    assert over.status_code == 400 and "--max-reward-batch" in over.json()["error"]["message"]


# row 6: long responses
def test_row6_long_responses_are_cut_and_reported_or_refused_by_flag(world_items):
    it = world_items[0]
    long = it.responses[0] + " " + "x" * 36_000
    body = {"query": [f"{it.query} {long}"], "prompts": [it.query]}
    with start_in_thread(build_sampler("world-teacher"), config=_config()) as running:
        r = httpx.post(f"{running.url}/get_reward", json=body)
        assert r.status_code == 200 and r.json()["extra_logs"]["grm_truncated"] == [1.0]
        s = httpx.post(f"{running.url}/v1/score", json={"prompt": it.query, "response": long})
        assert s.status_code == 200 and s.json()["truncated"] == ["response[0]"]
    with start_in_thread(build_sampler("world-teacher"), config=_config({"long_texts": "refuse"})) as running:
        r = httpx.post(f"{running.url}/get_reward", json=body)
        assert r.status_code == 400 and r.json()["error"]["param"] == "query[0][0]"


# row 7: group mode respects --max-responses
def test_row7_groups_are_cut_at_max_responses(world_items):
    it = world_items[0]
    responses = [f"{it.responses[i % 2]} {'!' * i}" for i in range(40)]
    config = _config({"max_responses": 16}, {"group_window_ms": 200.0})
    with start_in_thread(build_sampler("world-teacher"), config=config) as running:
        body = {"query": [f"{it.query} {r}" for r in responses], "prompts": [it.query] * 40}
        sizes = httpx.post(f"{running.url}/get_reward", json=body).json()["extra_logs"]["grm_group_size"]
        assert sizes == [14.0] * 28 + [12.0] * 12  # 40 -> three even groups, none past 16

        async def group() -> list[dict]:
            async with httpx.AsyncClient(base_url=running.url, timeout=30) as client:
                bodies = [{"prompt": it.query, "response": r, "group_id": "g", "group_size": 40} for r in responses]
                return [r.json() for r in await asyncio.gather(*(client.post("/v1/score", json=b) for b in bodies))]

        answers = asyncio.run(group())
        assert all(a["group"]["size"] <= 16 for a in answers) and all(a["reward"] is not None for a in answers)


# row 8: idle keep-alive connections between rollouts
@pytest.mark.slow
def test_row8_connections_idle_between_rollouts_are_kept(server, world_items):
    assert ConnectionLimits().keep_alive_s >= 60

    async def two_rollouts() -> list[int]:
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/v1/score"
            first = await slime_remote_rm(session, url, world_items[0].query, world_items[0].responses[0])
            await asyncio.sleep(6.0)  # past the old fixed 5 s
            second = await slime_remote_rm(session, url, world_items[1].query, world_items[1].responses[0])
            return [first["group"]["index"], second["group"]["index"]]

    assert asyncio.run(two_rollouts()) == [0, 0]


# row 9: every 4xx is logged with its reason, and named in the body
def test_row9_a_4xx_is_logged_with_its_reason(server, caplog):
    with caplog.at_level(logging.WARNING, logger="grm.serving"):
        r = httpx.post(f"{server.url}/get_reward", json={"query": ["x"], "prompts": ["x", "y"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompts"
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "grm.serving"]
    assert any("/get_reward" in m and "400" in m and "prompts" in m for m in lines), lines


# row 10: the template follows the model
def test_row10_template_follows_the_model():
    assert default_template("world-teacher") == "compact"
    assert default_template("world-teacher:0.2") == "compact"
    assert default_template("outputs/run/model") == "deepseek-grm"


def test_row10_registry_template_is_read_from_the_registered_run(tmp_path):
    import mlflow

    from grm_cli.models import resolve_model

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("grm-serve", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp)
    client.log_param(run.info.run_id, "sampling.template", "compact")
    client.log_artifacts(run.info.run_id, str(model_dir), "model")
    client.create_registered_model("grm")
    version = client.create_model_version("grm", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("grm", "champion", version.version)
    got = resolve_model("champion", str(tmp_path), uri)
    assert got.template == "compact" and got.meta_rm is None and (tmp_path / "artifacts" / "models").exists()
    assert got.model


# row 11: a huge completion must not block a small score; it stops when its client leaves
def test_row11_small_score_is_answered_while_a_huge_completion_runs_and_the_completion_stops(world_items):
    sampler = SlowSampler(0.0005)  # 32 x 256 = 8192 texts: ~4 s in all, 0.13 s per 256-text chunk
    with start_in_thread(sampler, config=_config(engine={"request_timeout_s": 60.0})) as running:
        big = {"prompt": [it.query for it in world_items[:32]], "n": 256, "max_tokens": 500, "temperature": 1.0}

        async def mix() -> float:
            async with httpx.AsyncClient(base_url=running.url, timeout=60) as client:
                huge = asyncio.ensure_future(client.post("/v1/completions", json=big))
                await asyncio.sleep(0.5)
                t0 = time.monotonic()
                small = await client.post("/v1/score", json={"prompt": world_items[0].query, "response": "x"})
                took = time.monotonic() - t0
                assert small.status_code == 200
                huge.cancel()  # the client leaves
                return took

        took = asyncio.run(mix())
        assert took < 2.0, took  # the whole completion alone sleeps 4 s
        time.sleep(0.5)
        calls = len(sampler.calls)
        time.sleep(0.6)
        assert len(sampler.calls) == calls  # nothing more is generated for the departed client
        assert sum(sampler.calls) < 8192 * 0.6


class IndexedSampler:
    """Text = f(seed, prompt, sample index), as the world teacher and vLLM with per-request seeds."""

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        return [[f"{p}|{seed}|{j}" for j in range(n)] for p in prompts]


def test_row11_a_completion_in_chunks_equals_one_call():
    body = {"prompt": ["a b", "c d", "e f"], "n": 40, "max_tokens": 5, "temperature": 1.0, "seed": 3}
    with start_in_thread(IndexedSampler(), config=_config()) as running:  # max_batch_size 64: chunks of 1 prompt
        data = httpx.post(f"{running.url}/v1/completions", json=body).json()
    one = IndexedSampler().generate(body["prompt"], 40, 1.0, 5, 3)
    assert [c["text"] for c in data["choices"]] == [t for row in one for t in row]
    assert [c["index"] for c in data["choices"]] == list(range(120))


# row 12: verl passes no uid; groups form by the query with GRM_GROUP_SIZE
def test_row12_verl_groups_by_the_query_without_uid(world_items, monkeypatch):
    import grm.integrations.verl as verl

    config = _config(engine={"group_window_ms": 2000.0})
    with start_in_thread(build_sampler("world-teacher"), config=config) as running:
        monkeypatch.setenv("GRM_URL", running.url)
        monkeypatch.setenv("GRM_GROUP_SIZE", "2")
        monkeypatch.delenv("GRM_API_KEY", raising=False)
        monkeypatch.setattr(verl, "_CLIENT", None)
        it = world_items[0]
        info = {"prompt": it.query, "index": 0}  # what a verl dataset carries: no uid

        async def rollout() -> list[dict]:
            return list(await asyncio.gather(*(verl.compute_score_async("d", r, None, info) for r in it.responses)))

        results = asyncio.run(rollout())
        assert [r["grm_grouped"] for r in results] == [1.0, 1.0]


# item 5: failed judgements are the caller's choice
def test_failed_judgements_follow_the_policy(world_items):
    class Garbage:
        def generate(self, prompts, n, temperature, max_new_tokens, seed):
            return [["no verdict here"] * n for _ in prompts]

    it = world_items[0]
    body = {"query": [f"{it.query} {it.responses[0]}"], "prompts": [it.query]}
    for policy, reward in (("mid", 0.0), ("null", None), (-1.0, -1.0)):
        with start_in_thread(Garbage(), config=_config(failed_reward=policy)) as running:
            data = httpx.post(f"{running.url}/get_reward", json=body).json()
            assert data["rewards"] == [reward] and data["extra_logs"]["grm_parse_failed"] == [1.0]
            one = httpx.post(f"{running.url}/v1/score", json={"prompt": it.query, "response": "x"}).json()
            assert one["reward_failed"] is True


# TRL's GRPOTrainer itself, for 3 steps, with the remote GRM reward
@pytest.mark.slow
def test_trl_grpo_trainer_trains_three_steps_on_remote_grm_rewards(server, world_items, tiny_model_dir, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from grm.rewards import GRMReward

    reward = GRMReward(server.url, k=2)
    seen: list[list] = []

    async def recorded(prompts, completions, **kwargs):
        out = await reward(prompts, completions, **kwargs)
        seen.append(out)
        return out

    recorded.__name__ = "grm_reward"
    args = GRPOConfig(
        output_dir=str(tmp_path / "trainer"),
        num_generations=2,
        per_device_train_batch_size=4,
        max_steps=3,
        max_completion_length=6,
        use_cpu=True,
        bf16=False,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        reward_funcs=[recorded],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": it.query} for it in world_items[:8]]),
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
    )
    trainer.train()
    assert len(seen) == 3 and all(len(batch) == 4 for batch in seen)
    assert all(r is None or 0 <= r <= 1 for batch in seen for r in batch)
    assert any(r is not None for batch in seen for r in batch)
    logged = [h for h in trainer.state.log_history if "rewards/grm_reward/mean" in h]
    assert len(logged) == 3
