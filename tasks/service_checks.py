"""``grm doctor``'s checks, one per service, each bounded by short timeouts and no long retries.

- tracking: the MLflow store (embedded SQLite, or a server: reachable, version compatible with this client, the
  basic-auth credentials accepted, writable: a probe experiment created and deleted, and a probe artifact written
  and deleted through the server's proxied artifact store when it serves one);
- registry: every registered model's aliases read (``champion``/``challenger``);
- prefect: the temporary embedded server, or ``PREFECT_API_URL``: reachable, version compatible, the auth string
  accepted, the work pools ``prefect.yaml``'s deployments name present;
- dvc: the DVC remote (``$GRM_DVC_REMOTE`` else ``.dvc/config``): a folder, or ``s3://`` with ``endpointurl``:
  reachable, the credentials accepted, a probe object written and deleted.

``preflight(...)`` runs the cheap part (reachable, credentials) for the services a command needs and raises a
``tasks.service_errors.ServiceError`` for the first failure, so ``grm run`` fails in seconds, not after minutes of
retries. Embedded stores and folder remotes cost nothing there (no network).

Each check returns a ``Check``; ``Check.line()`` is what ``grm doctor`` prints.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks import service_errors
from tasks.remote_probe import PROBE_PREFIX, probe_remote, remote_fs  # noqa: F401  (re-exported)
from tasks.service_errors import FIXES, ServiceError

TIMEOUT_S = 5.0  # one request; a service that needs longer to answer a health probe is not healthy
SERVICE_OF = {"tracking": "mlflow", "registry": "mlflow", "prefect": "prefect", "dvc": "dvc"}  # line -> FIXES key
# MLflow's own client, where a check uses it: no retries and a short timeout (defaults: 7 retries, ~4 min)
BOUNDED_MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(TIMEOUT_S))}


@dataclass(frozen=True)
class Check:
    """The outcome for one service: ``ok``, what was checked (``detail``) and, on failure, the ``fix``."""

    service: str  # tracking | registry | prefect | dvc
    target: str  # URL or folder
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        """``ok   tracking  http://...: detail`` or ``FAIL ... : detail; fix: ...`` (one line)."""
        head = f"{'ok' if self.ok else 'FAIL':<4} {self.service:<8} {self.target}: {self.detail}"
        return head if self.ok or not self.fix else f"{head}; fix: {self.fix}"


def _fail(service: str, target: str, err: ServiceError | str, fix: str = "") -> Check:
    if isinstance(err, ServiceError):
        return Check(service, target, False, err.problem, err.fix or fix)
    return Check(service, target, False, err, fix)


def _http(method: str, url: str, **kwargs: Any) -> Any:  # -> requests.Response
    import requests

    return requests.request(method, url, timeout=TIMEOUT_S, allow_redirects=False, **kwargs)


def _unreachable(service: str, target: str, exc: Exception) -> ServiceError:
    return ServiceError(
        service, target, f"is not reachable ({service_errors._short(exc)})", fix=FIXES[service, "down"]
    )


def _major(version: str) -> str:
    return version.strip().strip('"').split(".")[0]


@contextmanager
def bounded_mlflow_env() -> Iterator[None]:
    """MLflow's client without retries and with a short timeout inside (restored afterwards)."""
    before = {k: os.environ.get(k) for k in BOUNDED_MLFLOW_ENV}
    os.environ.update(BOUNDED_MLFLOW_ENV)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ---- MLflow ----------------------------------------------------------------------------------------------------
