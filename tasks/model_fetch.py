"""A registry model spec -> a local folder: the one path from ``champion``/``models:/NAME@ALIAS`` to files.

Used by the pipeline (``tasks.registry.resolve_model``) and by the CLI (``grm_cli.models.resolve_model``: ``grm
serve``, ``grm score``, ``grm eval``), so they read an alias the same way: under the registry lock, after
``repair_promotions`` (a promotion a killed run left half done is finished or rolled back first, so an alias pair
is never read half-moved), and then download that exact version (``models:/NAME/VERSION``), not whatever the
alias points to by the time the download starts.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grm.sampling.spec import ModelSpec, parse_model_spec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistryNames:
    """The registered names an alias is looked up under (``registry.model_name``/``meta_model_name``)."""

    model_name: str = "grm"
    meta_model_name: str = "grm-meta-rm"


def alias_versions(tracker: Any, registry: Any, alias: str, names: list[str], warn: Any = None) -> list[Any | None]:
    """The versions holding ``alias`` for each of ``names`` (None where none), read together under the registry
    lock after ``repair_promotions(registry)`` (``registry`` has ``model_name`` and ``meta_model_name``)."""
    warn = warn or log.warning
    with tracker.registry_lock():  # not while another run's gate is moving the aliases
        for repair in tracker.repair_promotions(registry):  # never read a half-moved alias pair
            warn("registry repair: %s", repair)
        return [tracker.alias_version(name, alias) for name in names]


def download(tracker: Any, uri: str, dest: Path, tag: str) -> str:
    """``uri``'s artifacts in ``dest/tag`` (kept when already there; written to a temp folder and renamed)."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / tag
    if not target.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f".{tag}.", dir=dest))
        path = tracker.download(uri, tmp)
        path.rename(target) if path != tmp else tmp.rename(target)
    return str(target)


def download_version(tracker: Any, version: Any, dest: Path) -> str:
    """One registered version in ``dest/{name}-v{version}``."""
    return download(tracker, f"models:/{version.name}/{version.version}", dest, f"{version.name}-v{version.version}")


def registry_target(spec: ModelSpec, registry: Any) -> tuple[str, str] | None:
    """(registered name, alias) of an alias spec (``champion`` -> ``(registry.model_name, "champion")``), else
    None (a ``models:/NAME/VERSION`` or ``runs:/`` URI)."""
    if "alias" not in spec.options:
        return None
    return spec.options.get("name", registry.model_name), spec.options["alias"]


def meta_name_of(name: str, registry: Any) -> str:
    """The meta RM registered beside ``name``: ``registry.meta_model_name`` for the GRM, else ``{name}-meta-rm``."""
    return registry.meta_model_name if name == registry.model_name else f"{name}-meta-rm"


def fetch_registered(
    tracker: Any, registry: Any, model: str | ModelSpec, dest: Path, with_meta: bool = False, warn: Any = None
) -> tuple[str, Any, str | None] | None:
    """A registry spec's model in ``dest``: (folder, its registered version or None for a plain URI, the folder of
    the meta RM holding the same alias or None). None when the alias is held by no version.

    Args:
        tracker: a ``tasks.tracking.Tracker``.
        registry: names (``model_name``, ``meta_model_name``): a ``RegistryConfig`` or ``RegistryNames``.
        model: ``champion``, ``challenger``, ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/...``.
        dest: the models folder (``PROJECT/artifacts/models``).
        with_meta: also read (under the same lock) and download the meta RM with the same alias.
    """
    spec = parse_model_spec(model)
    target = registry_target(spec, registry)
    if target is None:
        uri = spec.registry_uri(registry.model_name)
        return download(tracker, uri, dest, uri.replace("/", "_").replace(":", "")), None, None
    name, alias = target
    names = [name, meta_name_of(name, registry)] if with_meta else [name]
    versions = alias_versions(tracker, registry, alias, names, warn)
    if versions[0] is None:
        return None
    meta = download_version(tracker, versions[1], dest) if with_meta and versions[1] is not None else None
    return download_version(tracker, versions[0], dest), versions[0], meta
