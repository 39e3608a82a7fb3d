"""The only module (with ``tasks/eval_tracking.py``) that calls ``mlflow``: runs, artifacts, tables, registry.

- Store: ``tracking.tracking_uri`` > ``$MLFLOW_TRACKING_URI`` > the embedded ``sqlite:///{project}/mlruns/mlflow.db``
  with artifacts under ``mlruns/artifacts/`` (MLflow refuses a plain ``file:./mlruns`` store).
- One experiment per flow; one parent run per flow run; one nested run per stage (tag ``mlflow.parentRunId``).
- Everything goes through ``MlflowClient`` with explicit run ids (no fluent active-run stack), so Prefect's worker
  threads cannot log into the wrong run. ``trainer_env`` hands a stage run to TRL/transformers (report_to="mlflow").
- Registry: ``promote`` registers the GRM (and meta RM) and moves ``champion`` only when the gate metric beats the
  current champion by ``registry.margin``; otherwise the new version is ``challenger``. The decision is logged.

``NullTracker`` (tracking.enabled=false) and test fakes implement the same methods.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
CHAMPION, CHALLENGER = "champion", "challenger"


def default_tracking_uri(project_dir: str | Path = ".") -> str:
    """The embedded store of a project: ``sqlite:///{abs}/mlruns/mlflow.db``."""
    db = Path(project_dir).resolve() / "mlruns" / "mlflow.db"
    return f"sqlite:///{db}"


def resolve_tracking_uri(configured: str | None, project_dir: str | Path = ".") -> str:
    """Config value > ``$MLFLOW_TRACKING_URI`` > the embedded SQLite store under ``project_dir``."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(project_dir)


def artifact_root_for(uri: str) -> str | None:
    """``mlruns/artifacts`` beside a local SQLite store; None lets a server decide."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / "artifacts").resolve().as_uri()
    return None


def _param_value(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)
    return text if len(text) <= MAX_PARAM_CHARS else text[: MAX_PARAM_CHARS - 3] + "..."


