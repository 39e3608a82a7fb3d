"""Data versioning with DVC: ``data.dvc`` at the repository root tracks ``data/``; models live in MLflow.

Decision: datasets (``data/{train,val,test}.jsonl`` and later sampled trajectories) are versioned by DVC and pushed
to a DVC remote; trained models are MLflow artifacts + registered model versions (aliases ``champion`` /
``challenger``). A pipeline run tags its MLflow run with the ``data.dvc`` md5, per-file md5s and the git commit,
and logs ``data.dvc`` itself, so ``grm reproduce RUN_ID`` (``tasks.reproduce``) can restore the exact inputs from the
remote.

Default remote: the folder ``.dvc-remote/`` at the project root (git-ignored), written into ``.dvc/config`` as a
path relative to ``.dvc/``; ``$GRM_DVC_REMOTE`` (a folder or any DVC URL) overrides it. Nothing here runs git
commands that change state: committing ``data.dvc`` / ``.dvc/config`` is the user's step (the log says so).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grm.errors import UserError
from tasks import data_store
from tasks.engine.stages import file_md5

REMOTE_NAME = "local"
DEFAULT_REMOTE = ".dvc-remote"
ENV_REMOTE = "GRM_DVC_REMOTE"


class ReproduceError(UserError):
    """The inputs of a run cannot be restored; the message says what is missing and the fix (CLI: exit 2)."""


@dataclass(frozen=True)
class DataVersion:
    """The version of ``data/`` a run used (all strings, for MLflow tags)."""

    dvc_md5: str  # the ``.dir`` md5 of data/ recorded in data.dvc
    files: dict[str, str]  # relative path -> md5
    dvc_file: str  # the content of data.dvc
    remote: str
    git_commit: str | None
    local_dir: str = ""  # the content-addressed copy stages read (``tasks.data_store``); "" before it is made
    size: int = 0  # bytes of all files (``size`` in data.dvc)

    def tags(self) -> dict[str, str]:
        tags = {"grm.data.dvc_md5": self.dvc_md5, "grm.data.remote": self.remote}
        if self.size:
            tags["grm.data.size"] = str(self.size)
        tags.update({f"grm.data.md5.{name}": md5 for name, md5 in self.files.items()})
        if self.git_commit:
            tags["grm.git_commit"] = self.git_commit
        return tags


def _repo(root: str | Path):
    from dvc.repo import Repo

    return Repo(str(root))  # always a fresh object: DVC caches its index per Repo instance


@contextmanager
def in_dir(root: str | Path) -> Iterator[None]:
    """Run DVC calls from the project root: DVC resolves relative paths (remote URLs, targets) against the cwd.

    Inside, DVC's logger is at WARNING: its INFO lines are shell hints (``Initialized DVC repository``, ``To track
    the changes with git, run: git add ...``, ``To enable auto staging, run: dvc config core.autostage true``) that
    a pipeline run does not act on; ``version_data``'s own log line says what to commit. Warnings and errors show.
    """
    import dvc  # noqa: F401  (importing dvc runs dvc.logger.setup(), which sets its logger to INFO)

    before = os.getcwd()
    dvc_logger = logging.getLogger("dvc")
    level = dvc_logger.level
    os.chdir(root)
    dvc_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        dvc_logger.setLevel(level)
        os.chdir(before)


def ensure_repo(root: str | Path, remote: str | None = None) -> str:
    """``dvc init`` if needed (inside git when there is one, ``--no-scm`` otherwise) and a default remote.

    Returns:
        The remote URL in use.
    """

    root = Path(root).resolve()
    with in_dir(root):
        return _ensure_repo(root, remote)


def _ensure_repo(root: Path, remote: str | None) -> str:
    from dvc.repo import Repo

    if not (root / ".dvc").exists():
        Repo.init(str(root), no_scm=not (root / ".git").exists())
    repo = _repo(root)
    try:
        url = remote or os.environ.get(ENV_REMOTE)
        with repo.config.edit() as conf:
            conf["core"]["analytics"] = False
            if url or REMOTE_NAME not in conf["remote"]:
                # DVC stores a cwd-relative folder relative to .dvc/, so the committed config works in any clone
                conf["remote"][REMOTE_NAME] = {"url": url or DEFAULT_REMOTE}
            conf["core"]["remote"] = REMOTE_NAME
        current = _repo(root)
        try:
            configured = current.config["remote"][REMOTE_NAME]["url"]
        finally:
            current.close()
    finally:
        repo.close()
    if "://" not in configured:  # a local folder (resolved against the cwd = root)
        configured = str((root / configured).resolve())
        Path(configured).mkdir(parents=True, exist_ok=True)
    return configured


def repo_lock(lock_file: str | Path):  # -> a context manager
    """The project's DVC lock (``artifacts/locks/dvc.lock`` from ``tasks.data.version``): ``dvc init``, ``add``
    and ``push`` of two runs at once would collide (DVC's own lock makes the second fail), and a rollback must not
    undo another run's publish."""
    from tasks.engine.locks import file_lock

    return file_lock(lock_file, "the DVC repository (another run publishes data/)")


def remote_folder(root: str | Path, remote: str | None = None) -> Path | None:
    """The local folder the DVC remote of ``root`` is (or would be, before ``ensure_repo``) ; None for a URL."""
    root = Path(root).resolve()
    url = remote or os.environ.get(ENV_REMOTE)
    if not url and (root / ".dvc" / "config").exists():
        with in_dir(root):
            repo = _repo(root)
            try:
                url = repo.config["remote"].get(REMOTE_NAME, {}).get("url")
            finally:
                repo.close()
    url = url or DEFAULT_REMOTE
    if "://" in url:
        return None
    return (root / url).resolve()


def remote_config(root: str | Path, remote: str | None = None) -> dict[str, Any]:
    """The DVC remote of ``root`` as a config section (``url`` absolute for a folder), ``$GRM_DVC_REMOTE`` first.

    Used to pull into a throw-away workspace (``from_remote``): other keys of the section
    (credentials, endpoint) are kept.
    """
    root = Path(root).resolve()
    conf: dict[str, Any] = {}
    if (root / ".dvc").is_dir():
        with in_dir(root):
            repo = _repo(root)
            try:
                conf = dict(repo.config["remote"].get(REMOTE_NAME, {}))
            finally:
                repo.close()
    url = remote or os.environ.get(ENV_REMOTE) or conf.get("url") or DEFAULT_REMOTE
    if "://" not in url:
        url = str((root / url).resolve())
    return {**conf, "url": url}


@dataclass
class Snapshot:
    """What a publish may change, taken before it: the split files of ``data/``, ``data.dvc``, the root
    ``.gitignore`` (``dvc add`` edits it in a git checkout) and the file list of a local-folder DVC remote.

    ``restore()`` puts every one back byte for byte: files written since are removed, replaced ones rewritten,
    and remote files (objects pushed since; existing objects are content-addressed and never rewritten) deleted.
    """

    files: dict[Path, bytes | None]
    created_dirs: list[Path]
    remote: Path | None
    remote_files: set[str]
    remote_existed: bool

    @classmethod
    def take(cls, root: str | Path, data_dir: str, names: list[str], remote: str | None = None) -> Snapshot:
        root = Path(root).resolve()
        data = root / data_dir
        present = [p.relative_to(data).as_posix() for p in data.rglob("*") if p.is_file()] if data.is_dir() else []
        names = sorted(set(names) | set(present))  # a publish removes files that are not in the new version
        paths = [data / n for n in names] + [root / f"{data_dir}.dvc", root / ".gitignore"]
        files = {p: (p.read_bytes() if p.is_file() else None) for p in paths}
        folder = remote_folder(root, remote)
        existed = folder is not None and folder.is_dir()
        listed = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if existed else set()
        created = [d for d in (data,) if not d.exists()]
        return cls(files, created, folder, listed, existed)

    def restore(self) -> None:
        for path, content in self.files.items():
            if content is None:
                path.unlink(missing_ok=True)
            elif not path.is_file() or path.read_bytes() != content:
                tmp = path.with_name(f".{path.name}.restore.tmp")
                tmp.write_bytes(content)
                os.replace(tmp, path)
        for d in self.created_dirs:
            shutil.rmtree(d, ignore_errors=True)
        if self.remote is None or not self.remote.is_dir():
            return
        if not self.remote_existed:
            shutil.rmtree(self.remote, ignore_errors=True)
            return
        kept = {str(parent) for f in self.remote_files for parent in Path(f).parents}
        for p in sorted(self.remote.rglob("*"), reverse=True):  # deepest first: files, then emptied folders
            rel = str(p.relative_to(self.remote))
            if p.is_file() and rel not in self.remote_files:
                p.unlink()
            elif p.is_dir() and rel not in kept and not any(p.iterdir()):
                p.rmdir()


def publish_data(
    root: str | Path, data_dir: str, sources: dict[str, Path], push: bool = True, remote: str | None = None
) -> DataVersion:
    """Copy ``sources`` (name -> file) into ``data_dir`` (only files whose bytes differ), then ``version_data``.

    Call it after every check on the sources passed, inside a ``Snapshot`` (``tasks.data.version``) so that a
    failure can be undone.
    """
    root = Path(root).resolve()
    folder = root / data_dir
    folder.mkdir(parents=True, exist_ok=True)
    for old in [p for p in folder.rglob("*") if p.is_file()]:  # the version is exactly ``sources``
        if old.relative_to(folder).as_posix() not in sources:
            old.unlink()
    for name, src in sources.items():
        dst = folder / name
        if not dst.exists() or file_md5(dst) != file_md5(src):
            tmp = dst.with_name(f".{name}.tmp")
            shutil.copyfile(src, tmp)
            os.replace(tmp, dst)
    return version_data(root, data_dir, push=push, remote=remote)


def read_dvc_file(path: str | Path) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}


