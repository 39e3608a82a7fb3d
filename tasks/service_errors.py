"""A service the project needs (MLflow tracking, the Prefect API, the DVC remote) is down or refuses the credentials:
one ``ServiceError`` naming the service, its URL and the fix, instead of a traceback.

``explain(exc)`` reads an exception raised deep inside a client library (requests/urllib3 under MLflow, httpx under
Prefect, botocore/s3fs under DVC's S3 remote; the cause chain is walked, so a wrapper keeps its origin) and returns
the ``ServiceError`` it stands for, or None when it is not a service failure (a bug keeps its traceback).
``grm_cli.app.GrmGroup`` calls it once for every command: exit 2 and the message.

Example:
    >>> err = explain(ConnectionRefusedError(111, "Connection refused"), {"MLFLOW_TRACKING_URI": "http://h:5000"})
    >>> err is None  # a bare socket error names no service
    True
    >>> print(ServiceError("mlflow", "http://h:5000", "refuses the credentials (HTTP 401)", fix="set the password"))
    MLflow tracking server http://h:5000 refuses the credentials (HTTP 401)
      fix: set the password
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping

from grm.errors import UserError

SERVICES = {
    "mlflow": "MLflow tracking server",
    "prefect": "Prefect API",
    "dvc": "DVC remote",
}
FIXES = {
    ("mlflow", "down"): "start it (`grm team up`, or `mlflow server ...`) or point MLFLOW_TRACKING_URI at a running "
    "one (.grm/services.env); `grm doctor` checks every service",
    ("mlflow", "auth"): "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (.grm/services.env, written by "
    "`grm team up`) to an account of the server's basic-auth app",
    ("prefect", "down"): "start it (`grm team up`, or `prefect server start`) or unset PREFECT_API_URL to run on a "
    "temporary embedded server; `grm doctor` checks every service",
    ("prefect", "auth"): "set PREFECT_API_AUTH_STRING (user:password, as the server's PREFECT_SERVER_API_AUTH_STRING) "
    "in .grm/services.env",
    ("dvc", "down"): "start the object store (`grm team up`) or fix the remote's endpointurl "
    "(`dvc remote modify --local local endpointurl http://HOST:PORT`)",
    ("dvc", "auth"): "set the remote's keys: `dvc remote modify --local local access_key_id ...` and "
    "`... secret_access_key ...` (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in .grm/services.env)",
    ("dvc", "bucket"): "create the bucket (`grm team up` creates it) or fix the remote URL "
    "(`dvc remote modify local url s3://BUCKET/PATH`)",
}


class ServiceError(UserError):
    """A service is down, refuses the credentials or lacks something (CLI: exit 2 and this message).

    Args:
        service: ``mlflow``, ``prefect`` or ``dvc`` (a key of ``SERVICES``).
        target: the URL (or folder) the project uses for it.
        problem: what is wrong, e.g. ``is not reachable (connection refused)``.
        fix: how to fix it.
    """

    def __init__(self, service: str, target: str, problem: str, *, fix: str | None = None):
        self.service, self.target, self.problem = service, target, problem
        super().__init__(f"{SERVICES.get(service, service)} {target} {problem}", fix=fix)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += [x for x in getattr(e, "args", ()) if isinstance(x, BaseException)]  # urllib3 MaxRetryError.reason
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


_MLFLOW_URL = re.compile(r"API request to (https?://\S+?)/(?:api|ajax-api)/")
_HTTP_STATUS = re.compile(r"(?:error code|status code|HTTP) (401|403)\b")
_S3_AUTH = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidClientTokenId", "Forbidden")


def _name(e: BaseException) -> str:
    return type(e).__name__


def _mlflow_target(text: str, env: Mapping[str, str]) -> str:
    found = _MLFLOW_URL.search(text)
    return found.group(1) if found else env.get("MLFLOW_TRACKING_URI", "(MLFLOW_TRACKING_URI)")


def _short(e: BaseException) -> str:
    text = str(e)
    for needle in ("Connection refused", "Name or service not known", "timed out", "Connection reset"):
        if needle.lower() in text.lower():
            return needle.lower()
    if "All connection attempts failed" in text:  # httpx
        return "connection failed"
    return _name(e)


def explain(exc: BaseException, env: Mapping[str, str] | None = None) -> ServiceError | None:
    """The ``ServiceError`` that ``exc`` (or an exception in its cause chain) stands for; None if it is no service
    failure. ``env`` (default ``os.environ``) supplies a URL the exception does not name."""
    env = os.environ if env is None else env
    for e in _chain(exc):
        if isinstance(e, ServiceError):
            return e
        module = type(e).__module__ or ""
        text = str(e)
        if _name(e) == "MlflowException" or module.startswith("mlflow"):
            target = _mlflow_target(text, env)
            status = _HTTP_STATUS.search(text)
            if status:
                return ServiceError(
                    "mlflow", target, f"refuses the credentials (HTTP {status.group(1)})", fix=FIXES["mlflow", "auth"]
                )
            if "Max retries exceeded" in text or "Failed to establish a new connection" in text:
                return ServiceError("mlflow", target, f"is not reachable ({_short(e)})", fix=FIXES["mlflow", "down"])
        if module.startswith(("requests", "urllib3")) and _name(e) in ("ConnectionError", "MaxRetryError"):
            url = re.search(r"host='([^']+)', port=(\d+)", text)
            target = f"http://{url.group(1)}:{url.group(2)}" if url else _mlflow_target(text, env)
            return ServiceError("mlflow", target, f"is not reachable ({_short(e)})", fix=FIXES["mlflow", "down"])
        if module.startswith("httpx") and _name(e) in ("ConnectError", "ConnectTimeout"):
            target = env.get("PREFECT_API_URL", "(PREFECT_API_URL)")
            return ServiceError("prefect", target, f"is not reachable ({_short(e)})", fix=FIXES["prefect", "down"])
        if _name(e) == "PrefectHTTPStatusError" and re.search(r"'(401|403) ", text):
            target = env.get("PREFECT_API_URL", "(PREFECT_API_URL)")
            return ServiceError("prefect", target, "refuses the credentials", fix=FIXES["prefect", "auth"])
        if module.startswith(("botocore", "aiobotocore", "s3fs")):
            found = _s3_error(e, text, env)
            if found:
                return found
    return None


def _s3_error(e: BaseException, text: str, env: Mapping[str, str]) -> ServiceError | None:
    target = env.get("GRM_DVC_REMOTE") or env.get("AWS_ENDPOINT_URL") or "(the DVC remote)"
    if _name(e) in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"):
        endpoint = re.search(r'endpoint URL: "(https?://[^/"]+)', text)
        at = f" (endpoint {endpoint.group(1)})" if endpoint else ""
        return ServiceError("dvc", target, f"is not reachable{at}", fix=FIXES["dvc", "down"])
    if _name(e) in ("NoCredentialsError", "PartialCredentialsError"):
        return ServiceError("dvc", target, "has no credentials", fix=FIXES["dvc", "auth"])
    code = str(getattr(e, "response", {}).get("Error", {}).get("Code", "")) if hasattr(e, "response") else ""
    if code in _S3_AUTH:
        return ServiceError("dvc", target, f"refuses the credentials ({code})", fix=FIXES["dvc", "auth"])
    if code == "NoSuchBucket":
        return ServiceError("dvc", target, "names a bucket that does not exist", fix=FIXES["dvc", "bucket"])
    return None
