"""A service failure deep in a client library becomes one message naming the service, its URL and the fix
(tasks/service_errors.py); ``grm doctor``'s lines (tasks/service_checks.py); the bounded MLflow retries."""

from __future__ import annotations

import httpx
import pytest
import requests
from mlflow.exceptions import MlflowException

from tasks import prefect_env, service_checks
from tasks.service_errors import ServiceError, explain

ENV = {"MLFLOW_TRACKING_URI": "http://mlflow.example:5000", "PREFECT_API_URL": "http://prefect.example:4200/api"}


def _wrapped(inner: BaseException) -> RuntimeError:
    """``inner`` two levels down a cause chain, as a stage failure raised through Prefect would carry it."""
    try:
        try:
            raise inner
        except BaseException as exc:
            raise ValueError("stage failed") from exc
    except ValueError as outer:
        try:
            raise RuntimeError("flow failed") from outer
        except RuntimeError as top:
            return top


@pytest.mark.parametrize(
    ("exc", "service", "target", "problem"),
    [
        # MLflow's REST client after its retries: the URL is in the message
        (
            MlflowException(
                "API request to http://10.0.0.5:5000/api/2.0/mlflow/runs/create failed with exception "
                "HTTPConnectionPool(host='10.0.0.5', port=5000): Max retries exceeded with url: /api/2.0/mlflow/runs/"
                "create (Caused by NewConnectionError(... [Errno 111] Connection refused'))"
            ),
            "mlflow",
            "http://10.0.0.5:5000",
            "is not reachable (connection refused)",
        ),
        # the basic-auth app refusing the password: the URL comes from MLFLOW_TRACKING_URI
        (
            MlflowException("API request to endpoint /api/2.0/mlflow/runs/create failed with error code 401 != 200."),
            "mlflow",
            "http://mlflow.example:5000",
            "refuses the credentials (HTTP 401)",
        ),
        # requests directly (MLflow's artifact download path)
        (
            requests.exceptions.ConnectionError(
                "HTTPConnectionPool(host='127.0.0.1', port=5001): Max retries exceeded (Connection refused)"
            ),
            "mlflow",
            "http://127.0.0.1:5001",
            "is not reachable (connection refused)",
        ),
        # Prefect's client (httpx)
        (httpx.ConnectError("All connection attempts failed"), "prefect", ENV["PREFECT_API_URL"], "is not reachable"),
    ],
)
def test_a_client_library_failure_names_the_service_url_and_fix(exc, service, target, problem):
    for raised in (exc, _wrapped(exc)):  # found at the top or down the cause chain
        err = explain(raised, ENV)
        assert isinstance(err, ServiceError)
        assert (err.service, err.target) == (service, target)
        assert err.problem.startswith(problem)
        assert err.fix and "fix: " in str(err)


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("a bug"),
        MlflowException("RESOURCE_DOES_NOT_EXIST: run 'x' not found"),  # an answer, not an outage
        ConnectionRefusedError(111, "Connection refused"),  # a bare socket error names no service
    ],
)
def test_other_errors_are_not_service_failures_and_keep_their_traceback(exc):
    assert explain(_wrapped(exc), ENV) is None


def test_an_s3_client_failure_names_the_dvc_remote_and_the_fix():
    exceptions = pytest.importorskip("botocore.exceptions", reason="botocore comes with dvc-s3 (extra: team)")
    cases = [
        (exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:8333/dvc?list-type=2"), "is not reachable"),
        (exceptions.NoCredentialsError(), "has no credentials"),
    ]
    for code, problem in (
        ("SignatureDoesNotMatch", "refuses the credentials (SignatureDoesNotMatch)"),
        ("InvalidAccessKeyId", "refuses the credentials (InvalidAccessKeyId)"),
        ("NoSuchBucket", "names a bucket that does not exist"),
    ):
        cases.append((exceptions.ClientError({"Error": {"Code": code, "Message": "no"}}, "ListObjectsV2"), problem))
    for exc, problem in cases:
        err = explain(_wrapped(exc), {"GRM_DVC_REMOTE": "s3://dvc/store"})
        assert err is not None and (err.service, err.target) == ("dvc", "s3://dvc/store")
        assert err.problem.startswith(problem) and err.fix
    endpoint = explain(cases[0][0], {})
    assert endpoint is not None and endpoint.problem == "is not reachable (endpoint http://127.0.0.1:8333)"
    missing_object = exceptions.ClientError({"Error": {"Code": "NoSuchKey", "Message": "no"}}, "GetObject")
    assert explain(missing_object, {}) is None  # an answer about one object, not an outage


def test_doctor_lines_say_ok_or_fail_with_the_fix():
    ok = service_checks.Check("tracking", "http://h:5000", True, "mlflow 3.17.2, credentials accepted")
    bad = service_checks.Check("dvc", "s3://b/p", False, "is not reachable", "start the object store")
    assert ok.line() == "ok   tracking http://h:5000: mlflow 3.17.2, credentials accepted"
    assert bad.line() == "FAIL dvc      s3://b/p: is not reachable; fix: start the object store"
    assert "\n" not in bad.line()


def test_runs_bound_mlflow_retries_to_about_a_minute(tmp_path):
    env = prefect_env.defaults_for(tmp_path)
    retries, factor = int(env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]), int(env["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"])
    # urllib3 sleeps factor * 2 ** (n - 1) before retry n >= 2: a restart of some seconds is ridden out ...
    waits = [0] + [factor * 2 ** (n - 1) for n in range(2, retries + 1)]
    assert 30 <= sum(waits) <= 90  # ... and a server that stays down fails the stage within ~1 min, not ~4
    assert int(env["MLFLOW_HTTP_REQUEST_TIMEOUT"]) < 120  # MLflow's default


def test_deployment_work_pools_come_from_prefect_yaml(tmp_path):
    (tmp_path / "prefect.yaml").write_text(
        "deployments:\n  - name: a\n    work_pool: {name: pool-a}\n  - name: b\n"
        "  - name: c\n    work_pool: {name: pool-a}\n"
    )
    assert service_checks.deployment_work_pools(tmp_path) == ["pool-a"]
    assert service_checks.deployment_work_pools(tmp_path / "nowhere") == []


def test_a_folder_remote_is_probed_by_writing_and_nothing_is_left(tmp_path):
    check = service_checks.check_dvc(tmp_path, str(tmp_path / "remote"))
    assert check.ok and "created on the first push" in check.detail
    (tmp_path / "remote").mkdir()
    check = service_checks.check_dvc(tmp_path, str(tmp_path / "remote"))
    assert check.ok and check.detail == "a folder, writable"
    assert list((tmp_path / "remote").iterdir()) == []
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")  # (a read-only folder would not stop root, who runs CI here)
    check = service_checks.check_dvc(tmp_path, str(blocked))
    assert not check.ok and "is not writable" in check.detail and check.fix


def test_a_probe_that_breaks_midway_is_a_fail_line_of_its_own_service_not_a_crash():
    def dropped():
        raise requests.exceptions.ReadTimeout("read timed out")

    check = service_checks._guarded("prefect", "http://h:4200/api", dropped)
    assert not check.ok and check.detail == "is not reachable (timed out)" and "PREFECT_API_URL" in check.fix

    def bug():
        raise KeyError("x")

    check = service_checks._guarded("dvc", "s3://b/p", bug)
    assert not check.ok and "KeyError" in check.detail