def dvc_md5(dvc_file: str | Path) -> str:
    """The md5 recorded in a ``.dvc`` file (``...dir`` for folders)."""
    outs = read_dvc_file(dvc_file).get("outs") or []
    if not outs or "md5" not in outs[0]:
        raise ReproduceError(f"{dvc_file} records no md5; run `dvc add data` (or the prepare_data flow) first")
    return str(outs[0]["md5"])


def file_hashes(data_dir: str | Path) -> dict[str, str]:
    """md5 of every file under ``data_dir`` by relative path."""
    data_dir = Path(data_dir)
    return {p.relative_to(data_dir).as_posix(): file_md5(p) for p in sorted(data_dir.rglob("*")) if p.is_file()}


def version_data(
    root: str | Path, data_dir: str = "data", push: bool = True, remote: str | None = None
) -> DataVersion:
    """``dvc add data`` (writes ``data.dvc`` at ``root``) and ``dvc push`` to the remote.

    Idempotent: unchanged data gives the same md5 and pushes nothing new.
    """
    from tasks.tracking import git_commit

    root = Path(root).resolve()
    url = ensure_repo(root, remote)
    with in_dir(root):
        repo = _repo(root)
        try:
            repo.add(data_dir)
            if push:
                repo.push(remote=REMOTE_NAME)
        finally:
            repo.close()
    dvc_file = root / f"{data_dir}.dvc"
    outs = (read_dvc_file(dvc_file).get("outs") or [{}])[0]
    return DataVersion(
        size=int(outs.get("size") or 0),
        dvc_md5=dvc_md5(dvc_file),
        files=file_hashes(root / data_dir),
        dvc_file=dvc_file.read_text(encoding="utf-8"),
        remote=url,
        git_commit=git_commit(root),
    )


