"""``grm data pull``: resolve one data version (``--as-of``, ``--run``, ``--version``) and restore it.

Into ``data/`` (with ``data.dvc``), as ``grm reproduce`` does (``versioning.restore``: refuses to overwrite changes
not recorded in ``data.dvc``), or into ``--out DIR`` (a plain copy; ``data/`` and ``data.dvc`` untouched). Either way
the version is first pulled into ``artifacts/datasets/{md5}/`` and verified against its md5s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks import data_store, data_versions, versioning


def _run_tags(root: Path, run: str, tracking_uri: str | None) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    from tasks.mlflow_store import resolve_tracking_uri
    from tasks.tracking import Tracker

    uri = resolve_tracking_uri(tracking_uri, root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {}
    try:
        return dict(Tracker(uri, "").client().get_run(run).data.tags)
    except MlflowException:
        return {}


def pull_version(
    project_dir: str | Path,
    *,
    as_of: str | None = None,
    run: str | None = None,
    version: str | None = None,
    out: str | Path | None = None,
    force: bool = False,
    tracking_uri: str | None = None,
    remote: str | None = None,
) -> dict[str, Any]:
    """Restore the version named by exactly one of ``as_of`` / ``run`` / ``version``.

    Returns:
        ``{"md5", "date", "runs", "files", "restored_to", "data_dir"}``.

    Raises:
        DataVersionError / ReproduceError (``UserError``s, CLI exit 2): unknown run, version or date (the message
            lists the known versions), a version the remote lacks, or local changes in the way.
    """
    root = Path(project_dir).resolve()
    known = data_versions.list_versions(root, tracking_uri, remote)
    tags = _run_tags(root, run, tracking_uri) if run is not None else None
    chosen = data_versions.resolve(known, run=run, version=version, as_of=as_of, run_tags=tags)
    if out is None:
        files = versioning.restore(root, data_store.dvc_file_text(chosen.md5), force=force, remote=remote)
        target = root / "data"
    else:
        target = Path(out).resolve()
        folder = versioning.fetch_version(root, chosen.md5, remote)
        occupied = target.exists() and any(target.iterdir())
        if occupied and not force and not data_store.complete(target, versioning.file_hashes(folder)):
            raise data_store.DataVersionError(
                f"{target} is not empty", fix="pick an empty or new folder, or pass --force to replace its files"
            )
        versioning.copy_version(folder, target)
        files = versioning.file_hashes(target)
    return {
        "md5": chosen.md5,
        "date": chosen.date,
        "runs": chosen.runs,
        "files": files,
        "restored_to": str(target),
        "data_dir": str(data_store.version_dir(versioning.store_root(root), chosen.md5)),
    }
