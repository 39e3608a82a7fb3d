"""``grm serve``'s ``/invocations``: MLflow's scoring protocol, called by MLflow's own client
(``mlflow.pyfunc.scoring_server.client.ScoringServerClient``) in every body form it sends. The column form
``{"inputs": {"query": [...], "responses": [[...]]}}`` (issue 27 row 13) is answered like the row form, ragged
response lists included (MLflow's own server refuses that form for the pyfunc before the model runs)."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from grm.sampling import build_sampler
from grm.serving.requests import AppConfig
from grm.serving.scoring import ScoreSettings, make_item, score_alone
from grm.serving.server import start_in_thread

ITEMS = [("3 + 18 ?", ["maybe 31", "21"]), ("11 + 8 ?", ["19", "17", "it is 20"])]


@pytest.fixture(scope="module")
def server():
    running = start_in_thread(build_sampler("world-teacher"), config=AppConfig(template="compact"))
    yield running
    running.shutdown()


@pytest.fixture(scope="module")
def client(server):
    from mlflow.pyfunc.scoring_server.client import ScoringServerClient

    mlflow_client = ScoringServerClient(server.host, server.port)
    mlflow_client.wait_server_ready(timeout=30)  # GET /ping, as MLflow's tooling does
    return mlflow_client


def _expected(k: int) -> list[list[float]]:
    """What the pyfunc (and the server code) gives for ITEMS with the server's defaults."""
    items = [make_item(q, r) for q, r in ITEMS]
    settings = ScoreSettings(k, None, 0.5, 0, 512)
    return [r["scores"] for r in score_alone(build_sampler("world-teacher"), items, [None] * 2, settings, "compact")]


def _scores(response) -> list[list[float]]:
    return [list(s) for s in response.get_predictions()["scores"]]


def test_mlflow_client_column_form_is_answered_like_the_row_form(client):
    columns = {"inputs": {"query": [q for q, _ in ITEMS], "responses": [r for _, r in ITEMS]}, "params": {"k": 3}}
    by_columns = client.invoke(json.dumps(columns))  # a str body is sent as is
    by_records = client.invoke([{"query": q, "responses": r} for q, r in ITEMS], params={"k": 3})  # {"inputs": [...]}
    by_split = client.invoke(pd.DataFrame([{"query": q, "responses": r} for q, r in ITEMS]), params={"k": 3})
    assert _scores(by_columns) == _scores(by_records) == _scores(by_split) == _expected(3)
    row = by_columns.get_predictions().iloc[1]
    assert row["method"] == "voting" and row["n_parsed"] == 3 and row["n_failed"] == 0 and len(row["votes"]) == 3


def test_dataframe_records_and_instances_match_and_k_meta_zero_is_voting(server):
    records = [{"query": q, "responses": r} for q, r in ITEMS]
    answers = [
        httpx.post(f"{server.url}/invocations", json={form: records, "params": {"k": 2, "k_meta": 0}}, timeout=60)
        for form in ("dataframe_records", "instances")
    ]
    assert [a.status_code for a in answers] == [200, 200], answers[0].text
    assert [[p["scores"] for p in a.json()["predictions"]] for a in answers] == [_expected(2)] * 2


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"inputs": {"query": ["a ?", "b ?"], "responses": [["x"]]}}, "inputs.responses"),
        ({"inputs": [{"query": "a ?", "responses": []}]}, "responses"),
        ({"inputs": [{"query": "a ?", "responses": ["x"]}], "params": {"k": 0}}, "params.k"),
        ({"inputs": [{"query": "a ?", "responses": ["x"]}], "params": {"top_p": 1}}, "params"),
        ({"inputs": [], "dataframe_records": []}, "body"),
        ({"dataframe_split": {"columns": ["query"]}}, "dataframe_split"),
        ([1, 2], "body"),
    ],
)
def test_a_bad_mlflow_body_is_a_400_naming_the_field(server, body, param):
    resp = httpx.post(f"{server.url}/invocations", json=body, timeout=30)
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["param"] == param, resp.text
