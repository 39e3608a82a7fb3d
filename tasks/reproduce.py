"""``grm reproduce RUN_ID``: restore the exact data of a pipeline run and write a config that reruns it on that data.

The run's MLflow tags name its data version (``grm.data.dvc_md5``, ``grm.data.md5.*``) and its code
(``grm.git_commit``); its artifacts hold the ``data.dvc`` and the resolved ``config.yaml``. The version is pulled
from the DVC remote (``$GRM_DVC_REMOTE`` first) into ``artifacts/datasets/{md5}/`` and copied into ``data/`` (with
``data.dvc``), every file hash-verified. The rerun config reads the pulled copy, not the live ``data.source``
folder (which may have changed since): ``data.source`` becomes ``reproduce/{run}/{folder name}``, a link to the
content-addressed copy (the folder's name is kept, so the run's metric names are too). A world run keeps
``data.source: world``: the world is a pure function of the config and the code commit.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tasks.mlflow_store import resolve_tracking_uri, sqlite_path
from tasks.versioning import ReproduceError, dvc_md5, restore, store_root


def _link(target: Path, link: Path) -> None:
    """``link`` -> ``target`` (relative when both are in one tree), replacing an older link of that name."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        raise ReproduceError(f"{link} exists and is a folder", fix=f"remove {link} and rerun `grm reproduce`")
    link.symlink_to(os.path.relpath(target, link.parent), target_is_directory=True)


def rerun_config(config_text: str, root: Path, run_id: str, folder: Path) -> tuple[Path, str]:
    """Write ``reproduce/{run_id}/config.yaml``: the run's config with ``data.source`` at the pulled copy.

    Returns:
        The config path and the ``data.source`` it holds.
    """
    cfg = yaml.safe_load(config_text) or {}
    source = str((cfg.get("data") or {}).get("source", "world"))
    out = root / "reproduce" / run_id
    out.mkdir(parents=True, exist_ok=True)
    config = out / "config.yaml"
    if source == "world":  # regenerated from the config at the run's commit: the config stays as it was
        config.write_text(config_text, encoding="utf-8")
        return config, source
    link = out / (Path(source.rstrip("/")).name or "data")
    _link(folder, link)
    cfg["data"]["source"] = link.relative_to(root).as_posix()
    config.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return config, cfg["data"]["source"]


RUN_ID = re.compile(r"[0-9a-f]{32}")  # what MLflow makes (uuid4().hex)


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def check_request(run_id: str, root: Path, uri: str) -> None:
    """Refuse, before anything is opened or created, a run id MLflow cannot have made, a project folder that is not
    one, and an embedded store that does not exist (opening it would create an empty one).

    Raises:
        ReproduceError: naming the id, folder or store and the fix.
    """
    if not RUN_ID.fullmatch(run_id):
        raise ReproduceError(
            f"{_shown(run_id)} is not an MLflow run id (32 lowercase hexadecimal characters)",
            fix="copy the id from `grm data versions` or the run's page in `grm ui`",
        )
    if not root.is_dir():
        raise ReproduceError(
            f"--project-dir {root} is not a folder", fix="pass the project root (where data.dvc and mlruns/ are)"
        )
    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise ReproduceError(
            f"no MLflow store at {db}: there are no runs to reproduce in {root}",
            fix="run from the project root, pass --project-dir, or --tracking-uri for the store the run is in",
        )


def _read_inputs(tracker: Any, run_id: str, uri: str, tags: dict[str, str]) -> tuple[str, str]:
    """The run's logged ``inputs/data.dvc`` and ``inputs/config.yaml``, checked against its tags."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            inputs = tracker.download(f"runs:/{run_id}/inputs", tmp)
        except Exception:
            raise ReproduceError(f"run {run_id} has no inputs/ artifacts (data.dvc, config.yaml) in {uri}") from None
        missing = [name for name in ("data.dvc", "config.yaml") if not (inputs / name).is_file()]
        if missing:
            raise ReproduceError(
                f"run {run_id} did not log inputs/{' or inputs/'.join(missing)}: its "
                f"{'data version' if 'data.dvc' in missing else 'config'} cannot be restored",
                fix="reproduce a spct_pipeline or prepare_data run (`grm data versions` lists them)",
            )
        try:
            recorded = dvc_md5(inputs / "data.dvc")
        except ReproduceError:
            raise
        except Exception as err:  # not YAML, not a mapping
            raise ReproduceError(f"run {run_id}: its logged inputs/data.dvc cannot be read ({err})") from None
        if recorded != tags["grm.data.dvc_md5"]:
            raise ReproduceError(f"run {run_id}: its logged data.dvc does not match its grm.data.dvc_md5 tag")
        return (inputs / "data.dvc").read_text(encoding="utf-8"), (inputs / "config.yaml").read_text(encoding="utf-8")


def reproduce_command(
    run_id: str,
    project_dir: str = ".",
    tracking_uri: str | None = None,
    force: bool = False,
    remote: str | None = None,
) -> dict[str, Any]:
    """Restore the inputs of pipeline run ``run_id`` and write the config that reruns it on them.

    Returns:
        ``{"run_id", "data_dvc_md5", "files", "data_dir", "config", "data_source", "git_commit", "rerun"}``.

    Raises:
        ReproduceError: a malformed or unknown run, a run without a data version or config, or a version the
        remote does not hold.
    """
    from mlflow.exceptions import MlflowException

    from tasks.tracking import Tracker

    root = Path(project_dir).resolve()
    uri = resolve_tracking_uri(tracking_uri, root)
    check_request(run_id, root, uri)
    tracker = Tracker(uri, "")
    try:
        run = tracker.client().get_run(run_id)
    except MlflowException:
        raise ReproduceError(
            f"no MLflow run {run_id!r} in {uri}",
            fix="`grm data versions` lists the runs of every data version; pass --tracking-uri for another store",
        ) from None
    tags = run.data.tags
    if "grm.data.dvc_md5" not in tags:
        raise ReproduceError(
            f"run {run_id} has no grm.data.dvc_md5 tag: it did not version its data",
            fix="reproduce a spct_pipeline or prepare_data run (`grm data versions` lists them)",
        )
    files = {k.removeprefix("grm.data.md5."): v for k, v in tags.items() if k.startswith("grm.data.md5.")}
    dvc_text, config_text = _read_inputs(tracker, run_id, uri, tags)
    verified = restore(root, dvc_text, files, force=force, remote=remote)
    from tasks.data_store import version_dir

    folder = version_dir(store_root(root), tags["grm.data.dvc_md5"])
    config, source = rerun_config(config_text, root, run_id, folder)
    commit = tags.get("grm.git_commit")
    rerun = f"grm run --config {config.relative_to(root)}"
    if commit:
        rerun = f"git checkout {commit} && {rerun}"
    return {
        "run_id": run_id,
        "data_dvc_md5": tags["grm.data.dvc_md5"],
        "files": verified,
        "data_dir": str(folder),
        "config": str(config),
        "data_source": source,
        "git_commit": commit,
        "rerun": f"cd {root} && {rerun}",
    }
