"""Which code a stage's key hashes: the stage modules, and each stage's import closure.

``STAGE_MODULES`` is the one list of the modules that declare stages (``tasks.engine.stages.register``): the fork server
preloads them (``tasks.engine.workers.PRELOAD``), ``tasks.engine.stages.load_stages`` imports them for the generated key test, and a test
fails when a module of ``tasks`` declares a ``Stage`` without being listed here. A new stage module is added here,
and only here.

A stage's code version (``stage_code``) is a hash of the source of every first-party module (``grm``, ``tasks``)
its functions' modules import, transitively, counting imports inside functions (``import_closure``, read from the
source, nothing is run). So an edit in ``grm/serving`` does not change the training stages' keys, while an edit
anywhere in the code a build can reach does. What an import by a string (``importlib.import_module``, a
``"package.module:callable"`` sampler factory) loads is not followed: code reached only that way is not keyed,
so a stage that relies on it bumps its ``version``.

Example:
    >>> sorted(import_closure(["grm.errors"]))  # grm/errors.py imports nothing of grm; its package comes along
    ['grm', 'grm.errors']
"""

from __future__ import annotations

import ast
import hashlib
import importlib
from collections.abc import Iterable, Iterator, Mapping
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

STAGE_MODULES = ("tasks.data", "tasks.training", "tasks.evaluation", "tasks.benchmarks")
CODE_PACKAGES = ("grm", "tasks")
KEY_CHARS = 16


@lru_cache(maxsize=1)
def package_roots(packages: tuple[str, ...] = CODE_PACKAGES) -> dict[str, Path]:
    """The folders ``packages`` are imported from."""
    return {name: Path(importlib.import_module(name).__file__).parent for name in packages}  # type: ignore[arg-type]


def module_file(name: str, roots: Mapping[str, Path]) -> Path | None:
    """The source file of first-party module ``name`` (``a/b.py`` or ``a/b/__init__.py``), None if it is none."""
    top, *rest = name.split(".")
    if top not in roots:
        return None
    base = roots[top].joinpath(*rest)
    for path in (base.with_suffix(".py") if rest else None, base / "__init__.py"):
        if path is not None and path.is_file():
            return path
    return None


def imported_names(name: str, path: Path, roots: Mapping[str, Path], *, body: bool = True) -> tuple[set, set]:
    """The first-party modules ``path`` (module ``name``) imports: ``(direct, parents)``.

    ``direct``: the modules named by an import anywhere in the file (inside functions too, unless ``body`` is False:
    then module-level statements only); ``parents``: the packages above them (importing ``a.b.c`` runs ``a`` and
    ``a.b`` first, their module-level code only).
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(path, path.stat().st_mtime_ns, path.stat().st_size, body):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}  # ``from pkg import submodule``
    direct = {m for m in found if module_file(m, roots) is not None}
    parents = {p for m in direct for p in _with_parents(m)[:-1]} - direct
    return direct, parents


@lru_cache(maxsize=4096)
def _imports(path: Path, mtime_ns: int, size: int, body: bool) -> tuple[ast.stmt, ...]:
    """The import statements of a file (all of them, or module-level only), parsed once per file version."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    nodes = ast.walk(tree) if body else _module_level(tree.body)
    return tuple(n for n in nodes if isinstance(n, ast.Import | ast.ImportFrom))


def _module_level(stmts: list[ast.stmt]) -> Iterator[ast.AST]:
    """Statements run when a module is imported: the module's body, through ``if``/``try``/``with``, not into
    functions or classes' methods."""
    for s in stmts:
        yield s
        if isinstance(s, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue
        for block in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(s, block, None)
            if isinstance(inner, list):
                yield from _module_level([x for x in inner if isinstance(x, ast.stmt | ast.excepthandler)])


def import_closure(modules: Iterable[str], roots: Mapping[str, Path] | None = None) -> dict[str, Path]:
    """Every first-party module ``modules`` import, transitively, themselves and their packages included.

    A module imported by name counts with every import in it (functions included); a package reached only as the
    parent of an imported module counts with its module-level imports (what importing a submodule runs).
    """
    roots = package_roots() if roots is None else roots
    full: set[str] = set()
    partial: set[str] = set()
    todo = [(m, True) for m in modules] + [(p, False) for m in modules for p in _with_parents(m)[:-1]]
    while todo:
        name, body = todo.pop()
        path = module_file(name, roots)
        if path is None or name in full or (not body and name in partial):
            continue
        (full if body else partial).add(name)
        direct, parents = imported_names(name, path, roots, body=body)
        todo += [(m, True) for m in sorted(direct)] + [(p, False) for p in sorted(parents)]
    return {name: module_file(name, roots) for name in sorted(full | partial)}  # type: ignore[misc]


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def files_hash(files: Mapping[str, Path]) -> str:
    """Hash of the named sources, by module name + bytes (content, not location)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].read_bytes())
    return h.hexdigest()[:KEY_CHARS]


@cache
def _closure_hash(modules: tuple[str, ...]) -> str:
    return files_hash(import_closure(modules))


def stage_modules(stage: Any) -> tuple[str, ...]:
    """The modules of a stage's functions (``select``, ``build``, ``files``, ``after``)."""
    fns = (stage.select, stage.build, stage.files, stage.after)
    return tuple(sorted({f.__module__ for f in fns if f is not None}))


def stage_code(stage: Any) -> str:
    """The code version in ``stage``'s key: the hash of its import closure, once per process."""
    return _closure_hash(stage_modules(stage))
