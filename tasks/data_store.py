"""Content-addressed copies of data versions: ``artifacts/datasets/{md5}/`` holds the files of DVC version ``{md5}.dir``.

Why: ``data/`` is the one DVC-tracked folder of a project, and every run of the project republishes it. A stage that
read ``data/train.jsonl`` by path could read another run's data (two runs at once, or a run resumed after another
published). Stages therefore read the copy named by the md5 their key holds (``tasks.data.split``); a copy is
written once (tmp folder, md5s verified, atomic rename) and never changed, so no later publish can reach it.

A version reaches the store either from the run that published it (``from_files``: the validated splits) or from
the DVC remote (``tasks.versioning.from_remote``: a temporary DVC workspace pulls ``{md5}.dir`` without touching
the project's ``data/`` or ``data.dvc``), which is how the nightly evaluation, ``grm data pull --out`` and ``grm reproduce`` read
an older version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from grm.errors import UserError
from tasks.engine.stages import file_md5

STORE = "datasets"  # below the artifacts root (``tasks.engine.runtime.artifacts_root``)
DIR_SUFFIX = ".dir"


class DataVersionError(UserError):
    """A data version cannot be found or does not match its md5s; the message names what exists and the fix."""


def hex_md5(dvc_md5: str) -> str:
    """``fa50...`` for ``fa50....dir`` (the folder name of a version in the store)."""
    return dvc_md5.removesuffix(DIR_SUFFIX)


def version_dir(store_root: str | Path, dvc_md5: str) -> Path:
    """The folder of version ``dvc_md5`` under ``store_root`` (``artifacts/datasets``)."""
    return Path(store_root) / hex_md5(dvc_md5)


def mismatches(folder: str | Path, expected: dict[str, str]) -> dict[str, tuple[str, str | None]]:
    """Files of ``folder`` whose md5 differs from ``expected`` (name -> (expected, actual or None if missing))."""
    folder = Path(folder)
    bad: dict[str, tuple[str, str | None]] = {}
    for name, md5 in expected.items():
        p = folder / name
        actual = file_md5(p) if p.is_file() else None
        if actual != md5:
            bad[name] = (md5, actual)
    return bad


def complete(folder: Path, expected: dict[str, str]) -> bool:
    """True when ``folder`` holds exactly ``expected`` (no file missing, changed or extra)."""
    if not folder.is_dir():
        return False
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    return present == set(expected) and not mismatches(folder, expected)


def from_files(store_root: str | Path, dvc_md5: str, files: dict[str, Path], expected: dict[str, str]) -> Path:
    """Copy ``files`` (name -> source) into the store as version ``dvc_md5``, verified against ``expected``.

    Idempotent and safe with concurrent writers: each writes its own tmp folder and the first rename wins (the
    content is the same: it is named by its md5s).

    Raises:
        DataVersionError: a source's md5 is not the expected one (nothing is written).
    """
    final = version_dir(store_root, dvc_md5)
    if complete(final, expected):
        return final
    if set(files) != set(expected):
        raise DataVersionError(
            f"data version {dvc_md5}: files {sorted(files)} are not the version's {sorted(expected)}"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        for name, src in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / name)
        bad = mismatches(tmp, expected)
        if bad:
            raise DataVersionError(
                f"data version {dvc_md5}: copied files do not match the version's md5s (name: expected, actual): {bad}"
            )
        _install(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _install(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; a ``final`` that is incomplete (a crash, a hand edit) is replaced."""
    try:
        os.rename(tmp, final)
    except OSError:
        if final.is_dir():  # completed by another writer (same md5 = same bytes), or a damaged leftover
            stale = final.with_name(f".{final.name}.{os.getpid()}.stale")
            try:
                os.rename(final, stale)
                os.rename(tmp, final)
            except OSError:
                pass  # another writer installed it between the two renames
            shutil.rmtree(stale, ignore_errors=True)


def dir_md5(files: dict[str, str]) -> str:
    """The DVC 3 ``.dir`` md5 of a folder holding ``files`` (relpath -> md5), computed as DVC does
    (``dvc_data.hashfile.tree.Tree``: md5 of the JSON list of ``{"md5", "relpath"}`` sorted by relpath).

    Example:
        >>> dir_md5({"a.txt": "0" * 32})
        'ca891783b9d800605bb253a9cfb2aa59.dir'
    """
    entries = [{"md5": md5, "relpath": rel} for rel, md5 in sorted(files.items())]
    blob = json.dumps(entries, sort_keys=True).encode("utf-8")
    return hashlib.md5(blob).hexdigest() + DIR_SUFFIX


def dir_listing(cache_dir: Path, dvc_md5: str) -> dict[str, str]:
    """The files of ``{md5}.dir`` (relpath -> md5) from a DVC cache or a local remote folder (DVC 3 layout)."""
    h = hex_md5(dvc_md5)
    obj = cache_dir / "files" / "md5" / h[:2] / f"{h[2:]}{DIR_SUFFIX}"
    entries = json.loads(obj.read_text(encoding="utf-8"))
    return {e["relpath"]: e["md5"] for e in entries}


def dvc_file_text(dvc_md5: str, path: str = "data") -> str:
    """A minimal ``.dvc`` file pinning folder version ``dvc_md5`` at ``path``."""
    if not dvc_md5.endswith(DIR_SUFFIX):
        dvc_md5 += DIR_SUFFIX
    return f"outs:\n- md5: {dvc_md5}\n  hash: md5\n  path: {path}\n"