def mlflow_auth(env: Mapping[str, str]) -> dict[str, Any]:
    """``requests`` keyword arguments carrying the MLflow client's credentials (basic auth or a bearer token) and
    its TLS choice (``MLFLOW_TRACKING_INSECURE_TLS``)."""
    kwargs: dict[str, Any] = {}
    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("1", "true"):
        kwargs["verify"] = False
    if env.get("MLFLOW_TRACKING_USERNAME"):
        kwargs["auth"] = (env["MLFLOW_TRACKING_USERNAME"], env.get("MLFLOW_TRACKING_PASSWORD", ""))
    elif env.get("MLFLOW_TRACKING_TOKEN"):
        kwargs["headers"] = {"Authorization": f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"}
    return kwargs


def _refused(service: str, target: str, status: int, what: str) -> ServiceError:
    return ServiceError(
        service, target, f"refuses the credentials (HTTP {status} on {what})", fix=FIXES[service, "auth"]
    )


def mlflow_server_version(uri: str, env: Mapping[str, str]) -> str:
    """The server's version after checking it answers and accepts the credentials.

    Raises:
        ServiceError: not reachable, not an MLflow server, or the credentials refused.
    """
    base = uri.rstrip("/")
    try:
        health = _http("GET", f"{base}/health", **{k: v for k, v in mlflow_auth(env).items() if k == "verify"})
    except Exception as exc:
        raise _unreachable("mlflow", uri, exc) from None
    if health.status_code != 200:
        raise ServiceError(
            "mlflow", uri, f"answers HTTP {health.status_code} on /health: not an MLflow server",
            fix="check MLFLOW_TRACKING_URI (the server's address, e.g. http://127.0.0.1:5000)",
        )  # fmt: skip
    version = _http("GET", f"{base}/version", **mlflow_auth(env))
    if version.status_code in (401, 403):
        raise _refused("mlflow", uri, version.status_code, "/version")
    return version.text.strip() if version.status_code == 200 else "?"


def check_tracking(uri: str, env: Mapping[str, str] | None = None) -> Check:
    """The MLflow store at ``uri``: reachable, compatible, credentials accepted, writable."""
    env = os.environ if env is None else env
    if not uri.startswith(("http://", "https://")):
        return _check_local_tracking(uri)
    import mlflow

    try:
        server = mlflow_server_version(uri, env)
    except ServiceError as err:
        return _fail("tracking", uri, err)
    if server != "?" and _major(server) != _major(mlflow.__version__):
        client = mlflow.__version__
        return _fail(
            "tracking", uri, f"server runs mlflow {server}, this client is {client} (major versions differ)",
            f"install mlflow=={server} here, or run the server with mlflow {client}",
        )  # fmt: skip
    base, auth = uri.rstrip("/"), mlflow_auth(env)
    name = f"{PROBE_PREFIX}-{uuid.uuid4().hex[:12]}"
    created = _http("POST", f"{base}/api/2.0/mlflow/experiments/create", json={"name": name}, **auth)
    if created.status_code in (401, 403):
        return _fail(
            "tracking", uri, f"mlflow {server}; the account may not create experiments (HTTP {created.status_code})",
            "grant the account the right to create experiments (an admin: MLflow's basic-auth users/permissions)",
        )  # fmt: skip
    if created.status_code != 200:
        return _fail(
            "tracking", uri, f"creating an experiment failed: HTTP {created.status_code} {created.text[:200]}"
        )
    _http("POST", f"{base}/api/2.0/mlflow/experiments/delete", json=created.json(), **auth)
    artifacts = _probe_proxied_artifacts(base, name, auth)
    if artifacts.startswith("FAIL "):
        return _fail(
            "tracking", uri, f"mlflow {server}, credentials accepted; {artifacts[5:]}",
            "check the server's --artifacts-destination (bucket exists) and the object store keys the server holds",
        )  # fmt: skip
    return Check("tracking", uri, True, f"mlflow {server}, credentials accepted, writable ({artifacts})")


def _probe_proxied_artifacts(base: str, name: str, auth: Mapping[str, Any]) -> str:
    """Write and delete one object through the server's artifact proxy (``mlflow-artifacts``)."""
    url = f"{base}/api/2.0/mlflow-artifacts/artifacts/{PROBE_PREFIX}/{name}.txt"
    try:
        put = _http("PUT", url, data=b"probe", **auth)
    except Exception as exc:
        return f"FAIL the artifact proxy did not answer ({service_errors._short(exc)})"
    if put.status_code in (404, 501):  # --no-serve-artifacts: clients write the artifact store themselves
        return "artifacts not proxied by the server: not checked"
    if put.status_code != 200:
        return f"FAIL the artifact store refuses a write: HTTP {put.status_code} {put.text[:200]}"
    _http("DELETE", url, **auth)
    return "experiment and proxied artifact written and deleted"


def _check_local_tracking(uri: str) -> Check:
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not db.exists():
            parent = next((p for p in db.parents if p.exists()), Path("/"))
            if os.access(parent, os.W_OK):
                return Check("tracking", uri, True, "embedded SQLite store; created on the first run")
            return _fail("tracking", uri, f"{parent} is not writable", "run from a project you can write to")
    from mlflow import MlflowClient

    try:
        client = MlflowClient(uri)
        client.set_experiment_tag("0", f"{PROBE_PREFIX}", "1")
        client.delete_experiment_tag("0", f"{PROBE_PREFIX}")
    except Exception as exc:
        return _fail("tracking", uri, f"the store cannot be written: {type(exc).__name__}: {str(exc)[:200]}")
    return Check("tracking", uri, True, "embedded store, writable")


def check_registry(uri: str, env: Mapping[str, str] | None = None) -> Check:
    """Every registered model and its aliases, read through MLflow's client (bounded)."""
    from mlflow import MlflowClient

    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return Check("registry", uri, True, "no registry yet (the embedded store is created on the first run)")
    try:
        with bounded_mlflow_env():
            models = MlflowClient(uri, registry_uri=uri).search_registered_models(max_results=100)
    except Exception as exc:
        err = service_errors.explain(exc, {**(env or os.environ), "MLFLOW_TRACKING_URI": uri})
        if err is not None:
            return _fail("registry", uri, err)
        return _fail("registry", uri, f"reading the registry failed: {type(exc).__name__}: {str(exc)[:200]}")
    if not models:
        return Check("registry", uri, True, "no registered model yet (the first gated run registers one)")
    parts = []
    for model in models:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(model.aliases.items())) or "no alias"
        parts.append(f"{model.name} ({aliases})")
    return Check("registry", uri, True, "aliases readable: " + "; ".join(parts))


