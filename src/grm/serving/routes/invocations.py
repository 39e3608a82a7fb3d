"""``/invocations``: MLflow's scoring protocol (what ``mlflow models serve`` answers and MLflow's clients call), so an
MLflow client can use ``grm serve`` directly. Every body form MLflow's server documents is accepted and answered
alike (``{"predictions": [row, ...]}``, one row per item, the columns of the GRM's pyfunc model):

- records: ``{"dataframe_records": [{"query", "responses"}, ...]}``, ``{"inputs": [...]}``, ``{"instances": [...]}``;
- columns: ``{"inputs": {"query": [...], "responses": [[...], ...]}}`` (MLflow's own server refuses this form for
  the pyfunc: a list column does not become a tensor);
- split: ``{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`` (pandas ``to_dict("split")``).

``params`` (``k``, ``k_meta`` with 0 = Voting@k, ``temperature``, ``seed``, ``max_new_tokens``) are the pyfunc's.
``/ping`` and ``/version`` answer as MLflow's server does (``ScoringServerClient.wait_server_ready`` pings).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from grm.serving.completions import RequestError
from grm.serving.requests import ScoreItem, ScoreRequest
from grm.serving.routes.score import score_request
from grm.serving.routes.state import State, until_disconnect

router = APIRouter()

FORMS = ("dataframe_records", "dataframe_split", "inputs", "instances")
PARAMS = ("k", "k_meta", "temperature", "seed", "max_new_tokens")


@router.get("/ping", summary="MLflow's readiness check", response_class=PlainTextResponse)
async def ping() -> PlainTextResponse:
    return PlainTextResponse("\n")


@router.get("/version", summary="MLflow's version check", response_class=PlainTextResponse)
async def version(state: State) -> PlainTextResponse:
    return PlainTextResponse(f"grm serve ({state.config.model_name})")


@router.post("/invocations", summary="MLflow scoring protocol: records, columns or split; answers predictions")
async def invocations(body: Annotated[Any, Body()], request: Request, state: State) -> dict[str, Any]:
    req = score_request_of(mlflow_rows(body), body.get("params"))
    answer = await until_disconnect(request, score_request(req, state))
    return {"predictions": [prediction(r) for r in answer["results"]]}


def score_request_of(rows: list[dict[str, Any]], params: Any) -> ScoreRequest:
    """The ``/v1/score`` batch request the rows and params stand for (a 400 naming the first bad field)."""
    try:
        items = [ScoreItem(query=row.get("query"), responses=row.get("responses")) for row in rows]  # type: ignore[arg-type]
        return ScoreRequest(items=items, **_params(params))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if isinstance(p, str) and p.isidentifier() and p != "str")
        where = where if where in ("query", "responses") else f"params.{where}" if where in PARAMS else "inputs"
        raise RequestError(f"`{where}`: {first['msg']}.", param=where) from None


def mlflow_rows(body: Any) -> list[dict[str, Any]]:
    """The rows of an MLflow scoring body in any of its forms (a 400 naming the key when none fits)."""
    if not isinstance(body, dict) or sum(key in body for key in FORMS) != 1:
        raise RequestError(
            f"Send exactly one of {', '.join(FORMS)} (MLflow's scoring format), with optional `params`.", param="body"
        )
    key = next(key for key in FORMS if key in body)
    data = body[key]
    if key == "dataframe_split":
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("columns"), list)
            or not isinstance(data.get("data"), list)
        ):
            raise RequestError("`dataframe_split` needs `columns` and `data` lists.", param="dataframe_split")
        return [dict(zip(data["columns"], row, strict=False)) for row in data["data"] if isinstance(row, list)]
    if isinstance(data, dict):  # the column form: {"query": [...], "responses": [[...], ...]}
        return _columns(data, key)
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise RequestError(f"`{key}` must be a list of {{query, responses}} records or a dict of columns.", param=key)
    return data


def _columns(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    query, responses = data.get("query"), data.get("responses")
    if isinstance(query, str):  # one item written as columns of one value
        query, responses = [query], [responses]
    if not isinstance(query, list) or not isinstance(responses, list):
        raise RequestError(f"`{key}` columns need `query` and `responses` lists.", param=f"{key}.query")
    if len(query) != len(responses):
        raise RequestError(
            f"`{key}.responses` has {len(responses)} entries for {len(query)} queries; send one list per query.",
            param=f"{key}.responses",
        )
    return [{"query": q, "responses": r} for q, r in zip(query, responses, strict=True)]


def _params(params: Any) -> dict[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise RequestError("`params` must be an object.", param="params")
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise RequestError(f"`params.{unknown[0]}` is not a parameter; use {', '.join(PARAMS)}.", param="params")
    out = {name: params[name] for name in PARAMS if params.get(name) is not None}
    if out.get("k_meta") == 0:  # the pyfunc's spelling of Voting@k
        del out["k_meta"]
    return out


def prediction(result: dict[str, Any]) -> dict[str, Any]:
    """One item's row, as the GRM's MLflow pyfunc model predicts it."""
    votes = result["votes"]
    return {
        "scores": result["scores"],
        "votes": None if votes is None else [float(v) for v in votes],
        "best": -1 if result["best"] is None else result["best"],
        "n_parsed": result["n_parsed"],
        "n_failed": result["parse_failures"]["count"],
        "method": result["method"],
    }
