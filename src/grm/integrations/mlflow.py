"""MLflow integration: the GRM as a pyfunc model (``log_grm_model``) and a served GRM as a ``mlflow.genai`` judge
(``grm_scorer``). mlflow is imported lazily, inside the functions (a per-file exception to the core's layering rule:
nothing in the core imports ``grm.integrations``).

The pyfunc is a *model from code* (``grm/integrations/mlflow_pyfunc_model.py``), so nothing is pickled: it loads the
GRM (a logged model directory, or a sampler spec such as ``world-teacher``) and the optional meta RM in
``load_context`` and scores with the same code as ``grm serve`` (``grm.serving.scoring``). Serve it with::

    mlflow models serve -m models:/grm-pyfunc@champion --env-manager local -p 5001
    curl -X POST localhost:5001/invocations -H 'Content-Type: application/json' \\
      -d '{"dataframe_records": [{"query": "3 + 18 ?", "responses": ["maybe 31", "21"]}], "params": {"k": 4}}'

For ``registry.gate`` (tasks/registry.py), after ``promote`` registered the GRM::

    from grm.integrations.mlflow import log_grm_model
    log_grm_model(model_dir, meta_rm_dir=meta_dir, run_id=run_id, template=cfg.sampling.template,
                  registered_model_name="grm-pyfunc", alias=decision["alias"], tracking_uri=tracker.uri)

(``models:/grm@champion`` stays the raw weights that ``grm serve --model champion`` downloads; the pyfunc is its
own registered model with the same alias.)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

PYFUNC_FILE = Path(__file__).with_name("mlflow_pyfunc_model.py")
PARAMS = {"k": 4, "k_meta": 0, "temperature": 0.5, "seed": 0, "max_new_tokens": 512}


def signature() -> Any:
    """``{query: str, responses: list[str]}`` -> ``{scores, votes, best, n_parsed, n_failed, method}``, with
    ``k``, ``k_meta`` (0 = Voting@k), ``temperature``, ``seed``, ``max_new_tokens`` as params."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, DataType, ParamSchema, ParamSpec, Schema

    inputs = Schema([ColSpec(DataType.string, "query"), ColSpec(Array(DataType.string), "responses")])
    outputs = Schema(
        [
            ColSpec(Array(DataType.double), "scores"),
            ColSpec(Array(DataType.double), "votes"),
            ColSpec(DataType.long, "best"),
            ColSpec(DataType.long, "n_parsed"),
            ColSpec(DataType.long, "n_failed"),
            ColSpec(DataType.string, "method"),
        ]
    )
    kinds = {"k": "long", "k_meta": "long", "temperature": "double", "seed": "long", "max_new_tokens": "long"}
    params = ParamSchema([ParamSpec(name, kinds[name], default) for name, default in PARAMS.items()])
    return ModelSignature(inputs=inputs, outputs=outputs, params=params)