# ---- Prefect ---------------------------------------------------------------------------------------------------
def prefect_headers(env: Mapping[str, str]) -> dict[str, str]:
    """The headers Prefect's client sends: ``PREFECT_API_AUTH_STRING`` (basic) or ``PREFECT_API_KEY`` (bearer)."""
    if env.get("PREFECT_API_AUTH_STRING"):
        return {"Authorization": "Basic " + base64.b64encode(env["PREFECT_API_AUTH_STRING"].encode()).decode()}
    if env.get("PREFECT_API_KEY"):
        return {"Authorization": f"Bearer {env['PREFECT_API_KEY']}"}
    return {}


def deployment_work_pools(project_dir: str | Path) -> list[str]:
    """The work pools ``prefect.yaml``'s deployments name (none without the file)."""
    path = Path(project_dir) / "prefect.yaml"
    if not path.is_file():
        return []
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    names = [((d or {}).get("work_pool") or {}).get("name") for d in doc.get("deployments") or []]
    return sorted({n for n in names if n})


def prefect_server_version(api_url: str, env: Mapping[str, str]) -> str:
    """The server's version after checking it answers and accepts the auth string.

    Raises:
        ServiceError: not reachable, not a Prefect API, or the credentials refused.
    """
    base = api_url.rstrip("/")
    try:
        health = _http("GET", f"{base}/health", headers=prefect_headers(env))
    except Exception as exc:
        raise _unreachable("prefect", api_url, exc) from None
    if health.status_code in (401, 403):
        raise _refused("prefect", api_url, health.status_code, "/health")
    if health.status_code != 200:
        raise ServiceError(
            "prefect", api_url, f"answers HTTP {health.status_code} on /health: not a Prefect API",
            fix="PREFECT_API_URL is the server's address followed by /api (e.g. http://127.0.0.1:4200/api)",
        )  # fmt: skip
    version = _http("GET", f"{base}/admin/version", headers=prefect_headers(env))
    if version.status_code in (401, 403):
        raise _refused("prefect", api_url, version.status_code, "/admin/version")
    return str(version.json()) if version.status_code == 200 else "?"


