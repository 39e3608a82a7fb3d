"""Benchmark data for tests, in any clone: the copy shipped in the repository, and RMB (not shipped: no licence)
from a full copy when one is around, else a hand-written stand-in in RMB's layout (tests/fixtures/rmb_standin).

``SHIPPED`` is the unpacked shipped copy (``grm.benchmarks.bundled``); ``FULL`` a full copy holding RMB
(``$GRM_BENCHDATA``, else ``../shared/benchdata`` beside the repository) or None; ``needs_full_rmb`` skips a test of
RMB's real counts without one; ``with_rmb(tmp)`` is one benchdata folder holding every local benchmark.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grm.benchmarks import bundled
from grm.benchmarks.registry import BENCHDATA_ENV

REPO = Path(__file__).resolve().parents[2]
SHIPPED = bundled.bundled_root()
RMB_STANDIN = REPO / "tests" / "fixtures" / "rmb_standin"


def _full_copy() -> Path | None:
    for candidate in (os.environ.get(BENCHDATA_ENV), REPO.parent / "shared" / "benchdata"):
        if candidate and (Path(candidate) / "rmb" / "RMB_dataset").is_dir():
            return Path(candidate)
    return None


FULL = _full_copy()
needs_full_rmb = pytest.mark.skipif(
    FULL is None,
    reason=f"RMB is not shipped (it declares no licence): set {BENCHDATA_ENV}=DIR to a full benchdata copy holding "
    "rmb/ (docs/benchdata.md)",
)


def with_rmb(tmp: Path) -> Path:
    """A benchdata folder under ``tmp`` linking every shipped benchmark and RMB (the full copy's, else the
    stand-in): what ``grm eval -b ...,rmb`` reads in one root."""
    root = tmp / "benchdata-with-rmb"
    root.mkdir(parents=True, exist_ok=True)
    for child in SHIPPED.iterdir():
        if child.is_dir():
            (root / child.name).symlink_to(child, target_is_directory=True)
    (root / "rmb").symlink_to((FULL or RMB_STANDIN) / "rmb", target_is_directory=True)
    return root
