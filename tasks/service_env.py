"""The project's service settings: ``.grm/services.env`` at the project root (git-ignored, mode 0600).

A team's services (an MLflow tracking server, a Prefect server, S3 credentials for the DVC remote) are named here,
one ``KEY=VALUE`` per line (``#`` comments and blank lines allowed), by ``grm team up`` or by hand. Every ``grm``
command and flow reads it through ``tasks.prefect_env.defaults_for``: a variable already set in the environment
wins, so ``MLFLOW_TRACKING_URI=... grm run`` still overrides the file. Without the file nothing changes: the
embedded stores are used.

Only the keys in ``KEYS`` are accepted (a typo is an error naming the file and line, not a silent no-op).

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> _ = write(root, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"})
    >>> read(root)
    {'MLFLOW_TRACKING_URI': 'http://127.0.0.1:5000'}
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from grm.errors import UserError

RELATIVE_PATH = Path(".grm") / "services.env"
KEYS = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "PREFECT_API_URL",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_API_KEY",
    "GRM_DVC_REMOTE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "AWS_DEFAULT_REGION",
    "MLFLOW_S3_ENDPOINT_URL",
)


def path_of(root: str | Path) -> Path:
    """Where the settings file of the project at ``root`` is."""
    return Path(root) / RELATIVE_PATH


def read(root: str | Path) -> dict[str, str]:
    """The settings of the project at ``root`` (empty without the file).

    Raises:
        UserError: a line that is not ``KEY=VALUE`` or a key outside ``KEYS``, naming the file and line.
    """
    path = path_of(root)
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        if not sep or not key:
            raise UserError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        if key not in KEYS:
            raise UserError(f"{path}:{number}: unknown setting {key!r}; known: {', '.join(KEYS)}")
        if key in values:
            raise UserError(f"{path}:{number}: {key} is set twice; keep one line")
        values[key] = value.strip().strip("'\"")
    return values


def write(root: str | Path, values: Mapping[str, str]) -> Path:
    """Write ``values`` (keys from ``KEYS``) atomically, mode 0600, replacing the file; returns its path."""
    unknown = sorted(set(values) - set(KEYS))
    if unknown:
        raise ValueError(f"unknown service settings {unknown}; known: {KEYS}")
    path = path_of(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# written by grm; the environment overrides any line (tasks/service_env.py)\n"
    text += "".join(f"{key}={values[key]}\n" for key in KEYS if key in values)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".services.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