def log_grm_model(
    model: str | Path,
    *,
    meta_rm_dir: str | Path | None = None,
    template: str = "deepseek-grm",
    name: str = "grm_pyfunc",
    run_id: str | None = None,
    registered_model_name: str | None = None,
    alias: str | None = None,
    tracking_uri: str | None = None,
    sampler_options: dict[str, Any] | None = None,
) -> Any:
    """Log the GRM (and its meta RM) as an MLflow pyfunc model.

    Args:
        model: a GRM model directory (logged as an artifact) or a sampler spec without files (``world-teacher``).
        meta_rm_dir: a trained meta RM (logged as an artifact; enables ``k_meta`` > 0).
        template: the prompt template the GRM was trained with.
        name: the logged model's name in the run.
        run_id: log into this run (default: the active run, or a new one).
        registered_model_name: also register it under this name (e.g. ``grm-pyfunc``).
        alias: give the registered version this alias (``champion``/``challenger``, as the gate decided), so that
            ``mlflow models serve -m models:/grm-pyfunc@champion`` serves it.
        tracking_uri: the MLflow store (default: mlflow's current one).
        sampler_options: ``build_sampler`` options stored in the model config (e.g. ``{"num_threads": 2}``).

    Returns:
        mlflow's ``ModelInfo``.
    """
    import mlflow

    artifacts: dict[str, str] = {}
    config: dict[str, Any] = {"template": template, "sampler_options": sampler_options or {}}
    if Path(model).is_dir():
        artifacts["grm"] = str(model)
    else:
        config["sampler"] = str(model)
    if meta_rm_dir is not None:
        artifacts["meta_rm"] = str(meta_rm_dir)
    kwargs = {
        "name": name,
        "python_model": str(PYFUNC_FILE),
        "artifacts": artifacts or None,
        "model_config": config,
        "signature": signature(),
        "registered_model_name": registered_model_name,
        "pip_requirements": [],  # served with --env-manager local, where grm is installed
    }
    # mlflow.set_tracking_uri also exports MLFLOW_TRACKING_URI to the environment; mlflow's own context manager
    # restores its in-process URI (set_tracking_uri(previous) would leave the default URI pinned in the environment)
    # but, when that was never set, deletes the variable even where the user (or .grm/services.env) had set it: the
    # rest of the run would fall back to the embedded store. The variable is put back as it was.
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    env_uri = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(tracking_uri or mlflow.get_tracking_uri()):
            with warnings.catch_warnings():
                # The signature is given explicitly (``signature()``), so mlflow's advice to add type hints or an input
                # example for signature inference does not apply; everything else it warns about still shows.
                warnings.filterwarnings(
                    "ignore", message=r".*Add type hints to the `predict` method", category=UserWarning
                )
                warnings.filterwarnings("ignore", message=r".*An input example was not provided", category=UserWarning)
                if run_id is not None:
                    with mlflow.start_run(run_id=run_id):
                        info = mlflow.pyfunc.log_model(**kwargs)
                else:
                    info = mlflow.pyfunc.log_model(**kwargs)
            if alias is not None and registered_model_name is not None:
                version = info.registered_model_version
                mlflow.MlflowClient().set_registered_model_alias(registered_model_name, alias, str(version))
            return info
    finally:
        if env_uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env_uri


def _query(inputs: Any) -> Any:
    if isinstance(inputs, str):
        return inputs
    if isinstance(inputs, dict):
        for key in ("query", "question", "prompt", "input", "messages"):
            if inputs.get(key):
                return inputs[key]
    raise ValueError(
        f"grm_scorer: cannot find the query in inputs {str(inputs)[:120]!r}; pass a string or a dict "
        "with 'query', 'question', 'prompt', 'input' or 'messages'"
    )


def _response(outputs: Any) -> str:
    if isinstance(outputs, str):
        return outputs
    if isinstance(outputs, dict):
        for key in ("response", "output", "answer", "content"):
            if isinstance(outputs.get(key), str):
                return outputs[key]
    return str(outputs)


def grm_scorer(
    url: str | None = None,
    *,
    name: str = "grm",
    k: int | None = None,
    k_meta: int | None = None,
    normalize: bool = True,
    api_key: str | None = None,
) -> Any:
    """A ``mlflow.genai`` scorer backed by a running ``grm serve``: ``Feedback(value, rationale=critique)``.

    ``value`` is the mean voted score of the output (1..10, or [0, 1] with ``normalize``); the rationale is the
    critique of the voted sample closest to that mean, and the metadata holds the votes and parse failures. A sample
    set that never parsed is a ``Feedback`` with an ``error``.

    Example::

        mlflow.genai.evaluate(data=[{"inputs": {"query": q}, "outputs": a}], scorers=[grm_scorer("http://...")])
    """
    from mlflow.entities import Feedback
    from mlflow.genai.scorers import scorer

    from grm.serving.client import ScoreClient

    client = ScoreClient(url, api_key=api_key)

    def judge(inputs: Any, outputs: Any) -> Any:
        answer = client.score(_query(inputs), [_response(outputs)], k=k, k_meta=k_meta, return_samples=True)
        meta = {"votes": answer["votes"], "k": answer["k"], "method": answer["method"]}
        meta["parse_failures"] = answer["parse_failures"]["count"]
        if answer["scores"] is None:
            return Feedback(name=name, error=f"no judgement parsed ({answer['parse_failures']})", metadata=meta)
        score = float(answer["scores"][0])
        voted = [s for s in answer["samples"] if s["voted"]]
        closest = min(voted, key=lambda s: abs(s["scores"][0] - score))
        value = (score - 1) / 9 if normalize else score
        return Feedback(name=name, value=value, rationale=closest["critique"], metadata=meta)

    return scorer(judge, name=name)
