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
import tempfile
from pathlib import Path
from typing import Any

import yaml

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
        ReproduceError: unknown run, a run without a data version, or a version the remote does not hold.
    """
    from mlflow.exceptions import MlflowException

    from tasks.mlflow_store import resolve_tracking_uri
    from tasks.tracking import Tracker

    root = Path(project_dir).resolve()
    uri = resolve_tracking_uri(tracking_uri, root)
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
    with tempfile.TemporaryDirectory() as tmp:
        try:
            inputs = tracker.download(f"runs:/{run_id}/inputs", tmp)
        except Exception:
            raise ReproduceError(f"run {run_id} has no inputs/ artifacts (data.dvc, config.yaml) in {uri}") from None
        dvc_text = (inputs / "data.dvc").read_text(encoding="utf-8")
        if dvc_md5(inputs / "data.dvc") != tags["grm.data.dvc_md5"]:
            raise ReproduceError(f"run {run_id}: its logged data.dvc does not match its grm.data.dvc_md5 tag")
        config_text = (inputs / "config.yaml").read_text(encoding="utf-8") if (inputs / "config.yaml").exists() else ""
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
