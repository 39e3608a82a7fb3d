"""The benchmark copies shipped inside the repository: ``benchdata/<name>.tar.gz``, unpacked once into a cache.

A fresh clone has no ``../shared/benchdata``; the benchmarks whose licences allow redistribution (RewardBench,
ReaLMistake, JudgeBench, RM-Bench, GSM8K solutions: ``docs/benchdata.md``) ship compressed next to the code. The
loaders read plain folders (``root / "rewardbench" / ...``), so the archives are unpacked on first use into
``<cache>/benchdata/<digest>/``, where ``<digest>`` hashes the archives' bytes (a changed archive unpacks anew,
an unchanged one never again). Unpacking is atomic: a temporary sibling folder is filled under a file lock and
renamed into place when complete, so a reader never sees a half-unpacked copy, a killed unpack leaves only a
``.tmp-*`` folder that the next one removes, and concurrent runs unpack once. Unpacked files are read-only: the
folder's name promises its content.

This module reads the environment for one thing only, where the cache is (``GRM_CACHE_DIR``, else
``$XDG_CACHE_HOME/grm``, else ``~/.cache/grm``), as pip and the HF hub do.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

CACHE_ENV = "GRM_CACHE_DIR"
# src/grm/benchmarks/bundled.py -> the repository root (the package runs from a clone: `pip install -e .`)
ARCHIVE_DIR = Path(__file__).resolve().parents[3] / "benchdata"
SUFFIX = ".tar.gz"
DIGEST_CHARS = 16
MARKER = ".shipped"  # written into an unpacked copy: lists its archives, and tells it from a user's folder
NOT_SHIPPED = {  # registered local benchmarks without an archive here, and why (docs/benchdata.md)
    "rmb": "RMB declares no licence, so it may not be redistributed",
}
FULL_COPY_FIX = (
    "point eval.benchdata (grm eval: --benchdata DIR or GRM_BENCHDATA=DIR) at a benchdata folder that holds it, "
    "e.g. a full copy such as ../shared/benchdata (docs/benchdata.md), or drop it from eval.benchmarks"
)


def archives(archive_dir: Path = ARCHIVE_DIR) -> list[Path]:
    """The shipped archives, sorted by name.

    Raises:
        FileNotFoundError: none there (an installed copy without the repository), naming the fix.
    """
    found = sorted(archive_dir.glob(f"*{SUFFIX}")) if archive_dir.is_dir() else []
    if not found:
        raise FileNotFoundError(
            f"the benchmark archives shipped with the repository (benchdata/*{SUFFIX}) are not in {archive_dir}: "
            "run grm from a clone of the repository (pip install -e .), or point eval.benchdata (grm eval: "
            "--benchdata DIR or GRM_BENCHDATA=DIR) at an unpacked benchdata folder (docs/benchdata.md)"
        )
    return found


def shipped(archive_dir: Path = ARCHIVE_DIR) -> list[str]:
    """Names of the shipped benchmark folders (``rewardbench``, ``rm-bench``, ...).

    Example:
        >>> "rewardbench" in shipped() and "rmb" not in shipped()
        True
    """
    return [p.name.removesuffix(SUFFIX) for p in archives(archive_dir)]


def archive_digest(paths: list[Path]) -> str:
    """Hash of the archives' names and bytes: the name of their unpacked folder."""
    stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    return _digest(stamp)


@functools.lru_cache(maxsize=8)
def _digest(stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for path, _, _ in stamp:
        h.update(Path(path).name.encode() + b"\0")
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()[:DIGEST_CHARS]


def cache_dir() -> Path:
    """``$GRM_CACHE_DIR``, else ``$XDG_CACHE_HOME/grm``, else ``~/.cache/grm``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "grm"


def bundled_root(cache: Path | None = None, archive_dir: Path = ARCHIVE_DIR) -> Path:
    """The unpacked shipped copy: a benchdata folder (``rewardbench/``, ``realmistake/``, ...), unpacked on first
    use (atomically, under a lock) into ``cache/benchdata/<digest>``.

    Raises:
        FileNotFoundError: no archives (see ``archives``).
        OSError: the cache folder cannot be written, naming ``GRM_CACHE_DIR``.
    """
    paths = archives(archive_dir)
    parent = (cache or cache_dir()) / "benchdata"
    final = parent / archive_digest(paths)
    if final.is_dir():
        return final
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with _locked(parent / f".{final.name}.lock"):
            if not final.is_dir():  # another process may have finished while this one waited
                _unpack(paths, final)
    except OSError as exc:
        raise OSError(
            f"cannot unpack the shipped benchmark archives into {parent} ({exc}); set {CACHE_ENV}=DIR to a "
            "writable folder, or point eval.benchdata at an unpacked benchdata folder"
        ) from exc
    return final


def _unpack(paths: list[Path], final: Path) -> None:
    """Extract every archive into a temporary sibling of ``final``, check it, make it read-only, rename it."""
    for stale in final.parent.glob(f".tmp-{final.name}-*"):  # a killed unpack (we hold the lock: none is running)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is as readable as any other
    try:
        for path in paths:
            with tarfile.open(path, "r:gz") as tar:
                tar.extractall(tmp, filter="data")  # refuses absolute paths, '..', links out of tmp, devices
            name = path.name.removesuffix(SUFFIX)
            if not (tmp / name).is_dir():
                raise OSError(f"{path} does not hold a top folder {name}/; rebuild it with benchdata/pack.py")
        (tmp / MARKER).write_text("".join(f"{p.name}\n" for p in paths), encoding="utf-8")
        for p in tmp.rglob("*"):
            if p.is_file():
                p.chmod(0o444)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (POSIX); elsewhere no lock: the rename alone keeps readers safe."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def resolve(benchdata: str | Path | None, project_dir: str | Path = ".") -> Path:
    """``eval.benchdata``'s folder: the shipped copy for None, else the path (relative to ``project_dir``).

    Example:
        >>> resolve("/data/benchdata").as_posix()
        '/data/benchdata'
    """
    if benchdata is None:
        return bundled_root()
    from grm.files import project_path

    return project_path(project_dir, benchdata)


def is_bundled(root: Path) -> bool:
    """Whether ``root`` is an unpacked shipped copy (it holds the ``MARKER`` file ``_unpack`` writes)."""
    return (Path(root) / MARKER).is_file()


def missing_hint(name: str, root: Path) -> str:
    """Why ``name`` is not under ``root`` and the fix, when ``root`` is the shipped copy; "" otherwise."""
    if not is_bundled(root):
        return ""
    why = NOT_SHIPPED.get(name, "it is not among the benchmarks shipped in benchdata/")
    return f"{name} is not shipped with the repository ({why}): {FULL_COPY_FIX}"
