"""The team stack for real (issue 25, docs/team.md): ``grm team up`` starts PostgreSQL, SeaweedFS S3, the MLflow
server (basic-auth, artifacts proxied to S3) and the Prefect server + a process worker on 127.0.0.1 in a temporary
folder; the tiny pipeline runs through the ``spct-weekly`` deployment on that worker while the MLflow server and
the object store are restarted; a second clone of the project, configured against the same stack, sees the run and
the registry, pulls the data version from S3 and reruns it, and its gate compares against the shared champion.

Skipped, with the reason, where PostgreSQL (``apt-get install postgresql``) or ``weed`` (``pip install
'grm[team]'``) is missing. ``make test-team`` runs it alone, ``make test-services`` (CI) with the other service tests.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import REPO, make_project

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.services, pytest.mark.timeout(1500)]

BIN = Path(sys.executable).parent


def _missing() -> str | None:
    from grm.errors import UserError
    from tasks.team import objectstore, postgres

    for probe in (postgres.bin_dir, objectstore.weed_binary):
        try:
            probe()
        except UserError as exc:
            return str(exc)
    for module in ("psycopg2", "asyncpg", "boto3", "dvc_s3", "flask_wtf"):
        try:
            __import__(module)
        except ImportError:
            return f"python package {module} missing: pip install 'grm[team]'"
    return None


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_", "GRM_DVC"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    return env


def grm(args: list[str], cwd: Path, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
    """``grm ARGS`` from ``cwd`` (the project's .grm/services.env is read from there); output kept for the log."""
    proc = subprocess.run(
        [str(BIN / "grm"), *args], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )
    print(f"$ grm {' '.join(args)}  [rc {proc.returncode}]\n{proc.stdout}{proc.stderr[-3000:]}")  # noqa: T201
    if check:
        assert proc.returncode == 0, f"grm {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def prefect(args: list[str], cwd: Path, services: dict[str, str], timeout: float = 240) -> str:
    env = {**cli_env(), **services, "PREFECT_HOME": str(cwd / ".prefect")}
    proc = subprocess.run([str(BIN / "prefect"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"prefect {' '.join(args)} failed:\n{out[-4000:]}"
    return out


def project_of(path: Path) -> Path:
    project = make_project(path)
    for name in ("flows", "tasks"):
        (project / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copy(REPO / "prefect.yaml", project / "prefect.yaml")
    return project


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = _missing()
    if reason:
        pytest.skip(f"team stack unavailable: {reason}")
    state = tmp_path_factory.mktemp("team") / "state"
    yield state
    if (state / "stack.json").exists():
        grm(["team", "down", "--dir", str(state), "--purge"], cwd=REPO, check=False, timeout=180)


def flow_run_state(services: dict[str, str], flow_run_id: str) -> str:
    import urllib.request

    token = base64.b64encode(services["PREFECT_API_AUTH_STRING"].encode()).decode()
    req = urllib.request.Request(
        f"{services['PREFECT_API_URL']}/flow_runs/{flow_run_id}", headers={"Authorization": f"Basic {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.load(resp)["state_type"]


def restart_during_run(stack: Path, project: Path, client, flow_run_id: str, log: list[str]) -> None:
    """Once the flow run's MLflow run exists (stages are logging), restart the MLflow server, then the store."""
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and not _runs_of(client, flow_run_id):
        time.sleep(2)
    time.sleep(5)
    for service in ("mlflow", "objectstore"):
        out = grm(["team", "stop", service, "--dir", str(stack)], cwd=project)
        time.sleep(3)  # down for a few seconds: requests in flight fail and are retried
        grm(["team", "up", "--dir", str(stack), "--no-connect"], cwd=project)
        log.append(out.stdout.strip())


def _runs_of(client, flow_run_id: str) -> list:
    exp = client.get_experiment_by_name("spct_pipeline")
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], f"tags.`prefect.flow_run_id` = '{flow_run_id}'")


def test_tiny_pipeline_on_the_team_stack_survives_restarts_and_a_second_clone_shares_it(
    stack_dir: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from tasks import service_env
    from tasks.team import objectstore, stack

    first = project_of(tmp_path / "alice")
    up = grm(["team", "up", "--dir", str(stack_dir)], cwd=first)
    assert re.search(r"^mlflow\s+up\s+http://127\.0\.0\.1:\d+", up.stdout, re.M), up.stdout
    assert len(re.findall(r"^\w+\s+up\s", up.stdout, re.M)) == 5
    services = service_env.read(first)
    assert services["MLFLOW_TRACKING_URI"].startswith("http://127.0.0.1:")
    assert "AWS_SECRET_ACCESS_KEY" not in services  # MLflow proxies artifacts: clients hold no S3 keys
    dvc_config = (first / ".dvc" / "config").read_text()
    state = stack.load(stack_dir)
    assert "s3://grm-dvc/store" in dvc_config and state.s3_endpoint in dvc_config
    assert state.s3_secret_key not in dvc_config  # the keys are in .dvc/config.local only (never committed)
    assert state.s3_secret_key in (first / ".dvc" / "config.local").read_text()
    # idempotent: a second `up` starts nothing and keeps every endpoint
    again = grm(["team", "up", "--dir", str(stack_dir)], cwd=first)
    assert "started" not in again.stdout and service_env.read(first) == services

    doctor = grm(["doctor"], cwd=first)  # every configured service answers and accepts the stack's credentials
    assert [line.split()[:2] for line in doctor.stdout.splitlines() if line.strip()] == [
        ["ok", "tracking"], ["ok", "registry"], ["ok", "prefect"], ["ok", "dvc"]
    ], doctor.stdout  # fmt: skip

    os.environ.update({k: services[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")})
    try:
        client = MlflowClient(services["MLFLOW_TRACKING_URI"])
        prefect(["--no-prompt", "deploy", "--name", "spct-weekly"], first, services)
        params = json.dumps({"config_path": "tiny.yaml", "data": None})
        out = prefect(["deployment", "run", "spct_pipeline/spct-weekly", "--params", params], first, services)
        flow_run_id = re.search(r"UUID:\s*([0-9a-f-]{36})", out).group(1)
        restarts: list[str] = []
        restarter = threading.Thread(
            target=restart_during_run, args=(stack_dir, first, client, flow_run_id, restarts), daemon=True
        )
        restarter.start()
        deadline = time.monotonic() + 900
        while (kind := flow_run_state(services, flow_run_id)) not in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            assert time.monotonic() < deadline, f"flow run {flow_run_id} still {kind}"
            time.sleep(3)
        restarter.join(timeout=120)
        assert restarts == ["mlflow       stopped", "objectstore  stopped"], restarts
        worker_log = (stack_dir / "logs" / "worker.log").read_text()
        assert kind == "COMPLETED", f"flow run {flow_run_id}: {kind}\n{worker_log[-6000:]}"

        (run,) = _runs_of(client, flow_run_id)  # one run: nothing logged twice across the restarts
        assert run.info.status == "FINISHED"
        assert run.info.artifact_uri.startswith("mlflow-artifacts:/")
        s3 = objectstore.client("127.0.0.1", state.s3_ports, state.s3_access_key, state.s3_secret_key)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=objectstore.MLFLOW_BUCKET, MaxKeys=1000)["Contents"]]
        assert any(run.info.run_id in k and k.endswith("inputs/data.dvc") for k in keys), keys[:20]
        assert any(run.info.run_id in k and "model-grm/" in k for k in keys)
        assert not (first / "mlruns" / "artifacts").exists()  # nothing on local disk
        champion = client.get_model_version_by_alias("grm", "champion")
        assert champion.run_id == run.info.run_id
        assert len(client.search_model_versions("name = 'grm'")) == 1  # registered once
        md5 = yaml.safe_load((first / "data.dvc").read_text())["outs"][0]["md5"]
        assert run.data.tags["grm.data.dvc_md5"] == md5
        dvc_key = f"store/files/md5/{md5[:2]}/{md5[2:]}"
        assert s3.head_object(Bucket=objectstore.DVC_BUCKET, Key=dvc_key)["ContentLength"] > 0

        # a second clone (what git would carry: config, data.dvc, .dvc/config; no data, no keys, no stores)
        second = project_of(tmp_path / "bob")
        shutil.copy(first / "data.dvc", second / "data.dvc")
        (second / ".dvc").mkdir()
        shutil.copy(first / ".dvc" / "config", second / ".dvc" / "config")
        grm(["team", "up", "--dir", str(stack_dir)], cwd=second)
        assert service_env.read(second) == services
        out = grm(["reproduce", run.info.run_id], cwd=second)
        restored = json.loads(out.stdout)
        for name in ("train.jsonl", "val.jsonl", "test.jsonl"):
            assert (second / "data" / name).read_bytes() == (first / "data" / name).read_bytes()
        rerun = grm(["run", "--config", str(Path(restored["config"]).relative_to(second))], cwd=second)
        # its gate compared against the first clone's champion (same data, same model: it does not beat it)
        gate = re.search(r"^registry: .*$", rerun.stdout, re.M).group(0)
        assert f"grm v{champion.version} (champion)" in gate or f"champion v{champion.version}" in gate, gate
        assert client.get_model_version_by_alias("grm", "champion").version == champion.version
        assert not (second / "mlruns").exists() or not any((second / "mlruns").glob("**/artifacts"))
    finally:
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            os.environ.pop(key, None)

    status = grm(["team", "status", "--dir", str(stack_dir)], cwd=first)
    assert len(re.findall(r"^\w+\s+up\s", status.stdout, re.M)) == 5
    down = grm(["team", "down", "--dir", str(stack_dir)], cwd=first)
    assert down.stdout.count("stopped") == 5
    after = grm(["team", "status", "--dir", str(stack_dir)], cwd=first, check=False)
    assert after.returncode == 1 and after.stdout.count("DOWN") == 5
    doctor = grm(["doctor"], cwd=first, check=False)  # each stopped service is named, with its fix
    assert doctor.returncode == 2
    failed = {line.split()[1] for line in (doctor.stdout + doctor.stderr).splitlines() if line.startswith("FAIL")}
    assert {"tracking", "prefect", "dvc"} <= failed, doctor.stdout
