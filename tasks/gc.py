"""``grm gc``: remove what no alias and no recent run uses (stage folders, downloaded models, registry versions).

Weekly runs fill a project with stage folders (``artifacts/stages/{stage}/{key}``), downloaded registry models
(``artifacts/models/{name}-v{N}``) and registry versions with a copy of their weights each. What is **kept**:

- every stage folder a kept run used: the runs of the registry versions that hold an alias (``champion``,
  ``challenger``), the last ``keep_runs`` pipeline runs of each experiment, and every run still RUNNING; a run's
  stage keys are the ``grm.stage``/``grm.stage_key`` tags of its nested stage runs (``tasks.engine.runtime.run_stage``);
- the downloaded models of versions holding an alias;
- registry versions holding an alias, the newest ``keep_versions`` of each registered model, a meta RM version
  linked to a kept GRM version, and any version whose promotion is still pending (``repair_promotions`` owns it).

Everything else is removed: a version with its logged model artifact (local stores only; a server's artifacts are
left and listed), a stage folder or a downloaded model as a folder. ``plan_gc`` only reads; ``apply_gc`` deletes.
Without the MLflow store there is no record of what is in use, so nothing is planned (an error says so).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from grm.errors import UserError
from tasks import mlflow_store, tracking
from tasks.engine.runtime import artifacts_root

STAGE_TAG, KEY_TAG, PARENT_TAG = "grm.stage", "grm.stage_key", "mlflow.parentRunId"


@dataclass(frozen=True)
class Removal:
    """One thing ``apply_gc`` deletes: ``kind`` stage | model | version, ``what`` names it, ``path`` is the local
    folder removed (None: nothing on disk, or a remote artifact), ``bytes`` its size."""

    kind: str
    what: str
    path: str | None
    bytes: int
    why: str
    version: tuple[str, str] | None = None  # (registered model, version) for kind "version"


@dataclass
class GcPlan:
    """What ``grm gc`` would remove and what it keeps (counts), for the dry run and for ``apply_gc``."""

    remove: list[Removal] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.remove)


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human(n: int) -> str:
    """``1536`` -> ``1.5 KiB``.

    Example:
        >>> human(1536), human(10)
        ('1.5 KiB', '10 B')
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


@dataclass(frozen=True)
class VersionInfo:
    """A registry version as the selection sees it."""

    name: str
    version: int
    has_alias: bool
    pending: bool = False
    grm_version: str | None = None  # a meta RM version: the GRM version it was promoted with


def versions_to_delete(
    versions: Sequence[VersionInfo], keep: int, linked: Mapping[str, str] | None = None
) -> list[VersionInfo]:
    """The versions ``grm gc`` deletes: no alias, not pending, older than the newest ``keep`` of their model, and
    (for a meta RM, ``linked`` = meta model name -> GRM model name) not linked to a GRM version that is kept.

    Example:
        >>> vs = [VersionInfo("grm", v, v == 1) for v in (1, 2, 3, 4, 5)]
        >>> [v.version for v in versions_to_delete(vs, keep=2)]
        [2, 3]
    """
    linked = dict(linked or {})
    by_model: dict[str, list[VersionInfo]] = {}
    for v in versions:
        by_model.setdefault(v.name, []).append(v)
    doomed: set[tuple[str, int]] = set()
    for name in sorted(by_model, key=lambda n: n in linked):  # GRMs first: their meta RMs follow them
        newest = {v.version for v in sorted(by_model[name], key=lambda v: -v.version)[: max(keep, 0)]}
        for v in by_model[name]:
            if v.has_alias or v.pending or v.version in newest:
                continue
            grm = linked.get(name)
            if grm and v.grm_version and (grm, int(v.grm_version)) not in doomed and _exists(by_model, grm, v):
                continue  # the meta RM of a GRM version that stays
            doomed.add((name, v.version))
    return [v for v in versions if (v.name, v.version) in doomed]


def _exists(by_model: Mapping[str, list[VersionInfo]], grm: str, meta: VersionInfo) -> bool:
    return any(str(g.version) == meta.grm_version for g in by_model.get(grm, []))


