"""An MLflow tracking server stopped during `grm run` (configs/tiny.yaml), then started again: what the run prints,
its exit code and how long after the stop it ends; then a rerun (exit code, stages reused). Prints figures only.

    python bench/mlflow_outage.py            # ~8 min on a shared 2-core machine; run under the heavy-work lock

The server is MLflow's basic-auth app on a free 127.0.0.1 port (tests/helpers/services.py); the project is a temp
git repo whose .grm/services.env names the server, as `grm team up` writes it. docs/doctor.md reports the figures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "src")]

from tasks import service_env  # noqa: E402
from tests.helpers import services  # noqa: E402

STOP_AT = "stage rft.sample"  # stop the server once this stage starts computing


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="grm-mlflow-outage-"))
    proj = root / "proj"
    proj.mkdir()
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_", "AWS_", "GRM_DVC"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src")])
    grm = [str(Path(sys.executable).parent / "grm"), "run", "--config", str(REPO / "configs" / "tiny.yaml")]
    with services.mlflow_server(root / "mlflow") as server:
        user, password = services.MLFLOW_ADMIN
        service_env.write(
            proj,
            {
                "MLFLOW_TRACKING_URI": server.url,
                "MLFLOW_TRACKING_USERNAME": user,
                "MLFLOW_TRACKING_PASSWORD": password,
            },
        )
        started = time.monotonic()
        run = subprocess.Popen(grm, cwd=proj, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert run.stdout is not None
        for line in run.stdout:
            if STOP_AT in line and "computing" in line:
                break
        print(f"server stopped {time.monotonic() - started:.0f} s into the run, at: {line.strip()[-90:]}")
        server.stop()
        stopped = time.monotonic()
        rest = run.stdout.read()
        code = run.wait()
        errors = [x for x in rest.splitlines() if x.startswith(("error:", "  fix:"))]
        print(f"first run: exit {code}, {time.monotonic() - stopped:.0f} s after the stop; message:")
        print("\n".join(errors) or "(none)")
        server.start()
        again = time.monotonic()
        out = subprocess.run(grm, cwd=proj, env=env, capture_output=True, text=True)
        text = out.stdout + out.stderr
        reused = sum("reusing" in x for x in text.splitlines())
        print(f"rerun: exit {out.returncode} in {time.monotonic() - again:.0f} s; stages reused: {reused}")
        print("\n".join(x for x in out.stdout.splitlines() if x.startswith(("registry:", "MLflow run"))))
    print(f"(project and server files: {root})")


if __name__ == "__main__":
    main()
