"""Principles from the caller and ``principle_mode: query_only`` (issue 27, item 4) against a live ``grm serve`` on
127.0.0.1 started by the fixture. The judge is the world teacher with its noise off except a certain cue misread:
it reads the rare cue "terse" as asking for detail, so when it writes its own principles it prefers "it is Lima";
given the right principles ("accuracy 8 , brevity 2") it prefers the terse "Lima"."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from grm.serving.app import AppConfig, ScoringDefaults, ServerLimits
from grm.serving.engine import EngineSettings
from grm.serving.server import start_in_thread
from grm.world.teacher import TeacherConfig, TeacherSampler

QUERY = "capital of Zorvia ? ref Lima , terse"
TERSE, WORDY = "Lima", "it is Lima"
RIGHT = "accuracy 8 , brevity 2"


def _teacher() -> TeacherSampler:
    quiet = TeacherConfig(hard_share=0, position_bias=0, length_bias=0, random_error=0, cue_misread=1.0)
    return TeacherSampler(config=quiet)


@pytest.fixture(scope="module")
def server():
    config = AppConfig(
        model_name="teacher",
        template="compact",
        defaults=ScoringDefaults(k=4, temperature=1.0),
        limits=ServerLimits(max_principles_chars=200),
        engine=EngineSettings(max_wait_ms=5.0),
    )
    running = start_in_thread(_teacher(), config=config)
    yield running
    running.shutdown()


def _score(server, **body) -> dict:
    r = httpx.post(f"{server.url}/v1/score", json={"query": QUERY, "responses": [TERSE, WORDY], **body}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def _principles_metric(server) -> dict[str, float]:
    text = httpx.get(f"{server.url}/metrics").text
    return {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("grm_principles_total{")
    }


def test_caller_principles_replace_the_judges_own(server):
    own = _score(server, return_samples=True)
    assert own["best"] == 1 and "principles" not in own  # its own (misread) principles favour the wordy answer
    assert all("detail" in s["principles"] for s in own["samples"])

    given = _score(server, principles=RIGHT, return_samples=True)
    assert given["best"] == 0 and given["scores"][0] > given["scores"][1]
    assert given["principles"] == {"text": RIGHT, "source": "caller"}
    for sample in given["samples"]:  # the judge continued after the given principles: no line of its own
        assert "Specific Criteria" not in sample["text"] and sample["text"].lstrip().startswith("Analysis:")
        assert sample["principles"] == RIGHT and sample["scores"] is not None

    rubric = _score(server, principles=["accuracy 8", "brevity 2"])  # a rubric: the items joined with " ; "
    assert rubric["best"] == 0 and rubric["principles"]["text"] == "accuracy 8 ; brevity 2"


def test_per_item_principles_override_the_requests(server):
    r = httpx.post(
        f"{server.url}/v1/score",
        json={
            "principles": "accuracy 8 , detail 2",
            "items": [
                {"query": QUERY, "responses": [TERSE, WORDY], "principles": RIGHT},
                {"query": QUERY, "responses": [TERSE, WORDY]},
            ],
        },
        timeout=30,
    )
    assert r.status_code == 200, r.text
    first, second = r.json()["results"]
    assert first["best"] == 0 and first["principles"]["text"] == RIGHT
    assert second["best"] == 1 and second["principles"]["text"] == "accuracy 8 , detail 2"


def test_query_only_generates_principles_once_per_prompt(server):
    before = _principles_metric(server)
    query = "capital of Quenth ? ref Morn , terse"
    body = {
        "query": [f"{query}{r}" for r in ("Morn", "it is Morn", "Kelt", "Morn")],
        "prompts": [query] * 4,
        "principle_mode": "query_only",
    }
    r = httpx.post(f"{server.url}/get_reward", json=body, timeout=30)
    assert r.status_code == 200, r.text
    logs = r.json()["extra_logs"]
    assert logs["grm_principles_given"] == [1.0] * 4
    scored = _score(server, query=query, responses=["Morn", "it is Morn"], principle_mode="query_only", k=6)
    after = _principles_metric(server)
    assert after.get("generated", 0) - before.get("generated", 0) == 1  # one generation for the whole group
    assert after.get("cached", 0) - before.get("cached", 0) >= 1  # the second request reused it
    # written from the query alone, with the judge's own reading of the cue: "terse" misread as detail
    assert scored["principles"]["source"] == "query" and "detail" in scored["principles"]["text"]
    assert scored["best"] == 1


def test_query_only_shares_one_principles_text_across_samples(server):
    data = _score(
        server, query="capital of Brill ? ref Kelt , terse", principle_mode="query_only", return_samples=True
    )
    texts = {s["principles"] for s in data["samples"]}
    assert texts == {data["principles"]["text"]} and all("Specific Criteria" not in s["text"] for s in data["samples"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"principles": ""}, "principles"),
        ({"principles": "   "}, "principles"),
        ({"principles": []}, "principles"),
        ({"principles": ["accuracy 8", ""]}, "principles[1]"),
        ({"principles": "x" * 201}, "principles"),
        ({"principles": 5}, "principles"),
        ({"principles": {"a": 1}}, "principles"),
        ({"principles": RIGHT, "principle_mode": "query_only"}, "principle_mode"),
        ({"principle_mode": "after_responses"}, "principle_mode"),
    ],
)
def test_bad_principles_are_a_400_naming_the_field(server, body, param):
    r = httpx.post(f"{server.url}/v1/score", json={"query": QUERY, "responses": [TERSE, WORDY], **body}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"principles": [RIGHT]}, "principles"),  # one entry for two queries
        ({"principles": [RIGHT, ""]}, "principles[1]"),
        ({"principles": [RIGHT, None], "principle_mode": "query_only"}, "principle_mode"),
    ],
)
def test_get_reward_principles_are_checked(server, body, param):
    base = {"query": [f"{QUERY}{TERSE}", f"{QUERY}{WORDY}"], "prompts": [QUERY, QUERY]}
    r = httpx.post(f"{server.url}/get_reward", json={**base, **body}, timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param, r.text


def test_get_reward_uses_principles_per_query(server):
    body = {"query": [f"{QUERY}{TERSE}", f"{QUERY}{WORDY}"], "prompts": [QUERY, QUERY]}
    own = httpx.post(f"{server.url}/get_reward", json=body, timeout=30).json()
    given = httpx.post(f"{server.url}/get_reward", json={**body, "principles": [RIGHT, RIGHT]}, timeout=30).json()
    assert own["rewards"][0] < own["rewards"][1]  # its own misread principles: the wordy answer wins
    assert given["rewards"][0] > given["rewards"][1]  # the caller's: the terse one
    assert (
        given["extra_logs"]["grm_principles_given"] == [1.0, 1.0] and "grm_principles_given" not in own["extra_logs"]
    )


def test_remote_reward_passes_principles_and_mode(server):
    from grm.serving.client import RemoteGRMReward

    prompts, completions = [QUERY, QUERY], [TERSE, WORDY]
    own = RemoteGRMReward(server.url, k=4, temperature=1.0).sync(prompts, completions)
    given = RemoteGRMReward(server.url, k=4, temperature=1.0).sync(prompts, completions, principles=[RIGHT, RIGHT])
    assert own[0] < own[1] and given[0] > given[1]
    before = _principles_metric(server).get("generated", 0)
    query = "language of Vell ? ref Norn , terse"
    grouped = RemoteGRMReward(server.url, k=4, temperature=1.0, group_size=2, principle_mode="query_only")
    rewards = grouped.sync([query] * 2, ["Norn", "it is Norn"])
    assert rewards[0] < rewards[1]  # judged against principles from the query (cue misread: detail)
    assert _principles_metric(server)["generated"] - before == 1


def test_group_mode_judges_the_group_against_one_query_only_principles():
    config = AppConfig(
        template="compact",
        defaults=ScoringDefaults(k=2, temperature=1.0),
        engine=EngineSettings(max_wait_ms=5.0, group_window_ms=2000),
    )
    with start_in_thread(_teacher(), config=config) as running:
        query = "capital of Ostra ? ref Kelt , terse"

        async def send() -> list[dict]:
            async with httpx.AsyncClient(base_url=running.url, timeout=30) as http:
                bodies = [
                    {"prompt": query, "response": r, "group_id": "g", "group_size": 3, "principle_mode": "query_only"}
                    for r in ("Kelt", "it is Kelt", "Morn")
                ]
                answers = await asyncio.gather(*(http.post("/v1/score", json=b) for b in bodies))
            assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
            return [a.json() for a in answers]

        members = asyncio.run(send())
        assert {m["group"]["mode"] for m in members} == {"group"} and {m["group"]["size"] for m in members} == {3}
        assert len({m["principles"]["text"] for m in members}) == 1 and members[0]["principles"]["source"] == "query"
        assert _principles_metric(running) == {"generated": 1.0}


def test_query_only_on_a_query_the_judge_cannot_read_is_a_400(server):
    body = {"query": "hello there", "responses": ["hi"], "principle_mode": "query_only"}
    r = httpx.post(f"{server.url}/v1/score", json=body, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["param"] == "query", r.text
    assert _score(server, principle_mode="query_only")["n"] == 2  # the server still serves
