"""Resumability: stage outputs live in folders keyed by a content hash, completed by an atomic rename.

The single owner of "was this stage already computed?" is this module (Prefect caching is off: every task uses
``cache_policy=NO_CACHE``). A stage is declared once, as a ``Stage``: a pure ``select(cfg, **params)`` returning
the config *slice* its build reads (a small frozen dataclass), the files it reads (``files(cfg, **params)``,
hashed by content), the names of its upstream inputs, and a module-level ``build(slice, BuildContext)``. The build
receives only that slice and a ``BuildContext`` without any config, so the key below is exactly what it can read:

- the stage name and an explicit ``version`` (bump it when a stage's logic changes outside its import closure),
- the slice (canonical JSON),
- the content hashes of its declared files (tree md5 of a folder, md5 of a file, ``absent`` for a missing optional
  file) and its upstream inputs (a ``StageResult`` by key, a ``HashedFile`` by its DVC md5),
- the stage's code: a hash of the source of every ``grm``/``tasks`` module its functions' modules import,
  transitively, function-level imports included (``tasks.engine.stage_code``): a docstring edit in ``grm/serving`` keeps
  the training stages' keys.

Layout: ``{root}/{stage}/{key}/`` holds the outputs plus ``stage.json`` (outputs, metrics, info, timings). A build
writes into ``{root}/{stage}/.{key}.{pid}.tmp/``, then ``stage.json``, then ``os.rename`` to the final folder; a
crash (even SIGKILL) leaves only a tmp folder, which the next build of that key removes. A rerun therefore starts
at the first stage without a completed folder. Folders are never overwritten in place.

Verified reuse: ``stage.json`` carries a ``manifest`` (size and sha256 of every output file), written when the
folder is published. ``lookup`` checks it before a folder is reused: sizes and regular-file-ness by default (a
truncated ``model.safetensors``, a deleted file), every hash as well when ``GRM_VERIFY_STAGES=full``. A folder
that fails is reported (a warning naming the file), removed under the key's lock and rebuilt: a damaged output is
never reused, logged or registered. Folders published before manifests existed are reused as they are.

Concurrency: a build holds ``{root}/.locks/{stage}/{key}.lock`` (``tasks.engine.locks.file_lock``, an ``flock`` the kernel
releases when the holder dies). A second process (or thread) asking for the same key waits for it, then finds the
completed folder and reuses it (``cached``): two runs started together compute each stage once. A lock whose
holder died (SIGKILL) is free, so the waiter takes over and builds.

Example:
    >>> import tempfile
    >>> store = StageStore(tempfile.mkdtemp())
    >>> key = stage_key("demo", config={"a": 1}, inputs={}, code="c0")
    >>> r1 = store.run("demo", key, lambda out: StageOutput(metrics={"x": 1.0}))
    >>> r2 = store.run("demo", key, lambda out: 1 / 0)  # not called: the completed folder is found
    >>> (r1.cached, r2.cached, r2.metrics)
    (False, True, {'x': 1.0})
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import json
import logging
import os
import shutil
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Generic, TypeVar

from grm.benchmarks import bundled
from grm.config import to_dict
from grm.files import project_path, write_json_atomic
from tasks.engine.locks import file_lock
from tasks.engine.stage_code import STAGE_MODULES, package_roots

log = logging.getLogger(__name__)

MARKER = "stage.json"
VERIFY_ENV = "GRM_VERIFY_STAGES"  # "full": hash every output file before reuse (default: sizes only)
KEY_CHARS = 16  # 64 bits of sha256: collisions are not a practical concern for a few thousand stage runs


@dataclass(frozen=True)
class StageOutput:
    """What a build returns: ``outputs`` (name -> path relative to the stage folder, or absolute), ``metrics``
    (name -> float, logged to MLflow) and ``info`` (JSON-able notes kept in ``stage.json``)."""

    outputs: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


BuildFn = Callable[[Path], StageOutput]


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


@dataclass(frozen=True)
class HashedFile:
    """An upstream file whose content hash is already known (a DVC-versioned split): keyed by ``md5``, not path."""

    path: str
    md5: str


def _canonical(value: Any) -> Any:
    if isinstance(value, StageResult):  # upstream stages count by key (not by cached/seconds)
        return value.key
    if isinstance(value, HashedFile):  # content, not location
        return value.md5
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


def file_md5(path: str | Path) -> str:
    """MD5 of a file (the hash DVC uses, so run tags and ``data.dvc`` speak the same language)."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()