def git_commit(project_dir: str | Path = ".") -> str | None:
    """HEAD of the git checkout holding ``project_dir`` (None outside git or before the first commit)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=project_dir, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def decide_alias(new_value: float, champion_value: float | None, margin: float) -> tuple[str, str]:
    """The registry gate: which alias a new GRM version gets, and why.

    Example:
        >>> decide_alias(0.71, 0.70, 0.02)[0], decide_alias(0.73, 0.70, 0.02)[0], decide_alias(0.5, None, 0.0)[0]
        ('challenger', 'champion', 'champion')
    """
    if champion_value is None:
        return CHAMPION, f"no champion yet: the new version becomes champion ({new_value:.4f})"
    if new_value - champion_value > margin:
        return CHAMPION, f"{new_value:.4f} beats the champion's {champion_value:.4f} by more than {margin}"
    return CHALLENGER, f"{new_value:.4f} does not beat the champion's {champion_value:.4f} by more than {margin}"


@dataclass(frozen=True)
class Tracker:
    """MLflow client bound to one store and experiment (picklable: it holds strings only)."""

    uri: str
    experiment: str

    @property
    def enabled(self) -> bool:
        return True

    def client(self):  # -> mlflow.MlflowClient
        from mlflow import MlflowClient

        return MlflowClient(self.uri)

    def experiment_id(self) -> str:
        """Get or create the experiment (artifacts beside a local SQLite store)."""
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        root = artifact_root_for(self.uri)
        location = f"{root}/{self.experiment}" if root else None
        try:
            return client.create_experiment(self.experiment, artifact_location=location)
        except Exception:  # a concurrent process created it first
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                raise
            return exp.experiment_id

    # ---- runs ---------------------------------------------------------------------------------------------------
    def start_run(self, name: str, parent_id: str | None = None, tags: Mapping[str, str] | None = None) -> str:
        """Create a run (nested under ``parent_id`` if given); returns its id."""
        all_tags = {k: str(v) for k, v in (tags or {}).items() if v is not None}
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        run = self.client().create_run(self.experiment_id(), run_name=name, tags=all_tags)
        return run.info.run_id

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """Close a run: FINISHED, FAILED or KILLED."""
        self.client().set_terminated(run_id, status=status)

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        """Flattened config params, batched (values stringified, JSON for lists)."""
        from mlflow.entities import Param

        items = [Param(k, _param_value(v)) for k, v in params.items()]
        client = self.client()
        for i in range(0, len(items), 100):
            client.log_batch(run_id, params=items[i : i + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        client = self.client()
        for i in range(0, len(items), 500):
            client.log_batch(run_id, metrics=items[i : i + 500])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, str(v)) for k, v in tags.items() if v is not None]
        if items:
            self.client().log_batch(run_id, tags=items)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        """A file, or a folder's content, under ``artifact_path``."""
        path = Path(path)
        if path.is_dir():
            self.client().log_artifacts(run_id, str(path), artifact_path)
        else:
            self.client().log_artifact(run_id, str(path), artifact_path)

    def log_dict(self, run_id: str, obj: Any, artifact_file: str) -> None:
        self.client().log_dict(run_id, obj, artifact_file)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client().log_text(run_id, text, artifact_file)

    def log_table(self, run_id: str, data: Mapping[str, list] | Any, artifact_file: str) -> None:
        """A judgement table (``mlflow.log_table``: dict of columns or a DataFrame), viewable in the UI."""
        self.client().log_table(run_id, data=data, artifact_file=artifact_file)

    def log_figure(self, run_id: str, figure: Any, artifact_file: str) -> None:
        """A matplotlib figure as PNG; the figure is closed afterwards."""
        import matplotlib.pyplot as plt

        self.client().log_figure(run_id, figure, artifact_file)
        plt.close(figure)

    def download(self, artifact_uri: str, dst: str | Path | None = None) -> Path:
        """Download ``runs:/...`` or ``models:/name@alias`` artifacts to ``dst`` (a temp dir by default)."""
        import mlflow.artifacts

        if artifact_uri.startswith("models:/"):  # resolve through OUR registry (download_artifacts would use the
            ref = artifact_uri.removeprefix("models:/")  # process-global registry URI)
            client = self.client()
            if "@" in ref:
                mv = client.get_model_version_by_alias(*ref.split("@", 1))
            else:
                name, version = ref.rsplit("/", 1)
                mv = client.get_model_version(name, version)
            artifact_uri = mv.source
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, dst_path=str(dst) if dst else None, tracking_uri=self.uri
            )
        )

    @contextmanager
    def trainer_env(self, run_id: str) -> Iterator[str]:
        """Let a TRL/transformers trainer log into stage run ``run_id``; yields the ``report_to`` value.

        Sets ``MLFLOW_TRACKING_URI``/``MLFLOW_RUN_ID`` (the MLflowCallback resumes that run), flattens params and
        keeps checkpoints out of MLflow (models are logged once, by the stage); restores the environment after.

        Example: ``with tracker.trainer_env(run_id) as report_to: train_sft(..., report_to=report_to)``
        """
        import mlflow

        saved = {k: os.environ.get(k) for k in _TRAINER_ENV}
        os.environ.update(
            {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_RUN_ID": run_id, "MLFLOW_FLATTEN_PARAMS": "TRUE"}
            | {"HF_MLFLOW_LOG_ARTIFACTS": "FALSE", "MLFLOW_EXPERIMENT_NAME": self.experiment}
        )
        mlflow.set_tracking_uri(self.uri)
        try:
            yield "mlflow"
        finally:
            if mlflow.active_run() is not None and mlflow.active_run().info.run_id == run_id:
                mlflow.end_run()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    # ---- registry -----------------------------------------------------------------------------------------------
    def register(self, run_id: str, model_dir: str | Path, name: str, tags: Mapping[str, Any] | None = None) -> str:
        """Log ``model_dir`` as artifact ``model/`` of ``run_id`` and register it as a new version of ``name``."""
        from mlflow.exceptions import MlflowException

        artifact_path = f"model-{name}"
        self.log_artifact(run_id, model_dir, artifact_path)
        client = self.client()
        try:
            client.get_registered_model(name)
        except MlflowException:
            client.create_registered_model(name, description="DeepSeek-GRM-style reward model trained by SPCT")
        mv = client.create_model_version(
            name, f"runs:/{run_id}/{artifact_path}", run_id=run_id, tags={k: str(v) for k, v in (tags or {}).items()}
        )
        return str(mv.version)

    def alias_version(self, name: str, alias: str) -> Any | None:
        """The model version holding ``alias`` (None when there is none, or no such model)."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def gate_value(self, version: Any, metric: str) -> float | None:
        """The gate metric of a registered version: its ``gate_value`` tag, else its run's metric."""
        tags = getattr(version, "tags", None) or {}
        if tags.get("gate_metric") == metric and "gate_value" in tags:
            return float(tags["gate_value"])
        if version.run_id:
            value = self.client().get_run(version.run_id).data.metrics.get(metric)
            return float(value) if value is not None else None
        return None

    def promote(
        self,
        run_id: str,
        grm_dir: str | Path,
        metrics: Mapping[str, float],
        registry: Any,
        meta_rm_dir: str | Path | None = None,
    ) -> dict[str, Any]:
        """Register the GRM (+ meta RM) and apply the champion gate (``registry`` = ``RegistryConfig``).

        Returns:
            The decision record (also logged as ``registry/decision.json`` and tags on ``run_id``).

        Raises:
            KeyError: ``registry.gate_metric`` is not among ``metrics`` (the message lists what is).
        """
        metric = registry.gate_metric
        if metric not in metrics:
            raise KeyError(
                f"registry.gate_metric={metric!r} was not measured in this run; set it to one of {sorted(metrics)}"
            )
        new_value = float(metrics[metric])
        current = self.alias_version(registry.model_name, CHAMPION)
        champ_value = self.gate_value(current, metric) if current is not None else None
        alias, reason = decide_alias(new_value, champ_value, registry.margin)
        tags = {"gate_metric": metric, "gate_value": new_value}
        version = self.register(run_id, grm_dir, registry.model_name, tags)
        client = self.client()
        client.set_registered_model_alias(registry.model_name, alias, version)
        decision = {
            "model": registry.model_name,
            "version": version,
            "alias": alias,
            "reason": reason,
            "gate_metric": metric,
            "new_value": new_value,
            "champion_version": current.version if current is not None else None,
            "champion_value": champ_value,
            "margin": registry.margin,
        }
        if meta_rm_dir is not None:  # the meta RM travels with its GRM: same alias, linked by a tag
            meta_version = self.register(run_id, meta_rm_dir, registry.meta_model_name, {"grm_version": version})
            client.set_registered_model_alias(registry.meta_model_name, alias, meta_version)
            decision["meta_rm_version"] = meta_version
        self.log_dict(run_id, decision, "registry/decision.json")
        self.set_tags(run_id, {"grm.registry.alias": alias, "grm.registry.version": version})
        return decision


_TRAINER_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_RUN_ID",
    "MLFLOW_FLATTEN_PARAMS",
    "HF_MLFLOW_LOG_ARTIFACTS",
    "MLFLOW_EXPERIMENT_NAME",
)