def workspace_clean(root: str | Path, target: str = "data.dvc") -> bool:
    """True when ``data/`` matches ``data.dvc`` (nothing uncommitted to DVC would be overwritten)."""
    with in_dir(root):
        repo = _repo(root)
        try:
            return not repo.status(targets=[target])
        finally:
            repo.close()


def store_root(root: str | Path) -> Path:
    """The project's content-addressed data copies (``artifacts/datasets``, or below ``$GRM_ARTIFACTS_DIR``)."""
    env = os.environ.get("GRM_ARTIFACTS_DIR")
    return (Path(env).resolve() if env else Path(root).resolve() / "artifacts") / data_store.STORE


def from_remote(project_root: str | Path, store_root: str | Path, dvc_md5: str, remote: str | None = None) -> Path:
    """Pull version ``dvc_md5`` from the project's DVC remote into the store, leaving ``data/`` and ``data.dvc``
    untouched: a throw-away DVC workspace with the project's remote (``$GRM_DVC_REMOTE`` or ``.dvc/config``) and
    the project's DVC cache (objects already there are not downloaded again).

    Raises:
        data_store.DataVersionError: the remote (and the cache) do not hold that version.
    """
    from dvc.repo import Repo

    if not dvc_md5.endswith(data_store.DIR_SUFFIX):
        dvc_md5 += data_store.DIR_SUFFIX
    root = Path(project_root).resolve()
    cache = root / ".dvc" / "cache"
    remote_conf = remote_config(root, remote)
    with tempfile.TemporaryDirectory(prefix="grm-dvc-pull-") as tmp:
        ws = Path(tmp)
        with in_dir(ws):
            Repo.init(str(ws), no_scm=True)
            repo = Repo(str(ws))
            try:
                with repo.config.edit() as conf:
                    conf["core"]["analytics"] = False
                    conf["remote"]["origin"] = remote_conf
                    conf["core"]["remote"] = "origin"
                    if cache.is_dir():
                        conf["cache"]["dir"] = str(cache)
            finally:
                repo.close()
            (ws / "data.dvc").write_text(data_store.dvc_file_text(dvc_md5), encoding="utf-8")
            repo = Repo(str(ws))
            dvc_log = logging.getLogger("dvc")
            level, dvc_log.level = dvc_log.level, logging.CRITICAL  # a missing object: our error says it once
            try:
                repo.pull(targets=["data.dvc"], force=True)
            except Exception as exc:
                if "://" in str(remote_conf.get("url", "")):  # an object store that is down or refuses the keys:
                    from tasks.remote_probe import probe_remote  # say so, not "the version is missing"

                    probe_remote(remote_conf, write=False)  # raises tasks.service_errors.ServiceError
                raise data_store.DataVersionError(
                    f"data version {dvc_md5} is not in the DVC remote {remote_conf.get('url')} "
                    f"(nor in the local cache {cache}): {type(exc).__name__}",
                    fix=f"list the versions the remote holds with `grm data versions`; set ${ENV_REMOTE} "
                    "(or `dvc remote modify local url URL`) to the remote the version was pushed to",
                ) from None
            finally:
                dvc_log.setLevel(level)
                repo.close()
            listing = data_store.dir_listing(cache if cache.is_dir() else ws / ".dvc" / "cache", dvc_md5)
        files = {name: ws / "data" / name for name in listing}
        return data_store.from_files(
            store_root, dvc_md5, files, listing
        )  # (returns an already complete copy as it is)


