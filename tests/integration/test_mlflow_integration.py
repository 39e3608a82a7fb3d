"""grm.integrations.mlflow: the GRM as a pyfunc model (logged, loaded, and served by `mlflow models serve`) and a
served GRM as an mlflow.genai scorer. The world teacher stands in for a trained GRM (no weights to log)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from grm.sampling import build_sampler
from grm.serving.scoring import ScoreSettings, make_item, score_alone

ITEMS = [("3 + 18 ?", ["maybe 31", "21"]), ("11 + 8 ?", ["19", "17"])]


@pytest.fixture
def logged_model(tmp_path, monkeypatch):
    import mlflow

    from grm.integrations.mlflow import log_grm_model

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("grm-pyfunc-test")
    with mlflow.start_run() as run:
        run_id = run.info.run_id
    info = log_grm_model(
        "world-teacher",
        template="compact",
        run_id=run_id,
        registered_model_name="grm-pyfunc",
        alias="champion",
        tracking_uri=uri,
    )
    assert info.registered_model_version is not None
    return "models:/grm-pyfunc@champion"


def _expected(k: int) -> list[list[float]]:
    settings = ScoreSettings(k, None, 0.5, 0, 512)
    items = [make_item(q, r) for q, r in ITEMS]
    return [r["scores"] for r in score_alone(build_sampler("world-teacher"), items, [None, None], settings, "compact")]


@pytest.mark.slow
def test_pyfunc_model_predicts_like_the_server_code(logged_model):
    import mlflow

    model = mlflow.pyfunc.load_model(logged_model)
    assert [i.name for i in model.metadata.signature.inputs.inputs] == ["query", "responses"]
    frame = pd.DataFrame([{"query": q, "responses": r} for q, r in ITEMS])
    out = model.predict(frame, params={"k": 3})
    assert list(out["scores"]) == _expected(3)
    assert list(out["best"]) == [1, 0] and set(out["method"]) == {"voting"}
    with pytest.raises(Exception, match="meta RM"):
        model.predict(frame, params={"k": 3, "k_meta": 1})


@pytest.mark.slow
def test_mlflow_models_serve_answers(logged_model):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = os.path.join(os.path.dirname(sys.executable), "mlflow")
    bindir = os.path.dirname(sys.executable)  # mlflow runs `uvicorn` from PATH, as in an activated venv
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PATH": bindir + os.pathsep + os.environ["PATH"]}
    cmd = [exe, "models", "serve", "-m", logged_model, "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/ping", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "mlflow models serve did not come up"
            time.sleep(0.5)
        body = {"dataframe_records": [{"query": q, "responses": r} for q, r in ITEMS], "params": {"k": 3}}
        resp = httpx.post(f"{url}/invocations", json=body, timeout=60)
        assert resp.status_code == 200, resp.text
        preds = resp.json()["predictions"]
        assert [p["scores"] for p in preds] == _expected(3)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_grm_scorer_gives_feedback_with_the_critique():
    from mlflow.entities import Feedback

    from grm.integrations.mlflow import grm_scorer
    from grm.serving.app import AppConfig
    from grm.serving.server import start_in_thread

    server = start_in_thread(build_sampler("world-teacher"), config=AppConfig(template="compact"))
    try:
        judge = grm_scorer(server.url, k=4)
        fb = judge(inputs={"query": "3 + 18 ?"}, outputs="21")
        assert isinstance(fb, Feedback) and 0 <= fb.value <= 1 and "answer" in fb.rationale
        direct = httpx.post(f"{server.url}/v1/score", json={"query": "3 + 18 ?", "responses": ["21"], "k": 4}).json()
        assert fb.value == pytest.approx((direct["scores"][0] - 1) / 9)
        assert fb.metadata["votes"] == direct["votes"]
    finally:
        server.shutdown()


@pytest.mark.slow
def test_grm_serve_resolves_registry_aliases(tmp_path):
    """`grm serve --model champion` downloads the champion GRM and the meta RM registered with it (read after
    `repair_promotions`, under the registry lock, as the pipeline reads it: a stray meta-RM alias is removed)."""
    from grm_cli.models import ResolvedModel, resolve_model
    from tasks.tracking import Tracker, resolve_tracking_uri

    grm_dir, meta_dir = tmp_path / "g", tmp_path / "m"
    for d, text in ((grm_dir, "grm weights"), (meta_dir, "meta weights")):
        d.mkdir()
        (d / "model.safetensors").write_text(text)
    tracker = Tracker(resolve_tracking_uri(None, tmp_path), "t")
    run = tracker.start_run("r")
    client = tracker.client()
    grm_version, meta_version = tracker.register(run, grm_dir, "grm"), tracker.register(run, meta_dir, "grm-meta-rm")
    client.set_model_version_tag("grm", grm_version, "meta_rm_version", meta_version)  # linked, as the gate does
    client.set_registered_model_alias("grm", "champion", grm_version)
    client.set_registered_model_alias("grm-meta-rm", "champion", meta_version)
    client.set_registered_model_alias("grm-meta-rm", "challenger", meta_version)  # no GRM challenger: a stray alias
    got = resolve_model("champion", str(tmp_path))
    got_grm, got_meta = got.model, got.meta_rm
    assert (Path(got_grm) / "model.safetensors").read_text() == "grm weights"
    assert (Path(got_meta) / "model.safetensors").read_text() == "meta weights"
    assert resolve_model("world-teacher", str(tmp_path)) == ResolvedModel("world-teacher")
    with pytest.raises(LookupError, match="challenger"):
        resolve_model("challenger", str(tmp_path))
    assert tracker.alias_version("grm-meta-rm", "challenger") is None  # read after the pipeline's repair, as a gate
