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
# No cycle is allowed (the last two, evaluation<->protocols and rewards<->serving.client, were broken by issue 26);
# a new one fails the test below.
ALLOWED_CYCLES: set[frozenset[str]] = set()


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
    assert "tasks.eval_tracking" in graph["grm_cli.eval"]  # a function-level import is an arrow
    found = cycles(graph)
    new = sorted(sorted(c) for c in found - ALLOWED_CYCLES)
    assert not new, f"import cycles (move the shared part into a module both import): {new}"
    gone = sorted(sorted(c) for c in ALLOWED_CYCLES - found)
    assert not gone, f"these cycles are broken: remove them from ALLOWED_CYCLES so they stay broken: {gone}"


# --- the config package is a leaf of the core ---------------------------------------------------------------------

# What grm.config may import of the core: leaves that import nothing of grm but each other (checked below). Anything
# else a rule needs (the evaluation, the benchmark registry, grm.drops, grm.method.verdicts) is the plan step's, grm.plan.
CONFIG_LEAVES = {"grm.errors", "grm.files", "grm.method.prompts", "grm.ablations"}


def _closure(graph: dict[str, set[str]], start: set[str]) -> set[str]:
    seen, todo = set(start), list(start)
    while todo:
        for dep in graph[todo.pop()] - seen:
            seen.add(dep)
            todo.append(dep)
    return seen


def test_the_config_package_imports_nothing_of_the_core_but_its_leaves() -> None:
    graph = import_graph()
    config = {m for m in graph if m == "grm.config" or m.startswith("grm.config.")}
    assert {"grm.config", "grm.config.loader", "grm.config.pipeline"} <= config
    reached = _closure(graph, config) - config
    assert reached <= CONFIG_LEAVES, (
        f"grm.config imports {sorted(reached - CONFIG_LEAVES)} (function-level imports counted): move the rule that "
        "needs it to the plan step (src/grm/plan.py)"
    )
    assert "grm.plan" in graph and "grm.config" in graph["grm.plan"]


def test_the_leaf_finder_follows_function_level_imports() -> None:
    graph = {"c": {"c.a"}, "c.a": {"leaf"}, "leaf": {"deep"}, "deep": set(), "other": set()}
    assert _closure(graph, {"c"}) - {"c", "c.a"} == {"leaf", "deep"}


def test_the_config_names_the_same_tie_policies_as_the_verdicts() -> None:
    import typing

    from grm.config import TiePolicy
    from grm.method.verdicts import TIE_POLICIES

    assert typing.get_args(TiePolicy) == TIE_POLICIES


def test_the_config_names_the_requestable_meta_votes_of_the_verdicts() -> None:
    import typing

    from grm.config.eval import MetaVote
    from grm.method.verdicts import META_VOTES

    assert typing.get_args(MetaVote) == tuple(v for v in META_VOTES if v != "fallback")  # eval.meta_min_auc picks it


# --- no module over 500 lines, no function over 80 (issue 26's done-when) ------------------------------------------

MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80
# Files allowed over the limits, each with why (a path under src/, or a folder ending in "/"): none today.
SIZE_EXCEPTIONS: tuple[str, ...] = ()


def _excepted(path: str) -> bool:
    return any(path == e or (e.endswith("/") and path.startswith(e)) for e in SIZE_EXCEPTIONS)


def size_problems(path: Path, text: str) -> list[str]:
    """``path`` over MAX_MODULE_LINES, and each function (methods and nested ones too) over MAX_FUNCTION_LINES."""
    out = []
    if len(text.splitlines()) > MAX_MODULE_LINES:
        out.append(f"{path}: {len(text.splitlines())} lines > {MAX_MODULE_LINES}")
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{path}:{node.lineno}: {node.name} is {length} lines > {MAX_FUNCTION_LINES}")
    return out


def test_no_core_module_over_500_lines_and_no_function_over_80() -> None:
    src = Path(grm.__file__).parents[1]
    files = sorted(p for top in ("grm", "grm_cli") for p in (src / top).rglob("*.py"))
    problems = [
        problem
        for p in files
        if not _excepted(p.relative_to(src).as_posix())
        for problem in size_problems(p.relative_to(src), p.read_text(encoding="utf-8"))
    ]
    assert not problems, "split these (one job per module, one step per function):\n" + "\n".join(problems)


def test_the_size_check_counts_methods_and_nested_functions() -> None:
    body = "\n".join(f"        x = {i}" for i in range(80))
    text = f"class A:\n    def f(self):\n{body}\n"
    assert size_problems(Path("m.py"), text) == ["m.py:2: f is 81 lines > 80"]
    assert size_problems(Path("m.py"), "x = 1\n" * 501) == ["m.py: 501 lines > 500"]
    assert size_problems(Path("m.py"), "def g():\n    return 1\n") == []


def test_training_does_not_import_the_serving_client() -> None:
    """The in-process reward (grm.rewards, imported by GRPO training) shares only grm.method.completion_text with the remote
    one: the serving client (httpx) stays out of training's import closure, function-level imports counted."""
    graph = import_graph()
    seen, todo = set(), ["grm.training.grpo"]
    while todo:
        mod = todo.pop()
        if mod not in seen:
            seen.add(mod)
            todo += graph.get(mod, ())
    assert "grm.rewards" in seen and "grm.method.completion_text" in seen
    assert not {m for m in seen if m.startswith("grm.serving")}, sorted(m for m in seen if m.startswith("grm.serving"))
