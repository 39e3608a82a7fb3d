"""The tracking URI a run's environment names (``.grm/services.env``, ``MLFLOW_TRACKING_URI=...``) survives
logging the pyfunc GRM: mlflow's ``_use_tracking_uri`` restores its in-process URI, and when that was never set it
deletes the variable, so the rest of ``grm run`` (the run links) fell back to the embedded store."""

from __future__ import annotations

import os


def test_logging_the_pyfunc_grm_keeps_the_tracking_uri_the_environment_set(tmp_path, monkeypatch):
    import mlflow
    from mlflow.tracking._tracking_service import utils

    from grm.integrations.mlflow import log_grm_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # as configure_defaults puts .grm/services.env's value there
    monkeypatch.setattr(utils, "_tracking_uri", None)  # a fresh process: mlflow's in-process URI was never set
    # ... and no experiment made active by an earlier test of this process (start_run(run_id) checks it)
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("uri-env"))
    info = log_grm_model("world-teacher", template="compact", run_id=run.info.run_id, tracking_uri=uri)
    assert info.model_uri
    assert os.environ.get("MLFLOW_TRACKING_URI") == uri
