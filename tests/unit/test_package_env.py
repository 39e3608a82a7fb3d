"""MKL's strict reproducibility mode is set where a build starts (``grm.threads.strict_math``), not by ``import grm``."""

from __future__ import annotations

import os
import subprocess
import sys


def _mkl_cbwr_after(code: str, env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if env_value is not None:
        env["MKL_CBWR"] = env_value
    code += "; print(os.environ.get('MKL_CBWR'))"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_importing_grm_leaves_the_environment_alone() -> None:
    assert _mkl_cbwr_after("import os, grm, grm.eval.run, grm.config, grm.plan", None).strip() == "None"


def test_a_build_setting_its_threads_runs_in_strict_mkl_mode() -> None:
    assert (
        _mkl_cbwr_after("import os; from grm.threads import set_torch_threads; set_torch_threads(1)", None).strip()
        == "AUTO,STRICT"
    )


def test_a_users_choice_is_kept() -> None:
    code = "import os; from grm.threads import set_torch_threads; set_torch_threads(1)"
    assert _mkl_cbwr_after(code, "COMPATIBLE").strip() == "COMPATIBLE"


def test_the_cli_sets_it_for_every_command() -> None:
    code = "import os; from typer.testing import CliRunner; from grm_cli.app import app; CliRunner().invoke(app, ['config', '--help'])"
    assert _mkl_cbwr_after(code, None).strip() == "AUTO,STRICT"
