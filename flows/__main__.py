"""Run a flow from the shell: ``python -m flows spct_pipeline --config configs/tiny.yaml --set eval.limit=8``.

Prints the flow's return value as JSON on the last line (used by make targets and the e2e tests).
"""

from __future__ import annotations

import argparse
import json
import sys

from tasks import prefect_env

prefect_env.configure_defaults()

FLOWS = ("spct_pipeline", "prepare_data", "evaluate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows", description=__doc__)
    parser.add_argument("flow", choices=FLOWS)
    parser.add_argument("--config", default=None, help="YAML config path")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value (repeat)")
    parser.add_argument("--model", default="champion", help="evaluate only: champion, teacher, models:/..., a folder")
    parser.add_argument(
        "--data-version", default="champion", help="evaluate only: champion (its training data), latest, or an md5"
    )
    parser.add_argument("--project-dir", default=".", help="root of data/, mlruns/, artifacts/")
    parser.add_argument("--data", default=None, help="spct_pipeline only: landing folder of drops (= data.source)")
    parser.add_argument("--window", default=None, help="spct_pipeline only: all | last:N | since:YYYY-MM-DD")
    args = parser.parse_args(argv)
    prefect_env.configure_defaults(args.project_dir)  # .prefect/ in the project, not the cwd (before prefect loads)
    prefect_env.start_temporary_server()  # under a lock: two runs at once would race on its database's migrations
    if args.flow == "spct_pipeline":
        from flows.pipeline import spct_pipeline

        out = spct_pipeline(args.config, args.overrides, args.project_dir, args.data, args.window)
    elif args.flow == "prepare_data":
        from flows.prepare_data import prepare_data

        out = prepare_data(args.config, args.overrides, args.project_dir)
    else:
        from flows.evaluate import evaluate

        out = evaluate(args.model, args.config, args.overrides, args.project_dir, args.data_version)
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
