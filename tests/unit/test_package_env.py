"""``import grm`` sets MKL's strict reproducibility mode unless the environment chose one (see ``grm.__init__``)."""

from __future__ import annotations

import os
import subprocess
import sys


def _mkl_cbwr_after_import(env_value: str | None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    if env_value is not None:
        env["MKL_CBWR"] = env_value
    code = "import os, grm; print(os.environ['MKL_CBWR'])"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_import_sets_strict_mkl_reproducibility() -> None:
    assert _mkl_cbwr_after_import(None).strip() == "AUTO,STRICT"


def test_a_users_choice_is_kept() -> None:
    assert _mkl_cbwr_after_import("COMPATIBLE").strip() == "COMPATIBLE"