class NullTracker:
    """``tracking.enabled=false``: every call is a no-op; registry calls refuse (they need a store)."""

    uri = ""
    experiment = ""
    enabled = False

    def start_run(self, name: str, parent_id: str | None = None, tags: Mapping[str, str] | None = None) -> str:
        return ""

    def __getattr__(self, name: str) -> Any:
        if name in ("promote", "register", "download", "alias_version"):
            raise RuntimeError(f"{name} needs MLflow; set tracking.enabled=true")
        if name == "trainer_env":
            return _none_env
        return lambda *args, **kwargs: None


@contextmanager
def _none_env(run_id: str) -> Iterator[str]:
    yield "none"


def make_tracker(tracking_cfg: Any, experiment: str, project_dir: str | Path = ".") -> Tracker | NullTracker:
    """The tracker of a flow run from ``TrackingConfig`` (``enabled``, ``tracking_uri``)."""
    if not tracking_cfg.enabled:
        return NullTracker()
    return Tracker(resolve_tracking_uri(tracking_cfg.tracking_uri, project_dir), experiment)


def serve_ui(project_dir: str | Path = ".", host: str = "127.0.0.1", port: int = 5000) -> subprocess.Popen:
    """Start ``mlflow server`` on the embedded store (SQLite + ``mlruns/artifacts``); returns the process.

    Equivalent to ``mlflow server --backend-store-uri sqlite:///mlruns/mlflow.db --default-artifact-root
    mlruns/artifacts --host 127.0.0.1``; the caller stops it (``proc.terminate()``).
    """
    root = Path(project_dir).resolve()
    (root / "mlruns" / "artifacts").mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", default_tracking_uri(root)]
    cmd += ["--default-artifact-root", str(root / "mlruns" / "artifacts"), "--host", host, "--port", str(port)]
    cmd += ["--workers", "1"]
    return subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def ui_command(port: int = 5000, host: str = "127.0.0.1") -> None:  # pragma: no cover - blocks until Ctrl-C
    """``grm ui``: browse the embedded MLflow store at http://127.0.0.1:PORT (Ctrl-C stops it)."""
    proc = serve_ui(".", host, port)
    print(f"MLflow UI on http://{host}:{port} (store: {default_tracking_uri('.')}); Ctrl-C stops it")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
    except KeyboardInterrupt:
        proc.terminate()