def _local(uri: str) -> Path | None:
    """The local path of a ``file:`` (or plain path) artifact URI; None for a remote one."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


class _Store:
    """The MLflow reads ``plan_gc`` needs (one client)."""

    def __init__(self, uri: str):
        from mlflow import MlflowClient

        self.client = MlflowClient(uri)

    def parent_runs(self) -> tuple[list[Any], list[Any]]:
        """(every pipeline parent run, newest first per experiment; the experiments' ids)."""
        exps = [e.experiment_id for e in self.client.search_experiments()]
        runs = []
        for exp in exps:
            found = self.client.search_runs([exp], max_results=5000, order_by=["attributes.start_time DESC"])
            runs += [r for r in found if PARENT_TAG not in r.data.tags]
        return runs, exps

    def stage_keys(self, exps: Sequence[str], parents: Iterable[str]) -> set[tuple[str, str]]:
        """The (stage, key) pairs the stage runs of ``parents`` used."""
        wanted = set(parents)
        keys: set[tuple[str, str]] = set()
        for exp in exps:
            for r in self.client.search_runs([exp], max_results=50000):
                tags = r.data.tags
                if tags.get(PARENT_TAG) in wanted and STAGE_TAG in tags and KEY_TAG in tags:
                    keys.add((tags[STAGE_TAG], tags[KEY_TAG]))
        return keys

    def versions(self) -> tuple[list[Any], dict[str, dict[str, str]]]:
        """(every model version, registered model -> {alias: version})."""
        out, aliases = [], {}
        for m in self.client.search_registered_models():
            aliases[m.name] = dict(m.aliases or {})
            out += list(self.client.search_model_versions(f"name='{m.name}'"))
        return out, aliases

    def artifact_dir(self, source: str) -> Path | None:
        """The local folder of a version's logged model (``runs:/RUN/PATH`` or ``models:/m-ID``)."""
        from mlflow.exceptions import MlflowException

        try:
            if source.startswith("runs:/"):
                run_id, _, path = source.removeprefix("runs:/").partition("/")
                root = _local(self.client.get_run(run_id).info.artifact_uri)
                return root / path if root is not None else None
            if source.startswith("models:/m-"):
                return _local(self.client.get_logged_model(source.removeprefix("models:/")).artifact_location)
        except MlflowException:
            return None
        return _local(source)


def plan_gc(
    project_dir: str | Path = ".", keep_runs: int = 3, keep_versions: int = 3, tracking_uri: str | None = None
) -> GcPlan:
    """What ``grm gc`` removes in ``project_dir`` (reads only).

    Raises:
        UserError: a negative count, or no MLflow store (nothing records what is in use).
    """
    if keep_runs < 0 or keep_versions < 0:
        raise UserError(f"--keep-runs ({keep_runs}) and --keep-versions ({keep_versions}) must be >= 0")
    root = Path(project_dir).resolve()
    uri = mlflow_store.resolve_tracking_uri(tracking_uri, root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        raise UserError(
            f"no MLflow store at {uri.removeprefix('sqlite:///')}: it records which stages and models runs use, so "
            "grm gc removes nothing without it",
            fix="run grm gc in the project folder (--project-dir) or pass --tracking-uri",
        )
    store = _Store(uri)
    plan = GcPlan()
    runs, exps = store.parent_runs()
    versions, aliases = store.versions()
    held = {(name, str(v)) for name, a in aliases.items() for v in a.values()}
    keep_runs_ids: set[str] = set()
    per_exp: dict[str, int] = {}
    for r in runs:  # newest first within each experiment
        exp = r.info.experiment_id
        if per_exp.get(exp, 0) < keep_runs or r.info.status == "RUNNING":
            keep_runs_ids.add(r.info.run_id)
        per_exp[exp] = per_exp.get(exp, 0) + 1
    keep_runs_ids |= {v.run_id for v in versions if (v.name, str(v.version)) in held and v.run_id}
    plan.kept["runs"] = len(keep_runs_ids)

    # registry versions
    infos = {
        (v.name, int(v.version)): VersionInfo(
            v.name,
            int(v.version),
            (v.name, str(v.version)) in held,
            (v.tags or {}).get(tracking.PROMOTION_TAG) == "pending",
            (v.tags or {}).get("grm_version"),
        )
        for v in versions
    }
    meta_of = {
        v.name: g.name
        for v in versions
        for g in versions
        if (v.tags or {}).get("grm_version") and g.run_id == v.run_id and g.name != v.name
        and (g.tags or {}).get(tracking.META_LINK_TAG) == str(v.version)
    }  # fmt: skip
    doomed = versions_to_delete(list(infos.values()), keep_versions, meta_of)
    source = {(v.name, int(v.version)): v for v in versions}
    for d in doomed:
        mv = source[(d.name, d.version)]
        folder = store.artifact_dir(mv.source)
        size = folder_bytes(folder) if folder is not None and folder.exists() else 0
        if folder is None:
            plan.notes.append(f"{d.name} v{d.version}: its model artifact ({mv.source}) is not local; left in place")
        why = f"no alias, older than the newest {keep_versions} versions"
        plan.remove.append(
            Removal(
                "version",
                f"{d.name} v{d.version}",
                str(folder) if folder else None,
                size,
                why,
                (d.name, str(d.version)),
            )
        )
    plan.kept["versions"] = len(infos) - len(doomed)

    # stage folders
    stage_root = artifacts_root(root) / "stages"
    used = store.stage_keys(exps, keep_runs_ids)
    kept_stages = 0
    if stage_root.is_dir():
        for stage_dir in sorted(p for p in stage_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for key_dir in sorted(p for p in stage_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if (stage_dir.name, key_dir.name) in used:
                    kept_stages += 1
                    continue
                why = "used by no kept run (alias holders, the last runs, running ones)"
                plan.remove.append(
                    Removal("stage", f"{stage_dir.name}/{key_dir.name}", str(key_dir), folder_bytes(key_dir), why)
                )
    plan.kept["stages"] = kept_stages

    # downloaded models
    models_root = artifacts_root(root) / "models"
    keep_models = {f"{name}-v{v}" for name, v in held}
    kept_models = 0
    if models_root.is_dir():
        for folder in sorted(p for p in models_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if folder.name in keep_models:
                kept_models += 1
                continue
            plan.remove.append(Removal("model", folder.name, str(folder), folder_bytes(folder), "held by no alias"))
    plan.kept["models"] = kept_models
    return plan


def apply_gc(plan: GcPlan, project_dir: str | Path = ".", tracking_uri: str | None = None) -> list[str]:
    """Delete what ``plan`` lists: registry versions first (under the registry lock), then folders.

    Returns:
        One line per thing removed.
    """
    from mlflow.exceptions import MlflowException

    root = Path(project_dir).resolve()
    tracker = tracking.Tracker(mlflow_store.resolve_tracking_uri(tracking_uri, root), "gc")
    done = []
    versions = [r for r in plan.remove if r.kind == "version"]
    if versions:
        client = tracker.client()
        with tracker.registry_lock():  # not while a run's gate moves aliases
            for r in versions:
                assert r.version is not None
                name, version = r.version
                held = {str(v) for v in (client.get_registered_model(name).aliases or {}).values()}
                if version in held:  # an alias moved onto it since the plan
                    done.append(f"kept {r.what}: it holds an alias now")
                    continue
                try:
                    client.delete_model_version(name, version)
                except MlflowException as exc:
                    done.append(f"could not delete {r.what}: {exc}")
                    continue
                if r.path:
                    shutil.rmtree(r.path, ignore_errors=True)
                done.append(f"deleted {r.what} and its model artifact ({human(r.bytes)})")
    for r in plan.remove:
        if r.kind in ("stage", "model") and r.path:
            shutil.rmtree(r.path, ignore_errors=True)
            done.append(f"removed {r.kind} {r.what} ({human(r.bytes)})")
    return done
