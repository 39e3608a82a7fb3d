"""The core package ``grm`` is pure: it never imports the orchestration, tracking or CLI layers above it.

ruff's TID251 ban (pyproject.toml) stops such an import at lint time; this test checks the same rule on the
source itself, so it holds even where ruff is not run, and names the file and line that break it.
"""

import ast
from pathlib import Path

import grm

UPWARD = ("tasks", "flows", "grm_cli", "prefect", "mlflow", "great_expectations", "dvc")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


# The MLflow adapter may import mlflow (lazily); it is an integration, not part of the core's call graph.
ALLOWED = {"integrations/mlflow.py": {"mlflow"}, "integrations/mlflow_pyfunc_model.py": {"mlflow"}}


def test_core_package_never_imports_tasks_flows_cli_or_ops_libraries():
    root = Path(grm.__file__).parent
    bad = [
        f"{p.relative_to(root.parent)}:{line}: import {name}"
        for p in sorted(root.rglob("*.py"))
        for line, name in _imports(p)
        if name.split(".")[0] in UPWARD
        and name.split(".")[0] not in ALLOWED.get(p.relative_to(root).as_posix(), set())
    ]
    assert not bad, "the core imports upward:\n" + "\n".join(bad)


def test_nothing_in_the_core_imports_the_integrations():
    root = Path(grm.__file__).parent
    bad = [
        f"{p.relative_to(root.parent)}:{line}: import {name}"
        for p in sorted(root.rglob("*.py"))
        if "integrations" not in p.relative_to(root).parts
        for line, name in _imports(p)
        if name.startswith("grm.integrations")
    ]
    assert not bad, "the core imports an integration:\n" + "\n".join(bad)


def test_importing_the_server_package_stays_light():
    import subprocess
    import sys

    code = "import sys, grm.serving, grm.rewards; print(sorted({'fastapi', 'uvicorn', 'mlflow'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_cli_lives_outside_the_core_package():
    root = Path(grm.__file__).parent
    assert not (root / "cli.py").exists() and not (root / "commands").exists()


# --- no import cycle, counting the imports inside functions ------------------------------------------------------

PACKAGES = {"grm": "src/grm", "grm_cli": "src/grm_cli", "tasks": "tasks", "flows": "flows"}
# The cycles of today, each to be broken by the change named; nothing may join one, and no other may appear.
ALLOWED_CYCLES = {
    # evaluate() dispatches to the protocols, which run the standard protocol: a protocol registry (issue 26, item 1)
    frozenset({"grm.evaluation", "grm.protocols"}),
}


def _module_files() -> dict[str, Path]:
    repo = Path(grm.__file__).parents[2]
    out = {}
    for top, folder in PACKAGES.items():
        for p in (repo / folder).rglob("*.py"):
            parts = [top, *p.relative_to(repo / folder).with_suffix("").parts]
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the first-party modules it imports anywhere (inside functions too); ``from pkg import sub`` counts
    as an import of the submodule ``pkg.sub``, ``from pkg import name`` as one of ``pkg``."""
    files = _module_files()
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1])
                    module = f"{base}.{module}" if module else base
                subs = {f"{module}.{alias.name}" for alias in node.names} & set(files)
                found |= subs or {module}
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: set[frozenset[str]] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.add(frozenset(comp))
    return out


def test_the_cycle_finder_finds_a_cycle_through_a_function_level_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == {frozenset("abc")}
    assert cycles({"a": {"b"}, "b": set()}) == set()


def test_no_new_import_cycle_counting_imports_inside_functions() -> None:
    graph = import_graph()
    assert "grm.protocols" in graph["grm.evaluation"]  # a function-level import is an arrow
    found = cycles(graph)
    new = sorted(sorted(c) for c in found - ALLOWED_CYCLES)
    assert not new, f"import cycles (move the shared part into a module both import): {new}"
    gone = sorted(sorted(c) for c in ALLOWED_CYCLES - found)
    assert not gone, f"these cycles are broken: remove them from ALLOWED_CYCLES so they stay broken: {gone}"


def test_training_does_not_import_the_serving_client() -> None:
    """The in-process reward (grm.rewards, imported by GRPO training) shares only grm.completion_text with the remote
    one: the serving client (httpx) stays out of training's import closure, function-level imports counted."""
    graph = import_graph()
    seen, todo = set(), ["grm.training.grpo"]
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo += graph.get(mod, ())
    assert "grm.rewards" in seen and "grm.completion_text" in seen
    assert not {m for m in seen if m.startswith("grm.serving")}, sorted(m for m in seen if m.startswith("grm.serving"))
