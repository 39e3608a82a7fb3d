"""The champion's score over time: one long-lived MLflow run per registered model in experiment ``drift``.

Every nightly evaluation appends one point to the metric history of run ``drift-{model name}``: each accuracy
cell of the evaluation as ``drift/{cell}`` (step = days since 1970-01-01 UTC, so the MLflow UI's chart of that run
plots the score against the day), plus ``drift/champion_version`` and the day's data version as a tag
(``grm.drift.{day}``), so a jump in the chart can be traced to a new champion or to new data. The evaluation's own
run gets the same ``drift/...`` values and ``drift/delta/...`` against the previous point.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

EXPERIMENT = "drift"
MODEL_TAG = "grm.drift_model"


def drift_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """The accuracy cells of an evaluation as ``drift/...`` names (``eval/world/champion/greedy_k1/accuracy`` ->
    ``drift/world/champion/greedy_k1/accuracy``).

    Example:
        >>> drift_metrics({"eval/world/champion/greedy_k1/accuracy": 0.5, "eval/world/champion/n": 3.0})
        {'drift/world/champion/greedy_k1/accuracy': 0.5}
    """
    return {"drift/" + k.removeprefix("eval/"): float(v) for k, v in metrics.items() if k.endswith("/accuracy")}


def _drift_run(client: Any, experiment_id: str, model_name: str) -> str:
    runs = client.search_runs([experiment_id], f"tags.`{MODEL_TAG}` = '{model_name}'", max_results=1)
    if runs:
        return runs[0].info.run_id
    tags = {MODEL_TAG: model_name, "mlflow.note.content": f"Nightly score of `{model_name}`'s champion, by day."}
    return client.create_run(experiment_id, run_name=f"drift-{model_name}", tags=tags).info.run_id


def log_drift(
    tracker: Any, eval_run_id: str, model_name: str, version: str | None, data_md5: str, metrics: Mapping[str, float]
) -> dict[str, float]:
    """Append today's point to ``drift-{model_name}`` and log it (with deltas) on the evaluation run.

    Returns:
        The metrics logged on the evaluation run.
    """
    if not tracker.enabled:
        return {}
    from mlflow.entities import Metric

    from tasks.tracking import Tracker

    client = tracker.client()
    exp_id = Tracker(tracker.uri, EXPERIMENT).experiment_id()  # created beside the store's other experiments
    run_id = _drift_run(client, exp_id, model_name)
    points = drift_metrics(metrics)
    if version is not None:
        points["drift/champion_version"] = float(version)
    previous = client.get_run(run_id).data.metrics  # the latest value of each drift metric
    now = time.time()
    day = int(now // 86400)
    client.log_batch(run_id, metrics=[Metric(k, v, int(now * 1000), day) for k, v in points.items()])
    client.set_tag(run_id, f"grm.drift.{time.strftime('%Y-%m-%d', time.gmtime(now))}", data_md5)
    on_eval = dict(points)
    on_eval.update(
        {k.replace("drift/", "drift/delta/", 1): v - previous[k] for k, v in points.items() if k in previous}
    )
    tracker.log_metrics(eval_run_id, on_eval)
    tracker.set_tags(eval_run_id, {"grm.drift_run": run_id})
    return on_eval