def fetch_version(root: str | Path, dvc_md5_value: str, remote: str | None = None) -> Path:
    """Version ``dvc_md5_value`` as a verified content-addressed folder (``artifacts/datasets/{md5}/``), pulled
    from the DVC remote (``$GRM_DVC_REMOTE`` first) when it is not there yet; ``data/`` and ``data.dvc`` are not
    touched. Raises ``tasks.data_store.DataVersionError`` (a ``UserError``) when the remote lacks it."""
    folder = data_store.version_dir(store_root(root), dvc_md5_value)
    if folder.is_dir():
        listing = {p.relative_to(folder).as_posix(): file_md5(p) for p in folder.rglob("*") if p.is_file()}
        if data_store.dir_md5(listing) == data_store.hex_md5(dvc_md5_value) + data_store.DIR_SUFFIX:
            return folder
    return from_remote(root, store_root(root), dvc_md5_value, remote)


def restore(
    root: str | Path,
    dvc_file_text: str,
    expected: dict[str, str] | None = None,
    force: bool = False,
    remote: str | None = None,
) -> dict[str, str]:
    """Make ``data/`` and ``data.dvc`` the version ``dvc_file_text`` pins, verified file by file.

    The version is fetched first (``fetch_version``: from the remote into ``artifacts/datasets/{md5}/``), so a
    version the remote lacks fails before anything in the project changes. Then ``data/`` becomes an exact copy
    (files of other versions removed) and ``data.dvc`` is written: DVC sees a clean workspace.

    Args:
        root: project root (holds ``.dvc/``).
        dvc_file_text: the ``data.dvc`` content of that version.
        expected: relative path -> md5 recorded by a run (checked too; None: the version's own listing).
        force: overwrite local changes to ``data/`` that are not recorded in ``data.dvc``.
        remote: DVC remote URL or folder (default ``$GRM_DVC_REMOTE``, then ``.dvc/config``).

    Returns:
        The verified hashes (relative path -> md5).

    Raises:
        ReproduceError: not a DVC project, uncommitted changes in ``data/``, the version is not in the remote, or the
            files do not match.
    """
    root = Path(root).resolve()
    target = root / "data.dvc"
    if not (root / ".dvc").exists():
        raise ReproduceError(f"{root} is not a DVC project", fix="run from the project root (where .dvc/ is)")
    out_path = (yaml.safe_load(dvc_file_text).get("outs") or [{}])[0].get("path", "data")
    data_dir = root / out_path
    if target.exists() and data_dir.exists() and not force and not workspace_clean(root):
        raise ReproduceError(
            f"{data_dir} has changes that are not recorded in data.dvc; they would be overwritten",
            fix="`dvc add data` and commit data.dvc to keep them, or pass --force to discard them "
            "(or --out DIR to restore elsewhere)",
        )
    md5 = str((yaml.safe_load(dvc_file_text).get("outs") or [{}])[0].get("md5", ""))
    try:
        folder = fetch_version(root, md5, remote)
    except data_store.DataVersionError as exc:
        raise ReproduceError(str(exc)) from None
    actual = {p.relative_to(folder).as_posix(): file_md5(p) for p in folder.rglob("*") if p.is_file()}
    bad = {k: (v, actual.get(k)) for k, v in (expected or {}).items() if actual.get(k) != v}
    if bad:
        raise ReproduceError(f"data version {md5} does not hold the run's files (path: expected, actual): {bad}")
    copy_version(folder, data_dir)
    tmp = target.with_name(".data.dvc.tmp")
    tmp.write_text(dvc_file_text, encoding="utf-8")
    os.replace(tmp, target)
    return actual


def copy_version(folder: Path, dest: Path) -> None:
    """Make ``dest`` an exact copy of ``folder`` (files not in it removed; each file replaced atomically)."""
    dest.mkdir(parents=True, exist_ok=True)
    wanted = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    for old in [p for p in dest.rglob("*") if p.is_file()]:
        if old.relative_to(dest).as_posix() not in wanted:
            old.unlink()
    for rel in sorted(wanted):
        dst = dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.is_file() or file_md5(dst) != file_md5(folder / rel):
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(folder / rel, tmp)
            os.replace(tmp, dst)
