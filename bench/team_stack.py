"""Benchmark: the tiny pipeline on the team stack against the embedded stores (issue 25; target: the stack adds
<= 10% to the tiny pipeline's wall time).

One script run: ``grm team up`` in a temporary state folder (its start-up is timed and reported apart: a team pays
it once), then ``grm run --config configs/tiny.yaml`` in two fresh projects one after the other: **embedded**
(SQLite under mlruns/, a folder DVC remote, Prefect's temporary server) and **stack** (MLflow server on
PostgreSQL with artifacts proxied to SeaweedFS S3, the DVC remote on S3, the stack's Prefect server). For each it
prints the command's wall time, the flow's own total, and the seconds (and share of stage time) its timing table
puts under ``tracking`` and ``versioning``; then the ratio stack / embedded. The stack is stopped and deleted at
the end. Run it alone (under ``flock /tmp/grm-heavy.lock`` on a shared machine): the ratio is one run of each.

Usage::

    PYTHONPATH=src:. .venv/bin/python bench/team_stack.py [--config configs/tiny.yaml]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
COLUMNS = ("compute", "tracking", "validation", "versioning", "orchestration")


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_", "GRM_DVC"))}
    out["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    return out


def grm(args: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "grm"), *args], cwd=cwd, env=env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"grm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, proc.stdout + proc.stderr


def timing_columns(log: str) -> tuple[float, dict[str, float]]:
    """The flow's total and the per-category seconds summed over the stages of its timing table."""
    total = float(re.search(r"^total ([\d.]+) s; outside compute", log, re.M).group(1))
    sums = dict.fromkeys(COLUMNS, 0.0)
    header = re.search(r"^stage\s+wall_s\s+share\s+(.*)$", log, re.M)
    names = header.group(1).split()
    for line in log[header.end() :].splitlines():
        if line.startswith("---") or not line.strip():
            continue
        if line.startswith("stages ran at once") or line.startswith("total "):
            break
        fields = line.split()
        values = fields[3 : 3 + len(COLUMNS)]
        for name, value in zip(names[: len(COLUMNS)], values, strict=True):
            sums[name] += float(value)
    return total, sums


def project(path: Path, config: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    shutil.copy(config, path / "tiny.yaml")
    return path


def report(label: str, wall: float, log: str) -> tuple[float, float]:
    total, sums = timing_columns(log)
    stage_s = sum(sums.values()) or 1.0
    parts = ", ".join(f"{c} {sums[c]:.1f} s ({100 * sums[c] / stage_s:.1f}%)" for c in ("tracking", "versioning"))
    print(f"{label:<10} wall {wall:7.1f} s  flow total {total:7.1f} s  stage time {stage_s:7.1f} s  {parts}")  # noqa: T201
    return wall, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "tiny.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grm-team-bench-") as tmp:
        root = Path(tmp)
        state = root / "state"
        embedded = project(root / "embedded", args.config)
        stacked = project(root / "stack", args.config)
        try:
            up_s, _ = grm(["team", "up", "--dir", str(state)], stacked)
            print(f"grm team up (first start, once per team): {up_s:.1f} s")  # noqa: T201
            wall_e = report("embedded", *grm(["run", "--config", "tiny.yaml"], embedded))
            wall_s = report("stack", *grm(["run", "--config", "tiny.yaml"], stacked))
        finally:
            subprocess.run([str(BIN / "grm"), "team", "down", "--dir", str(state), "--purge"], env=env(),
                           cwd=root, capture_output=True)  # fmt: skip
    # the command's wall time includes Prefect's temporary server start (embedded only); the flow's total does not
    print(f"ratio stack / embedded wall time: {wall_s[0] / wall_e[0]:.3f} (target <= 1.10)")  # noqa: T201
    print(f"ratio stack / embedded flow total: {wall_s[1] / wall_e[1]:.3f}")  # noqa: T201


if __name__ == "__main__":
    main()
