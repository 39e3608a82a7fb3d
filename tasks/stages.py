"""Resumability: stage outputs live in folders keyed by a content hash, completed by an atomic rename.

The single owner of "was this stage already computed?" is this module (Prefect caching is off: every task uses
``cache_policy=NO_CACHE``). A stage's key hashes everything its output depends on:

- the stage name and an explicit ``version`` (bump it when the task's own logic changes),
- its config section(s) (canonical JSON),
- the hashes of its input data files and of its upstream stages' keys,
- the code version: a hash of every ``*.py`` of the ``grm`` package.

Layout: ``{root}/{stage}/{key}/`` holds the outputs plus ``stage.json`` (outputs, metrics, info, timings). A build
writes into ``{root}/{stage}/.{key}.{pid}.tmp/``, then ``stage.json``, then ``os.rename`` to the final folder; a
crash (even SIGKILL) leaves only a tmp folder, which the next build of that key removes. A rerun therefore starts
at the first stage without a completed folder. Folders are never overwritten in place.

Example:
    >>> import tempfile
    >>> store = StageStore(tempfile.mkdtemp())
    >>> key = stage_key("demo", config={"a": 1}, inputs={}, code="c0")
    >>> r1 = store.run("demo", key, lambda out: ({}, {"x": 1.0}, {}))
    >>> r2 = store.run("demo", key, lambda out: 1 / 0)  # not called: the completed folder is found
    >>> (r1.cached, r2.cached, r2.metrics)
    (False, True, {'x': 1.0})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from grm.config import to_dict
from grm.files import write_json_atomic

MARKER = "stage.json"
KEY_CHARS = 16  # 64 bits of sha256: collisions are not a practical concern for a few thousand stage runs

# A build returns (outputs: name -> path relative to the stage folder, metrics: name -> float, info: JSON-able).
BuildFn = Callable[[Path], tuple[dict[str, str], dict[str, float], dict[str, Any]]]


@dataclass(frozen=True)
class StageResult:
    """What a completed stage hands downstream (picklable; paths are absolute strings)."""

    stage: str
    key: str
    path: str
    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    cached: bool = False
    seconds: float = 0.0  # build time of the run that computed it (0 would hide the cost of a cached stage)

    def output(self, name: str) -> Path:
        """Absolute path of output ``name``; the error lists the outputs the stage has."""
        if name not in self.outputs:
            raise KeyError(f"stage {self.stage} has no output {name!r}; it has {sorted(self.outputs)}")
        return Path(self.path) / self.outputs[name]


def _canonical(value: Any) -> Any:
    if isinstance(value, StageResult):  # upstream stages count by key (not by cached/seconds)
        return value.key
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def stage_key(stage: str, *, config: Any, inputs: Mapping[str, Any], code: str, version: str = "1") -> str:
    """Content hash of a stage's inputs (config dataclasses, input hashes, upstream ``StageResult`` keys)."""
    payload = {"stage": stage, "version": version, "config": _canonical(config), "inputs": _canonical(inputs)}
    payload["code"] = code
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:KEY_CHARS]


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 of a file (the hash DVC uses, so run tags and ``data.dvc`` speak the same language)."""
    h = hashlib.md5()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def tree_md5(root: str | Path) -> str:
    """MD5 over (relative path, file md5) of every file under ``root``, sorted: a folder's content hash."""
    root = Path(root)
    h = hashlib.md5()
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        h.update(f"{p.relative_to(root).as_posix()}\0{file_md5(p)}\n".encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of every ``*.py`` in the installed ``grm`` package: a core edit invalidates every stage."""
    import grm

    pkg = Path(grm.__file__).parent
    h = hashlib.sha256()
    for p in sorted(pkg.rglob("*.py")):
        h.update(p.relative_to(pkg).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:KEY_CHARS]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StageStore:
    """Completed stage folders under ``root`` (default ``artifacts/stages``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def final_dir(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lookup(self, stage: str, key: str) -> StageResult | None:
        """The completed result of ``stage`` under ``key``, or None (a folder without ``stage.json`` is ignored)."""
        marker = self.final_dir(stage, key) / MARKER
        if not marker.exists():
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
        return StageResult(
            stage=stage,
            key=key,
            path=str(marker.parent),
            outputs=data.get("outputs", {}),
            metrics=data.get("metrics", {}),
            info=data.get("info", {}),
            cached=True,
            seconds=float(data.get("seconds", 0.0)),
        )

    def _clear_stale(self, stage: str, key: str) -> None:
        """Remove tmp folders of ``key`` left by dead processes (a crash mid-build)."""
        for tmp in (self.root / stage).glob(f".{key}.*.tmp"):
            try:
                pid = int(tmp.name.split(".")[2])
            except (IndexError, ValueError):
                pid = -1
            if pid == os.getpid() or pid < 0 or not _pid_alive(pid):
                shutil.rmtree(tmp, ignore_errors=True)

    def run(self, stage: str, key: str, build: BuildFn) -> StageResult:
        """Return the completed result of (stage, key), building it first if needed.

        Args:
            stage: stage name (``rft.sample``); a folder level.
            key: ``stage_key(...)``.
            build: ``build(out_dir) -> (outputs, metrics, info)``; writes its files under ``out_dir``.

        Returns:
            The ``StageResult``; ``cached`` tells whether ``build`` ran.
        """
        done = self.lookup(stage, key)
        if done is not None:
            return done
        self._clear_stale(stage, key)
        tmp = self.root / stage / f".{key}.{os.getpid()}.tmp"
        tmp.mkdir(parents=True, exist_ok=False)
        start = time.perf_counter()
        try:
            outputs, metrics, info = build(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        seconds = time.perf_counter() - start
        record = {"stage": stage, "key": key, "outputs": outputs, "metrics": metrics, "info": info}
        record.update({"seconds": seconds, "completed_at": time.time()})
        write_json_atomic(tmp / MARKER, record)
        final = self.final_dir(stage, key)
        try:
            os.rename(tmp, final)
        except OSError:  # another process completed the same key first: identical content, keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        result = self.lookup(stage, key)
        assert result is not None
        return dataclasses.replace(result, cached=False)
