"""Reach a DVC remote (a folder, or ``s3://`` with ``endpointurl`` and keys) with short timeouts: ``probe_remote``.

Below both ``tasks.versioning`` (a failed pull asks it whether the store is down or refuses the keys) and
``tasks.service_checks`` (``grm doctor``'s ``dvc`` line): it imports neither.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tasks import service_errors
from tasks.service_errors import FIXES, ServiceError

PROBE_PREFIX = "grm-doctor-probe"

S3_TIMEOUT_S = 5  # botocore's default connect timeout is 60 s, with retries


def remote_fs(conf: Mapping[str, Any]) -> tuple[Any, str]:
    """(fsspec filesystem, path) of a DVC remote section (``url`` + keys), with short timeouts and one retry."""
    from dvc.fs import get_cloud_fs

    conf = {"connect_timeout": S3_TIMEOUT_S, "read_timeout": S3_TIMEOUT_S, **conf} if _is_s3(conf) else dict(conf)
    cls, fs_conf, path = get_cloud_fs({}, **conf)
    fs = cls(**fs_conf)
    if _is_s3(conf):
        fs.fs_args.setdefault("config_kwargs", {})["retries"] = {"max_attempts": 1, "mode": "standard"}
    return fs.fs, path


def _is_s3(conf: Mapping[str, Any]) -> bool:
    return str(conf.get("url", "")).startswith("s3://")


def probe_remote(conf: Mapping[str, Any], write: bool = True) -> str:
    """Reach the remote ``conf`` describes (and write + delete one probe object); returns what was checked.

    Raises:
        ServiceError: not reachable, credentials refused or missing, bucket missing, or not writable.
    """
    url = str(conf["url"])
    if "://" not in url:
        return _probe_folder(Path(url), write)
    env = {**os.environ, "GRM_DVC_REMOTE": url}
    try:
        fs, path = remote_fs(conf)
        fs.ls(path.split("/")[0], refresh=True)  # the bucket: raises (s3fs) when missing, refused or unreachable
        if write:
            probe = f"{path.rstrip('/')}/{PROBE_PREFIX}-{uuid.uuid4().hex[:12]}"
            fs.pipe_file(probe, b"probe")
            fs.rm_file(probe)
    except ServiceError:
        raise
    except Exception as exc:
        err = service_errors.explain(exc, env)
        if err is None and isinstance(exc, PermissionError):
            err = ServiceError("dvc", url, f"refuses the credentials ({exc})", fix=FIXES["dvc", "auth"])
        if err is None:
            err = ServiceError(
                "dvc", url, f"failed: {type(exc).__name__}: {str(exc)[:200]}",
                fix="check the remote's settings: `dvc config --list --show-origin`",
            )  # fmt: skip
        raise err from None
    endpoint = conf.get("endpointurl") or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    return f"endpoint {endpoint}, credentials accepted" + (", probe object written and deleted" if write else "")


def _probe_folder(folder: Path, write: bool) -> str:
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            return "a folder; created on the first push"
        raise ServiceError(
            "dvc", str(folder), f"does not exist and {parent} is not writable",
            fix="`dvc remote modify local url PATH` to a folder you can write (or GRM_DVC_REMOTE)",
        )  # fmt: skip
    if write:
        probe = folder / f".{PROBE_PREFIX}-{uuid.uuid4().hex[:12]}"
        try:
            probe.write_bytes(b"probe")
            probe.unlink()
        except OSError as exc:
            raise ServiceError("dvc", str(folder), f"is not writable ({exc.strerror})",
                               fix="fix the folder's permissions or point the remote elsewhere") from None  # fmt: skip
    return "a folder, writable" if write else "a folder"
