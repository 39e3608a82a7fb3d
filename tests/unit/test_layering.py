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