def tree_md5(root: str | Path) -> str:
    """MD5 over (relative path, file md5) of every file under ``root``, sorted: a folder's content hash."""
    root = Path(root)
    h = hashlib.md5()
    for p in sorted(x for x in root.rglob("*") if x.is_file()):
        h.update(f"{p.relative_to(root).as_posix()}\0{file_md5(p)}\n".encode())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (the stage manifest's check of a published output)."""
    with Path(path).open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def build_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file under ``folder`` except ``stage.json``."""
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink() and p.relative_to(folder).as_posix() != MARKER:
            out[p.relative_to(folder).as_posix()] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    return out


def verify_manifest(folder: Path, manifest: Any, *, full: bool = False) -> str | None:
    """What makes ``folder`` differ from ``manifest`` (a missing, non-regular, resized or, with ``full``, changed
    file), or None. A ``None`` manifest (a folder published before manifests) passes unchecked.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp()); _ = (d / "w.bin").write_bytes(b"1234")
        >>> m = build_manifest(d); _ = (d / "w.bin").write_bytes(b"12")
        >>> verify_manifest(d, m)
        'w.bin is 2 bytes, 4 when it was published (truncated or replaced)'
    """
    if manifest is None:
        return None
    if not isinstance(manifest, dict):
        return f"{MARKER}: its manifest is not an object"
    for rel, entry in manifest.items():
        path = folder / rel
        try:
            st = path.stat()
        except OSError:
            return f"{rel} is missing"
        if not stat.S_ISREG(st.st_mode):
            return f"{rel} is no longer a regular file"
        if not isinstance(entry, dict) or st.st_size != entry.get("size"):
            size = entry.get("size") if isinstance(entry, dict) else "?"
            return f"{rel} is {st.st_size} bytes, {size} when it was published (truncated or replaced)"
        if full and file_sha256(path) != entry.get("sha256"):
            return f"{rel} has changed since it was published (sha256 differs)"
    return None


def code_hash(roots: Mapping[str, Path]) -> str:
    """Hash of every ``*.py`` under each root (package name -> folder), by package-relative path + bytes."""
    h = hashlib.sha256()
    for name in sorted(roots):
        for p in sorted(Path(roots[name]).rglob("*.py")):
            h.update(f"{name}/{p.relative_to(roots[name]).as_posix()}".encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:KEY_CHARS]


@lru_cache(maxsize=1)
def code_version() -> str:
    """``code_hash`` of ``grm`` + ``tasks``, once per process: the run's code version (tag ``grm.code_version``).

    Stage keys do not use it: a stage's key hashes its own import closure (``tasks.engine.stage_code.stage_code``), so an
    edit changes the keys of the stages whose code can reach it, and only those. ``flows`` counts for neither: it
    only composes stages, and what it passes them (upstream results, parameters) is keyed.
    """
    return code_hash(package_roots())


class StageStore:
    """Completed stage folders under ``root`` (default ``artifacts/stages``)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    def final_dir(self, stage: str, key: str) -> Path:
        return self.root / stage / key

    def lookup(self, stage: str, key: str) -> StageResult | None:
        """The completed result of ``stage`` under ``key``, or None: no folder, a folder without ``stage.json``, or
        one whose files do not match its manifest (``verify_manifest``; a warning names the file)."""
        marker = self.final_dir(stage, key) / MARKER
        if not marker.exists():
            return None
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("stage %s (key %s): %s is unreadable (%s); rebuilding", stage, key, marker, exc)
            return None
        problem = verify_manifest(marker.parent, data.get("manifest"), full=os.environ.get(VERIFY_ENV) == "full")
        if problem:
            log.warning("stage %s (key %s): the cached output is damaged: %s; rebuilding it", stage, key, problem)
            return None
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
        """Remove the tmp folders of ``key`` left by crashed builds. Called under the key's lock: every live
        builder of a key holds that lock, so any tmp folder of the key found then is abandoned (its process died,
        or is a not yet reaped zombie)."""
        for tmp in (self.root / stage).glob(f".{key}.*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)

    def run(self, stage: str, key: str, build: BuildFn) -> StageResult:
        """Return the completed result of (stage, key), building it first if needed.

        Args:
            stage: stage name (``rft.sample``); a folder level.
            key: ``stage_key(...)``.
            build: ``build(out_dir) -> StageOutput``; writes its files under ``out_dir``.

        Returns:
            The ``StageResult``; ``cached`` tells whether ``build`` ran (False only in the process that built it;
            a process that waited for another one's build of the same key gets the completed folder, cached).
        """
        done = self.lookup(stage, key)
        if done is not None:
            return done
        with file_lock(self.lock_path(stage, key), f"stage {stage} {key} (being built by another run)"):
            done = self.lookup(stage, key)  # completed by the holder we waited for
            if done is not None:
                return done
            self._remove_damaged(stage, key)
            return self._build(stage, key, build)

    def _remove_damaged(self, stage: str, key: str) -> None:
        """Under the key's lock: a final folder ``lookup`` refused (damaged) is moved aside and deleted, so the
        rebuild can publish by rename."""
        final = self.final_dir(stage, key)
        if final.exists():
            aside = self.root / stage / f".{key}.{os.getpid()}.damaged.tmp"
            os.rename(final, aside)
            shutil.rmtree(aside, ignore_errors=True)

    def lock_path(self, stage: str, key: str) -> Path:
        return self.root / ".locks" / stage / f"{key}.lock"

    def _build(self, stage: str, key: str, build: BuildFn) -> StageResult:
        self._clear_stale(stage, key)
        tmp = self.root / stage / f".{key}.{os.getpid()}.tmp"
        tmp.mkdir(parents=True, exist_ok=False)
        start = time.perf_counter()
        try:
            built = build(tmp)
            if not isinstance(built, StageOutput):
                raise TypeError(f"stage {stage}: a build returns a StageOutput, got {type(built).__name__}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        seconds = time.perf_counter() - start
        record = {"stage": stage, "key": key, "outputs": built.outputs, "metrics": built.metrics, "info": built.info}
        record.update({"seconds": seconds, "completed_at": time.time(), "manifest": build_manifest(tmp)})
        write_json_atomic(tmp / MARKER, record)
        final = self.final_dir(stage, key)
        try:
            os.rename(tmp, final)
        except OSError:  # completed meanwhile by a process that took no lock (an older version): keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
        result = self.lookup(stage, key)
        assert result is not None
        return dataclasses.replace(result, cached=False)


# ---------------------------------------------------------------------------------------------------------------
# Stage declarations: what a build reads (slice + files + upstream inputs) is what its key hashes.

S = TypeVar("S")


class MissingInputError(FileNotFoundError):
    """A file or folder a stage reads does not exist; the message names the config key and the fix."""


@dataclass(frozen=True)
class FileInput:
    """A file or folder a build reads, named by a config value; its *content* is part of the key.

    Args:
        path: absolute, or relative to the project folder.
        config_key: the config key that names it (for errors and for the test's field -> file mapping).
        required: a missing required input fails before the build; a missing optional one (``general.jsonl``)
            is keyed as ``absent``, so creating it later changes the key.
        fix: what to do when a required input is missing (ends the error message).
    """

    path: str
    config_key: str
    required: bool = True
    fix: str = ""


@dataclass(frozen=True)
class Skip:
    """``select`` returns this when the config switches the stage off; ``run_stage`` then returns None."""

    reason: str


@dataclass(frozen=True)
class BuildContext:
    """Everything a build gets besides its slice; deliberately no config (the slice is the config it may read).

    ``inputs``: the upstream values by name (``StageResult``, ``HashedFile``, None for an absent optional one);
    ``files``: the resolved paths of the stage's ``FileInput``s by name (None: an optional file that is absent).
    """

    out: Path
    run_id: str
    tracker: Any  # tasks.tracking.Tracker | NullTracker | a test fake
    project_dir: Path
    store_root: Path
    inputs: Mapping[str, Any] = field(default_factory=dict)
    files: Mapping[str, Path | None] = field(default_factory=dict)


def _no_files(cfg: Any, **params: Any) -> Mapping[str, FileInput]:
    return {}


@dataclass(frozen=True)
class Stage(Generic[S]):
    """One stage, declared in one place.

    Args:
        name: stage name (``rft.sample``); may hold ``{param}`` fields filled from the call's params (``eval.{name}``).
        select: ``select(cfg, **params) -> slice | Skip``: pure; the slice is a frozen dataclass holding every config
            value the build reads (seeds included) and nothing else.
        build: ``build(slice, BuildContext) -> StageOutput``, a module-level function (no closure over a config).
        inputs: names of the upstream values the call passes (``StageResult``/``HashedFile``/None), all keyed.
        files: ``files(cfg, **params) -> {name: FileInput}``: files/folders read, hashed by content (a function
            with a ``project_dir`` parameter also gets the project folder, to list a folder's files).
        after: ``after(slice, tracker, run_id, result)`` logs artifacts (tables, figures) on every run, reused or
            not; it cannot change the stage's outputs.
        version: bump when the stage's logic changes outside its import closure (``tasks.engine.stage_code``: what it
            imports is hashed anyway; code loaded by a string, ``importlib``, is not).
        category: bench category of the build (``compute``, ``validation``, ...).
        examples: ``examples(tmp_dir) -> [params, ...]``: parameter sets for the generated key test (one ``{}``
            when the stage takes none).
        process: a heavy model stage: its build waits for a CPU slot (``tasks.engine.workers.CpuPool``) and, when stages run
            at once (``runtime.parallel_stages`` > 1), runs in a process of its own (``tasks.engine.workers.run_build``).
    """

    name: str
    select: Callable[..., Any]
    build: Callable[[Any, BuildContext], StageOutput]
    inputs: tuple[str, ...] = ()
    files: Callable[..., Mapping[str, FileInput]] = _no_files
    after: Callable[[Any, Any, str, StageResult], None] | None = None
    version: str = "1"
    category: str = "compute"
    examples: Callable[[Path], Sequence[Mapping[str, Any]]] | None = None
    process: bool = False

    def stage_name(self, params: Mapping[str, Any]) -> str:
        """``name`` with its ``{param}`` fields filled (a field the call does not pass stays as written)."""
        try:
            return self.name.format(**params)
        except (KeyError, IndexError):
            return self.name


REGISTRY: dict[str, Stage] = {}


def register(stage: Stage[S]) -> Stage[S]:
    """Add ``stage`` to ``REGISTRY`` (the generated key test enumerates it); a second stage of that name fails."""
    old = REGISTRY.get(stage.name)
    if old is not None and (old.build.__module__, old.build.__qualname__) != (
        stage.build.__module__,
        stage.build.__qualname__,
    ):
        raise ValueError(f"stage {stage.name!r} is declared twice ({old.build.__module__}, {stage.build.__module__})")
    REGISTRY[stage.name] = stage
    return stage


def load_stages() -> dict[str, Stage]:
    """Import every module of ``STAGE_MODULES`` (each registers its stages) and return ``REGISTRY``."""
    for name in STAGE_MODULES:
        importlib.import_module(name)
    return REGISTRY


def content_hash(path: Path) -> str:
    """``tree_md5`` of a folder, ``file_md5`` of a file. A benchmark folder of the shipped copy (read-only, named by
    its archives' digest: ``grm.benchmarks.bundled``) is hashed once per process and file listing (names, sizes,
    mtimes), since planning hashes it for every stage call."""
    if path.is_dir() and bundled.is_bundled(path.parent):
        listing = tuple(
            (p.relative_to(path).as_posix(), p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*"))
            if p.is_file()
        )
        return _shipped_tree_hash(str(path), listing)
    return f"tree:{tree_md5(path)}" if path.is_dir() else f"file:{file_md5(path)}"


@lru_cache(maxsize=64)
def _shipped_tree_hash(path: str, listing: tuple[tuple[str, int, int], ...]) -> str:
    return f"tree:{tree_md5(path)}"


def resolve_files(
    specs: Mapping[str, FileInput], project_dir: str | Path
) -> tuple[dict[str, Path | None], dict[str, str]]:
    """Absolute paths and content hashes of a stage's file inputs (``absent`` for a missing optional one)."""
    paths: dict[str, Path | None] = {}
    hashes: dict[str, str] = {}
    for name, spec in specs.items():
        p = project_path(project_dir, spec.path)
        if p.exists():
            paths[name], hashes[name] = p, content_hash(p)
        elif spec.required:
            fix = spec.fix or f"point {spec.config_key} at an existing file or folder"
            raise MissingInputError(
                f"{spec.config_key}: {p} does not exist; {fix} (relative paths are read from {project_dir})"
            )
        else:
            paths[name], hashes[name] = None, "absent"
    return paths, hashes


@dataclass(frozen=True)
class StagePlan:
    """A stage call resolved against a config: its name, slice, files and key (computed before any build)."""

    stage: str
    key: str
    slice: Any
    files: dict[str, Path | None]
    file_hashes: dict[str, str]
    inputs: dict[str, Any]


def plan(
    stage: Stage,
    cfg: Any,
    inputs: Mapping[str, Any],
    project_dir: str | Path,
    code: str,
    params: Mapping[str, Any] | None = None,
) -> StagePlan | Skip:
    """Resolve ``stage`` for ``cfg``: slice, file hashes, key; ``Skip`` when the config switches it off.

    Raises:
        ValueError: the call's inputs are not exactly the stage's declared ``inputs``.
        MissingInputError: a required file input does not exist.
    """
    params = dict(params or {})
    name = stage.stage_name(params)
    if set(inputs) != set(stage.inputs):
        raise ValueError(f"stage {name} takes inputs {sorted(stage.inputs)}, got {sorted(inputs)}")
    selected = stage.select(cfg, **params)
    if isinstance(selected, Skip):
        return selected
    # a files function that lists a folder (data.prepare's drops) takes the project folder its paths resolve in
    root = {"project_dir": project_dir} if "project_dir" in inspect.signature(stage.files).parameters else {}
    paths, hashes = resolve_files(stage.files(cfg, **params, **root), project_dir)
    key = stage_key(
        name, config=selected, inputs={"upstream": dict(inputs), "files": hashes}, code=code, version=stage.version
    )
    return StagePlan(name, key, selected, paths, hashes, dict(inputs))


class StaleInputError(RuntimeError):
    """A file a build reads no longer has the content its key was computed from: the output would be published
    under a key that does not describe it, so the build fails and nothing is published."""


def verify_inputs(p: StagePlan, files: bool = True) -> None:
    """Check that every ``HashedFile`` input still has its md5 and (``files``) every file input its key-time
    content hash.

    ``run_stage`` calls it before a build (``files=False``: the splits, small; a model folder was hashed for the
    key moments ago) and after it, on everything, before the completed folder is renamed into place: an input
    replaced meanwhile (another run republishing, a hand edit) fails the stage instead of leaving a wrong output
    under the right key. The second pass re-reads file inputs once per build (0.4 s for 111 MB of benchmark data).

    Raises:
        StaleInputError: naming the input, the expected and the found hash.
    """
    bad: list[str] = []
    for name, value in p.inputs.items():
        if isinstance(value, HashedFile):
            path = Path(value.path)
            found = file_md5(path) if path.is_file() else "missing"
            if found != value.md5:
                bad.append(f"input {name} ({path}): md5 {found}, the key has {value.md5}")
    for name, path in p.files.items() if files else ():
        expected = p.file_hashes[name]
        found = "absent" if path is None or not path.exists() else content_hash(path)
        if path is None and expected == "absent":
            continue
        if found != expected:
            bad.append(f"file {name} ({path}): {found}, the key has {expected}")
    if bad:
        raise StaleInputError(
            f"stage {p.stage} (key {p.key}): inputs changed since the key was computed: "
            + "; ".join(bad)
            + ". Nothing was published; rerun to key the stage on the current inputs"
        )