def check_prefect(project_dir: str | Path = ".", env: Mapping[str, str] | None = None) -> Check:
    """The Prefect API a run uses: embedded, or ``PREFECT_API_URL`` (reachable, compatible, auth, work pools)."""
    env = os.environ if env is None else env
    api_url = env.get("PREFECT_API_URL", "")
    if not api_url:
        home = env.get("PREFECT_HOME", str(Path(project_dir).resolve() / ".prefect"))
        return Check("prefect", "embedded", True, f"a temporary server starts with each run (PREFECT_HOME={home})")
    import prefect

    try:
        server = prefect_server_version(api_url, env)
    except ServiceError as err:
        return _fail("prefect", api_url, err)
    if server != "?" and _major(server) != _major(prefect.__version__):
        return _fail(
            "prefect", api_url, f"server runs prefect {server}, this client is {prefect.__version__}",
            f"install prefect=={server} here, or run the server with prefect {prefect.__version__}",
        )  # fmt: skip
    missing = []
    for pool in deployment_work_pools(project_dir):
        if _http("GET", f"{api_url.rstrip('/')}/work_pools/{pool}", headers=prefect_headers(env)).status_code == 404:
            missing.append(pool)
    if missing:
        return _fail(
            "prefect", api_url, f"prefect {server}; work pool {', '.join(missing)} (named in prefect.yaml) is missing",
            " && ".join(f"prefect work-pool create {p} --type process" for p in missing) + " (or `grm team up`)",
        )  # fmt: skip
    pools = deployment_work_pools(project_dir)
    return Check(
        "prefect", api_url, True,
        f"prefect {server}, credentials accepted" + (f", work pool {', '.join(pools)} present" if pools else ""),
    )  # fmt: skip


# ---- DVC remote ------------------------------------------------------------------------------------------------


def check_dvc(project_dir: str | Path = ".", remote: str | None = None) -> Check:
    """The DVC remote of the project (``$GRM_DVC_REMOTE`` first): reachable, credentials, writable."""
    from tasks import versioning

    try:
        conf = versioning.remote_config(project_dir, remote)
    except Exception as exc:  # a broken .dvc/config
        return _fail("dvc", str(project_dir), f"reading the DVC config failed: {exc}", "fix .dvc/config")
    try:
        return Check("dvc", str(conf["url"]), True, probe_remote(conf))
    except ServiceError as err:
        return _fail("dvc", str(conf["url"]), err)


# ---- all of them -----------------------------------------------------------------------------------------------
def run_checks(
    project_dir: str | Path = ".", tracking_uri: str | None = None, remote: str | None = None
) -> list[Check]:
    """Every check, in the order ``grm doctor`` prints them (the registry only when tracking is ok)."""
    from tasks.mlflow_store import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, project_dir)
    checks = [_guarded("tracking", uri, lambda: check_tracking(uri))]
    if checks[0].ok:
        checks.append(_guarded("registry", uri, lambda: check_registry(uri)))
    else:
        checks.append(Check("registry", uri, False, "not checked: the tracking store failed", "fix tracking first"))
    checks.append(
        _guarded("prefect", os.environ.get("PREFECT_API_URL", "embedded"), lambda: check_prefect(project_dir))
    )
    checks.append(_guarded("dvc", "(the DVC remote)", lambda: check_dvc(project_dir, remote)))
    return checks


def _guarded(service: str, target: str, check: Any) -> Check:
    """``check()``, or a FAIL line for an error it did not expect (a connection dropped between two probes)."""
    try:
        return check()
    except Exception as exc:
        import requests

        if isinstance(exc, requests.RequestException):  # this module's own probes (MLflow and Prefect alike)
            return _fail(service, target, _unreachable(SERVICE_OF[service], target, exc))
        err = service_errors.explain(exc)
        if err is not None:
            return _fail(service, target, err)
        return _fail(
            service, target, f"the check failed: {type(exc).__name__}: {str(exc)[:200]}", "rerun `grm doctor`"
        )


def preflight(
    services: tuple[str, ...],
    project_dir: str | Path = ".",
    tracking_uri: str | None = None,
    remote: str | None = None,
) -> None:
    """Fail fast (``ServiceError``) when a service a command needs is down or refuses the credentials.

    Only servers are probed (one or two short requests each); embedded stores, the temporary Prefect server and
    folder remotes pass without a probe. ``services``: any of ``mlflow``, ``prefect``, ``dvc``.
    """
    env = os.environ
    if "mlflow" in services:
        from tasks.mlflow_store import resolve_tracking_uri

        uri = resolve_tracking_uri(tracking_uri, project_dir)
        if uri.startswith(("http://", "https://")):
            mlflow_server_version(uri, env)
    if "prefect" in services and env.get("PREFECT_API_URL"):
        prefect_server_version(env["PREFECT_API_URL"], env)
    if "dvc" in services:
        from tasks import versioning

        conf = versioning.remote_config(project_dir, remote)
        if "://" in str(conf["url"]):
            probe_remote(conf, write=False)
