"""A project's settings for a team stack: ``.grm/services.env`` (tracking URI and account, Prefect API URL and
auth string; git-ignored, mode 0600) and its DVC remote ``s3://grm-dvc/<prefix>`` with the store's ``endpointurl``
in ``.dvc/config`` (committed: every clone shares it) and the S3 keys in ``.dvc/config.local`` (never in git).

Example (settings only; nothing is contacted):
    >>> from tasks.team.stack import StackState
    >>> s = StackState(ports={"mlflow": 5000, "prefect": 4200, "s3": 8333}, mlflow_password="pw", prefect_auth="a:b")
    >>> settings(s)["MLFLOW_TRACKING_URI"]
    'http://127.0.0.1:5000'
"""

from __future__ import annotations

from pathlib import Path

from grm.errors import UserError
from tasks import service_env
from tasks.team import mlflow_server, objectstore
from tasks.team.stack import StackState

DVC_PREFIX = "store"  # one content-addressed store for every project on the stack (objects never collide)


def settings(state: StackState) -> dict[str, str]:
    """The ``services.env`` lines of a project on ``state``'s stack (no S3 keys: MLflow proxies artifacts, and
    DVC reads its keys from ``.dvc/config.local``)."""
    return {
        "MLFLOW_TRACKING_URI": state.mlflow_url,
        "MLFLOW_TRACKING_USERNAME": mlflow_server.ADMIN_USER,
        "MLFLOW_TRACKING_PASSWORD": state.mlflow_password,
        "PREFECT_API_URL": f"http://{state.client_host}:{state.ports['prefect']}/api",
        "PREFECT_API_AUTH_STRING": state.prefect_auth,
    }


def dvc_url() -> str:
    return f"s3://{objectstore.DVC_BUCKET}/{DVC_PREFIX}"


def connect(root: Path, state: StackState) -> list[str]:
    """Write the settings of the project at ``root`` (a git checkout or folder) for ``state``'s stack; returns the
    files written. ``dvc init`` first when the project has no ``.dvc/`` yet."""
    from tasks import versioning

    root = root.resolve()
    if not any((root / marker).exists() for marker in (".git", ".dvc", "data.dvc")):
        raise UserError(
            f"{root} is not a project (no .git, .dvc or data.dvc): run `grm team up` from the project's folder, "
            "pass --project-dir, or --no-connect to start the stack only"
        )
    written = [str(service_env.write(root, settings(state)))]
    versioning.ensure_repo(root, remote=dvc_url())
    with versioning.in_dir(root):
        repo = versioning._repo(root)
        try:
            with repo.config.edit() as conf:
                conf["remote"][versioning.REMOTE_NAME]["endpointurl"] = state.s3_endpoint
            with repo.config.edit(level="local") as conf:
                section = conf["remote"].setdefault(versioning.REMOTE_NAME, {})
                section["access_key_id"] = state.s3_access_key
                section["secret_access_key"] = state.s3_secret_key
                section["region"] = objectstore.REGION
        finally:
            repo.close()
    local = root / ".dvc" / "config.local"
    local.chmod(0o600)  # it holds the S3 keys
    written += [str(root / ".dvc" / "config"), str(local)]
    return written
