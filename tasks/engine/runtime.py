"""The run context every stage task receives, and ``run_stage``: cache lookup, timing, MLflow nested run, errors.

``pipeline_run(...)`` opens a flow run: it loads the config, opens the parent MLflow run (params = flattened config,
``inputs/config.yaml``, tags: git commit, code version, Prefect flow-run id; named after what the overrides changed,
``tasks.summary``), and on exit closes it (FAILED with the failing stage named, or FINISHED) and prints the
benchmark table (its metrics go to the child run ``timings``, ``log_timings``). Stage tasks call ``run_stage`` with their
``Stage`` declaration and upstream inputs; ``run_stage`` selects the stage's config slice from ``ctx.cfg`` and hands
the build only that slice; completed stages are reused (``tasks.engine.stages``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm import executors
from grm.config import PipelineConfig, flatten, save_config, stage_seeds
from grm.files import project_path
from grm.plan import check_benchdata, check_data_files, load_pipeline
from grm.source_check import check_source
from grm.threads import strict_math
from tasks import summary, tracking
from tasks.engine import stages, timings, workers
from tasks.engine.logs import logger  # noqa: F401  (re-exported: tasks import it from here)
from tasks.engine.stage_code import stage_code

ENV_ARTIFACTS = "GRM_ARTIFACTS_DIR"


class StageError(RuntimeError):
    """A stage failed; completed stages stay in the stage store, so a rerun resumes at this stage."""

    def __init__(self, stage: str, cause: BaseException, store: str):
        self.stage = stage
        self.cause = cause
        self.transient = is_transient(cause)
        super().__init__(
            f"stage {stage} failed: {type(cause).__name__}: {cause}\n"
            f"Completed stages are kept under {store}; fix the cause and rerun the same command to resume at {stage}."
        )


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: network/timeouts, busy files, a locked SQLite store. Bugs and bad data are not."""
    if isinstance(exc, StageError):
        return exc.transient
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNRESET):
        return True
    return "database is locked" in str(exc)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect ``retry_condition_fn``: retry only transient failures (a deterministic bug fails at once)."""
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # the state could not be read back; retrying is the safe side
        exc = err
    return isinstance(exc, BaseException) and is_transient(exc)


TASK_OPTIONS: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [2, 10], "retry_condition_fn": retry_transient}


def prefect_flow_run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id) if flow_run.id else None
    except Exception:
        return None


@dataclass(frozen=True)
class RunContext:
    """What every stage of one flow run needs (picklable; the tracker holds strings only)."""

    flow: str
    project_dir: str
    cfg: PipelineConfig
    tracker: Any  # tasks.tracking.Tracker | NullTracker | a test fake
    parent_run_id: str
    store_root: str
    code: str  # the run's code version (tag grm.code_version); a stage's key hashes its own code (stage_code)
    data_tags: dict[str, str] = field(default_factory=dict)
    run_name: str = ""  # the parent run's name (tasks.summary.parent_run_name)

    def path(self, relative: str | Path) -> Path:
        """A project-relative path made absolute."""
        return project_path(self.project_dir, relative)


def artifacts_root(project_dir: str | Path) -> Path:
    """``$GRM_ARTIFACTS_DIR`` or ``{project}/artifacts`` (git-ignored): stage folders live in ``stages/`` below."""
    env = os.environ.get(ENV_ARTIFACTS)
    return Path(env).resolve() if env else Path(project_dir).resolve() / "artifacts"


def build_in_process(build: Any, selected: Any, bctx: stages.BuildContext, runtime: Any) -> stages.StageOutput:
    """``build(selected, bctx)`` under the run's executor (``runtime.*`` decides where shards are sampled, never
    what, so it is in no slice); module-level, so that ``tasks.engine.workers.run_build`` can run it in a child."""
    with executors.using(runtime, shutdown=False):
        return build(selected, bctx)


def run_stage(
    ctx: RunContext,
    spec: stages.Stage,
    inputs: Mapping[str, Any] | None = None,
    **params: Any,
) -> stages.StageResult | None:
    """Run (or reuse) one declared stage inside its own nested MLflow run.

    The stage's slice is selected from ``ctx.cfg`` here, hashed with its files, upstream inputs, its code (the hash
    of its import closure, ``tasks.engine.stage_code``) and its version into the key (``tasks.engine.stages.plan``); the build
    then receives only that slice and a ``BuildContext`` (no config).

    Args:
        ctx: the flow run's context.
        spec: the ``Stage`` declaration.
        inputs: upstream values by the names ``spec.inputs`` declares (``StageResult``, ``HashedFile``, None).
        params: call parameters ``spec.select``/``spec.files`` take (``name`` of an ``eval.{name}`` stage).

    Returns:
        The stage result (``cached`` tells whether it was reused), or None when the config switches it off.
    """
    log = logger()
    try:
        planned = stages.plan(spec, ctx.cfg, inputs or {}, ctx.project_dir, stage_code(spec), params)
    except (stages.MissingInputError, ValueError) as exc:  # a missing file named by the config: before any run
        raise StageError(spec.stage_name(params), exc, ctx.store_root) from exc
    if isinstance(planned, stages.Skip):
        log.warning("%s skipped: %s", spec.stage_name(params), planned.reason)
        return None
    stage, key, category = planned.stage, planned.key, spec.category

    led = timings.LEDGER

    def build(out: Path, run_id: str) -> stages.StageOutput:
        stages.verify_inputs(planned, files=False)  # the data is still what the key says ...
        built = build_checked(out, run_id)
        stages.verify_inputs(planned)  # ... and were all along: only then is the folder renamed into place
        return built

    def build_checked(out: Path, run_id: str) -> stages.StageOutput:
        bctx = stages.BuildContext(
            out, run_id, ctx.tracker, Path(ctx.project_dir), Path(ctx.store_root), planned.inputs, planned.files
        )
        args = (spec.build, planned.slice, bctx, ctx.cfg.runtime)
        if not spec.process:  # on this process's one build thread (tasks.engine.workers.BuildThread: one OpenMP team)
            return workers.BUILD_THREAD.run(build_in_process, *args)
        pool = workers.pool()
        asked = time.perf_counter()
        with pool.slot(stage) as threads:  # the wait is not the stage's compute
            led.add_wait(stage, time.perf_counter() - asked)
            if pool.max_builds == 1:  # one build at a time: in this process, as without the pool
                return workers.BUILD_THREAD.run(build_in_process, *args)
            log.info("stage %s: building in its own process on %d thread(s)", stage, threads)
            return workers.run_build(build_in_process, args, threads, stage)

    store = stages.StageStore(ctx.store_root)
    with led.measure(stage, "tracking"):
        run_id = ctx.tracker.start_run(
            stage, parent_id=ctx.parent_run_id or None, tags={"grm.stage": stage, "grm.stage_key": key}
        )
    log.info("stage %s (key %s): %s", stage, key, "reusing" if store.lookup(stage, key) else "computing")
    ready = workers.pool().expected() if spec.process else contextlib.nullcontext()
    try:
        with ready, led.measure(stage, category):
            result = store.run(stage, key, lambda out: build(out, run_id))
    except BaseException as exc:
        with led.measure(stage, "tracking"):
            ctx.tracker.set_tags(run_id, {"grm.error": f"{type(exc).__name__}: {exc}"[:4000]})
            ctx.tracker.end_run(run_id, "FAILED")
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise StageError(stage, exc, str(store.root)) from exc
    led.mark_cached(stage, result.cached)
    with led.measure(stage, "tracking"):
        ctx.tracker.set_tags(run_id, {"grm.cached": str(result.cached).lower(), "grm.stage_dir": result.path})
        ctx.tracker.log_metrics(run_id, result.metrics)
        if ctx.parent_run_id:
            ctx.tracker.log_metrics(ctx.parent_run_id, result.metrics)
        if spec.after is not None:
            spec.after(planned.slice, ctx.tracker, run_id, result)
        ctx.tracker.end_run(run_id)
    log.info(
        "stage %s %s in %.2f s; metrics: %s",
        stage,
        "reused (computed earlier)" if result.cached else "computed",
        result.seconds,
        {k: round(v, 4) for k, v in list(result.metrics.items())[:8]},
    )
    return result


def parallel_stages(cfg: PipelineConfig) -> int:
    """Builds that may run at once: ``runtime.parallel_stages``, capped at the cores (a second build on a busy core
    only slows both), and 1 with ``runtime.executor: ray`` (Ray spreads the sampling; builds stay in this process,
    where the executor lives)."""
    if cfg.runtime.executor != "local":
        return 1
    return max(1, min(cfg.runtime.parallel_stages, workers.cpu_count()))


TIMINGS_RUN = "timings"  # the child run holding a flow run's ``bench/*`` timing metrics


def log_timings(tracker: Any, parent: str, report: timings.BenchReport) -> str:
    """Log the timing ledger (``bench/*`` metrics, ``bench/stage_times.{txt,png}``) on a child run ``timings`` of
    ``parent``, not on ``parent`` itself: MLflow's compare page lists metrics alphabetically, and ~40 ``bench/``
    rows would come before the accuracy cells. The parent's tag ``grm.timings_run`` names the child; returns its id
    ("" with tracking off)."""
    run = tracker.start_run(TIMINGS_RUN, parent_id=parent or None, tags={"grm.kind": TIMINGS_RUN})
    tracker.log_metrics(run, report.metrics())
    tracker.log_text(run, report.table(), "bench/stage_times.txt")
    if tracker.enabled:
        with tracking.FIGURE_LOCK:
            tracker.log_figure(run, report.figure(), "bench/stage_times.png")
        tracker.set_tags(parent, {"grm.timings_run": run})
    tracker.end_run(run)
    return run


@contextmanager
def pipeline_run(
    flow_name: str,
    config_path: str | None,
    overrides: Sequence[str] | None = None,
    project_dir: str | Path = ".",
    experiment: str | None = None,
) -> Iterator[RunContext]:
    """Open a flow run: config, parent MLflow run, stage store; close it with the benchmark table.

    Args:
        flow_name: the flow (tag ``grm.flow``; the experiment is ``tracking.experiment`` for ``spct_pipeline``,
            the flow name otherwise, unless ``experiment`` is given).
        config_path: YAML config (None: defaults only).
        overrides: dotted ``section.key=value`` overrides.
        project_dir: root of relative paths (data/, mlruns/, artifacts/).
    """
    log = logger()
    timings.LEDGER.reset()
    strict_math()  # before the fork server starts: every build process inherits MKL's strict mode (grm.threads)
    start = time.perf_counter()
    root = Path(project_dir).resolve()
    cfg = load_pipeline([config_path] if config_path else [], list(overrides or []))
    check_data_files(cfg, root, training=flow_name == "spct_pipeline")  # a folder's missing files fail before stage 1
    if flow_name == "spct_pipeline":  # drops, rows and the teacher, before anything is published (grm.source_check)
        check_source(cfg, root, training=True)
    if flow_name == "spct_pipeline":
        check_benchdata(cfg, root)  # the benchmark copies eval.benchmarks reads, before any training
    log.info("resolved seeds (also in the run's params): %s", stage_seeds(cfg))
    exp = experiment or (cfg.tracking.experiment if flow_name == "spct_pipeline" else flow_name)
    tracker = tracking.make_tracker(cfg.tracking, exp, root)
    code = stages.code_version()
    with timings.LEDGER.measure("flow", "tracking"):
        tags = {
            "grm.flow": flow_name,
            "grm.config_name": cfg.name,
            "grm.data.source": cfg.data.source,  # the dataset's identity (metric names say world/heldout only)
            "grm.config_path": config_path,
            "grm.overrides": " ".join(overrides or []),
            "grm.code_version": code,
            "grm.git_commit": tracking.git_commit(root),
            "mlflow.source.git.commit": tracking.git_commit(root),
            "prefect.flow_run_id": prefect_flow_run_id(),
        }
        name, name_tags = summary.parent_run_name(tracker, cfg, config_path, overrides or [])  # what they changed
        parent = tracker.start_run(name, tags=tags | name_tags)
        tracker.own_run(parent)  # host/pid tags; this host's dead RUNNING predecessors -> KILLED, grm.superseded_by
        tracker.log_params(parent, flatten(cfg))
        with tempfile.TemporaryDirectory() as tmp:
            tracker.log_artifact(parent, save_config(cfg, Path(tmp) / "config.yaml"), "inputs")
        summary.link_flow_run(tracker, parent, name)  # the Prefect flow run links its MLflow run from the start
    store_root = str(artifacts_root(root) / "stages")
    ctx = RunContext(flow_name, str(root), cfg, tracker, parent, store_root, code, run_name=name)
    parallel = parallel_stages(cfg)
    workers.configure(parallel)
    if parallel > 1:
        log.info("up to %d stages at once on %d cores (runtime.parallel_stages)", parallel, workers.cpu_count())
    log.info(
        "%s: config %s, MLflow run %s (%s), stage store %s", flow_name, cfg.name, parent, tracker.uri, ctx.store_root
    )
    try:
        yield ctx
    except BaseException as exc:
        stage = exc.stage if isinstance(exc, StageError) else "flow"
        with timings.LEDGER.measure("flow", "tracking"):
            tracker.set_tags(parent, {"grm.failed_stage": stage, "grm.error": f"{exc}"[:4000]})
            tracker.end_run(parent, "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        log.error("%s failed at stage %s: %s", flow_name, stage, exc)
        raise
    report = timings.LEDGER.report(time.perf_counter() - start)
    log_timings(tracker, parent, report)
    tracker.end_run(parent)
    log.info("%s finished: %s", flow_name, report.table().splitlines()[-1])  # the per-stage table: stdout, MLflow
    print(report.table())
