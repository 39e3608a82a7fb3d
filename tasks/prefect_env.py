"""Embedded Prefect defaults: set the environment BEFORE ``prefect`` is imported.

Prefect reads its settings from the environment once, at import time. ``configure_defaults()`` fills in what an
embedded, no-service run needs (only keys the caller has not set, so ``PREFECT_API_URL`` of a real server wins):

- an ephemeral API server (SQLite under ``PREFECT_HOME``) with a 90 s startup timeout (it takes 7-15 s on 2 cores),
- analytics off, ``PREFECT_HOME`` inside the project (``.prefect/``, git-ignored),
- MLflow/DVC/GX telemetry off, transformers/datasets progress bars off (``grm.progress`` reports instead).

``configure_logging()`` sets what a run prints (``grm.*`` INFO lines in, repeated third-party INFO chatter out).

``tasks/__init__.py`` calls it, so ``import tasks.<anything>`` before ``import prefect`` is enough; the CLI, make
targets and tests go through it.

Example:
    >>> env = defaults_for("/tmp/proj")
    >>> env["PREFECT_HOME"]
    '/tmp/proj/.prefect'
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from tasks import service_env

STARTUP_TIMEOUT_S = 90  # the temporary server needs 7-15 s on an idle 2-core machine; shared machines are slower


def defaults_for(project_dir: str | Path | None = None) -> dict[str, str]:
    """The environment defaults for an embedded run rooted at ``project_dir`` (default: the current directory).

    Args:
        project_dir: folder that holds ``.prefect/`` (Prefect's home: profiles, ephemeral server database).

    Returns:
        Variable -> value; nothing is applied.
    """
    root = Path(project_dir or os.getcwd()).resolve()
    return {
        **service_env.read(root),  # .grm/services.env: a team's MLflow / Prefect / S3 settings, if any
        "PREFECT_HOME": str(root / ".prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": str(STARTUP_TIMEOUT_S),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "true",
        "PREFECT_UI_ENABLED": "false",  # the ephemeral server needs no UI bundle
        "PREFECT_LOGGING_LEVEL": "INFO",
        "DO_NOT_TRACK": "1",  # Prefect client telemetry
        "DVC_NO_ANALYTICS": "1",
        "GX_ANALYTICS_ENABLED": "false",
        "MLFLOW_ENABLE_ASYNC_LOGGING": "false",  # logs are on disk when a stage returns (crash safety)
        # a tracking server that is down: MLflow's default retries for ~4 min (7 retries, backoff 2 s, 120 s
        # timeout); these ride out a restart (retries after 0, 2, 4, 8, 16, 32 s: ~1 min, as Prefect's client)
        # and then fail the stage (`grm` names the server and the fix; a rerun resumes from the finished stages)
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "6",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
        "TOKENIZERS_PARALLELISM": "false",
        # transformers' "Loading weights" / "Writing model shards" and datasets' ".map" bars: sub-second bars, a
        # page of them per stage; training and sampling report through grm.progress instead
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    }


def configure_defaults(
    project_dir: str | Path | None = None, environ: MutableMapping[str, str] | None = None
) -> dict[str, str]:
    """Apply ``defaults_for(project_dir)`` to ``environ`` (``os.environ``) without overriding what is set.

    Call it before the first ``import prefect``; afterwards Prefect will not see the values. ``import tasks``
    applies the current directory's defaults; a later call with an explicit ``project_dir`` (``grm run
    --project-dir``, ``python -m flows --project-dir``) replaces those (never what the user set), so ``.prefect/``
    follows the project, not the working directory.

    Returns:
        The variables this call set (empty when everything was already set).
    """
    env = os.environ if environ is None else environ
    ours = _APPLIED if environ is None else {}
    applied = {}
    defaults = defaults_for(project_dir)
    if project_dir is not None:  # a setting of another project's services.env (the cwd's) must not leak in
        for key in [k for k in ours if k not in defaults and env.get(k) == ours[k]]:
            del env[key], ours[key]
    for key, value in defaults.items():
        # a value an earlier call of ours set (``import tasks`` applies the cwd's) gives way to an explicit project
        if key not in env or (project_dir is not None and key in ours and env[key] == ours[key]):
            env[key] = value
            applied[key] = value
            ours[key] = value
    if "PREFECT_HOME" in applied and "prefect" in sys.modules and environ is None:
        logging.getLogger("grm.pipeline").warning(
            "PREFECT_HOME set to %s after prefect was imported; Prefect keeps its earlier home",
            applied["PREFECT_HOME"],
        )
    return applied


_APPLIED: dict[str, str] = {}  # what configure_defaults put into os.environ (not the user's own settings)


class DropCompletedTaskStates(logging.Filter):
    """Drop Prefect's ``Finished in state Completed()`` task-run lines: ``run_stage`` already logs each stage's end
    with its time. Other states (Failed, Crashed, Cancelled: WARNING/ERROR) and flow-run lines pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith("Finished in state Completed"))


# Third-party INFO lines that repeat on every run and need no action (their warnings and errors still show).
QUIET_LOGGERS = {
    "mlflow.store.db.utils": logging.WARNING,  # "Creating initial MLflow database tables..." for every new store
    "alembic.runtime.migration": logging.WARNING,  # MLflow's schema migrations, one line each
}


def configure_logging() -> None:
    """What a user sees during ``grm run``: our ``grm.*`` INFO lines (progress of training and sampling; Prefect's
    root handler is at WARNING), Prefect's flow lines and task failures, not the chatter in ``QUIET_LOGGERS``.

    Idempotent; safe before or after ``import prefect`` (Prefect's dictConfig keeps existing loggers and filters).
    """
    logging.getLogger("grm").setLevel(logging.INFO)
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    task_runs = logging.getLogger("prefect.task_runs")
    if not any(isinstance(f, DropCompletedTaskStates) for f in task_runs.filters):
        task_runs.addFilter(DropCompletedTaskStates())


def server_env(api_url: str, home: str | Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that talks to a running Prefect server (workers, deploy, tests)."""
    env = dict(os.environ if base is None else base)
    env.update(defaults_for(Path(home).parent))
    env["PREFECT_HOME"] = str(home)
    env["PREFECT_API_URL"] = api_url
    return env


SERVER_LOCK = "grm-temporary-server.lock"


def start_temporary_server() -> str | None:
    """Start this process's temporary Prefect server now, holding ``{PREFECT_HOME}/grm-temporary-server.lock``
    until it answers; returns its API URL (None when ``PREFECT_API_URL`` names a server: nothing to start).

    The temporary server creates and migrates its SQLite database (``{PREFECT_HOME}/prefect.db``) on start; two
    runs starting in one project at once raced on that (``duplicate column name``). Under the lock the second
    server starts only once the first one's migrations are done (it then finds the schema current). Prefect keeps
    one temporary server per process, so the flow that follows reuses this one. Call it after
    ``configure_defaults``, before the first flow call.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if settings.api.url:
        return None
    from prefect.server.api.server import SubprocessASGIServer

    from tasks.engine.locks import file_lock

    with file_lock(Path(settings.home) / SERVER_LOCK, "Prefect's temporary server database (migrations on start)"):
        server = SubprocessASGIServer()
        server.start()
    return server.api_url
