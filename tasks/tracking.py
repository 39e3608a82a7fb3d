"""MLflow runs, artifacts, tables and the registry (with ``tasks/eval_tracking.py``; the store itself, its location,
creation and locks: ``tasks/mlflow_store.py``; the UI: ``src/grm_cli/ui.py``).

- One experiment per flow; one parent run per flow run; one nested run per stage (tag ``mlflow.parentRunId``).
- Everything goes through ``MlflowClient`` with explicit run ids (no fluent active-run stack), so Prefect's worker
  threads cannot log into the wrong run. ``trainer_env`` hands a stage run to TRL/transformers (report_to="mlflow").
- Experiments are tagged ``mlflow.experimentKind=custom_model_development`` (model training, not GenAI); MLflow
  3.17's UI picks its view from the ``workflowType`` URL parameter instead, so ``ui_url`` links carry
  ``workflowType=machine_learning``. Each DVC split is a dataset input of the parent run (``log_datasets``).
- ``own_run`` records host + pid on a parent run and ends this host's dead RUNNING predecessors (KILLED, tag
  ``grm.superseded_by``).
- Registry: ``promote`` registers the GRM (and meta RM) and moves ``champion`` only when the new version beats the
  current one on the same items (``grm.eval.gate.decide_alias``): the flow evaluated the champion on this run's test
  split or benchmark items (``Comparison``) and the paired gap's interval must have its lower end above
  ``registry.margin``; without a comparison, the champion's stored value decides. A run whose final GRM and meta-RM
  stage keys and data version equal a registered version's registers nothing (``noop``). The decision is logged.
  The GRM alias is the one commit point of a promotion; the meta RM is linked by the tag ``meta_rm_version`` on
  the GRM version and its alias mirrors the GRM's, so ``repair_promotions`` (run first by every gate and registry resolve) completes a promotion a crash
  interrupted after the GRM alias moved, and rolls back (deletes) one interrupted before.

``NullTracker`` (tracking.enabled=false) and test fakes implement the same methods.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grm.eval.gate import Comparison, decide_alias
from tasks import mlflow_store

MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
CHAMPION, CHALLENGER = "champion", "challenger"
ALIASES = (CHAMPION, CHALLENGER)
EXPERIMENT_KIND_TAG, TRAINING_KIND = "mlflow.experimentKind", "custom_model_development"
PROMOTION_TAG = "grm.promotion"  # on a GRM version: "pending" until its promotion is complete, then "done"
META_LINK_TAG = "meta_rm_version"  # on a GRM version: the meta RM version promoted with it
HOST_TAG, PID_TAG, PID_START_TAG, SUPERSEDED_TAG = "grm.host", "grm.pid", "grm.pid_start", "grm.superseded_by"
NOOP_TAG = "grm.noop_of"  # on a parent run that registered nothing: the run whose model it would have duplicated
TEST_MD5_TAG, RUN_TEST_MD5_TAG = "grm.data.md5.test", "grm.data.md5.test.jsonl"  # on a GRM version / a parent run
SPLIT_CONTEXT = {"train": "training", "val": "validation", "test": "test"}


# pyplot's state and matplotlib's mathtext parser (pyparsing) are not thread-safe, and with
# runtime.parallel_stages the stages' tracking hooks run in the flow's threads at once: every figure is built and
# rendered under this lock (seen without it: a ParseException from tight_layout in two concurrent eval stages)
FIGURE_LOCK = threading.RLock()


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


def gate_tags_of(paired: Any, champion_version: str | None, facts: Mapping[str, Any]) -> dict[str, str]:
    """The gate's evidence as tags (``grm.gate.*``) for the run and the new version (none without a paired gap)."""
    if paired is None:
        return {}
    tags = {
        "grm.gate.gap": paired.gap,
        "grm.gate.ci_low": paired.ci_low,
        "grm.gate.ci_high": paired.ci_high,
    }
    tags |= {"grm.gate.n_items": paired.n_items, "grm.gate.champion_version": champion_version}
    tags |= {f"grm.gate.{k}": v for k, v in facts.items()}
    return {k: str(v) for k, v in tags.items() if v is not None}


def _proc_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux ``/proc``; None elsewhere or if gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 of stat; fields after the ")" of the command start at 3


def process_alive(pid: int, start: str | None = None) -> bool:
    """Whether process ``pid`` runs on this host (and, when ``start`` is known, is the same process, not a reuse)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start is None or _proc_start(pid) in (None, start)


def run_is_dead(tags: Mapping[str, str], host: str | None = None) -> bool:
    """A RUNNING run's process is gone: it was started on this host (tags ``grm.host``/``grm.pid``) and that pid
    is not alive. Runs from another host, or without the tags, are never declared dead."""
    if tags.get(HOST_TAG) != (host or socket.gethostname()) or not str(tags.get(PID_TAG, "")).isdigit():
        return False
    return not process_alive(int(tags[PID_TAG]), tags.get(PID_START_TAG))


@dataclass(frozen=True)
class Tracker:
    """MLflow client bound to one store and experiment (picklable: it holds strings only)."""

    uri: str
    experiment: str

    @property
    def enabled(self) -> bool:
        return True

    def client(self):  # -> mlflow.MlflowClient (waiting out another process's lock on a SQLite store)
        return mlflow_store.retrying_client(self.uri)

    def experiment_id(self) -> str:
        """Get or create the experiment (artifacts beside a local SQLite store)."""
        client = self.client()
        exp = client.get_experiment_by_name(self.experiment)
        if exp is not None:
            mlflow_store.check_artifact_location(self.uri, self.experiment, exp.artifact_location)
            return exp.experiment_id
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        root = mlflow_store.artifact_root_for(self.uri)
        location = f"{root}/{self.experiment}" if root else None
        try:
            return client.create_experiment(
                self.experiment, artifact_location=location, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND}
            )
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

    def own_run(self, run_id: str) -> list[str]:
        """Claim parent run ``run_id`` for this process and close the dead runs it supersedes.

        Tags ``run_id`` with this host and pid (what a later run checks), marks the experiment as model training
        (``mlflow.experimentKind``, also on experiments created before the tag existed), and ends every other
        RUNNING run of the experiment whose process is gone from this host (``run_is_dead``): ``KILLED``, tagged
        ``grm.superseded_by=run_id``, with its RUNNING stage runs. Runs of other hosts are left as they are.

        Returns:
            The ids of the runs it ended.
        """
        pid = os.getpid()
        self.set_tags(run_id, {HOST_TAG: socket.gethostname(), PID_TAG: pid, PID_START_TAG: _proc_start(pid)})
        client = self.client()
        exp_id = self.experiment_id()
        if client.get_experiment(exp_id).tags.get(EXPERIMENT_KIND_TAG) != TRAINING_KIND:
            client.set_experiment_tag(exp_id, EXPERIMENT_KIND_TAG, TRAINING_KIND)
        running = client.search_runs([exp_id], "attributes.status = 'RUNNING'", max_results=1000)
        dead = [r.info.run_id for r in running if r.info.run_id != run_id and run_is_dead(r.data.tags)]
        stages = [r.info.run_id for r in running if r.data.tags.get("mlflow.parentRunId") in dead]  # its process
        ended = dead + [r for r in stages if r not in dead]
        for rid in ended:
            self.set_tags(rid, {SUPERSEDED_TAG: run_id})
            self.end_run(rid, "KILLED")
        return ended

    def log_datasets(
        self, run_id: str, version: Any, data_dir: str, project_dir: str | Path = ".", source: str = "world"
    ) -> list[str]:
        """Log each DVC-versioned split as a dataset input of ``run_id`` (the UI's Dataset column).

        Args:
            version: a ``tasks.versioning.DataVersion`` (``files``: ``{split}.jsonl`` -> md5, ``remote``,
                ``dvc_md5``).
            data_dir: the DVC-tracked folder, relative to ``project_dir`` (the dataset's source path).
            source: ``data.source`` ("world" or a folder); datasets are named ``{its last part}/{split}``,
                digest = the file's DVC md5, context training/validation/test. Rows are counted line by line.

        Returns:
            The dataset names logged.
        """
        from mlflow.entities import Dataset, DatasetInput, InputTag

        inputs, names, name = [], [], Path(source).name or "data"
        for split, context in SPLIT_CONTEXT.items():
            md5 = version.files.get(f"{split}.jsonl")
            if md5 is None:
                continue
            rel = f"{data_dir.rstrip('/')}/{split}.jsonl"
            path = Path(project_dir) / rel
            rows = None
            if path.exists():
                with path.open("rb") as f:
                    rows = sum(1 for line in f if line.strip())
            where = {"uri": rel, "dvc_file": f"{data_dir.rstrip('/')}.dvc", "dvc_remote": version.remote}
            where["dvc_dir_md5"] = version.dvc_md5
            ds = Dataset(
                name=f"{name}/{split}",
                digest=md5,
                source_type="local",
                source=json.dumps(where),
                profile=json.dumps({"num_rows": rows}) if rows is not None else None,
            )
            inputs.append(DatasetInput(ds, [InputTag("mlflow.data.context", context)]))
            names.append(ds.name)
        if inputs:
            self.client().log_inputs(run_id, datasets=inputs)
        return names

    def ui_url(self, base: str = "http://127.0.0.1:5000", run_ids: Sequence[str] = ()) -> str:
        """The MLflow UI page of this experiment's runs table (or of one run, or the compare page of several).

        MLflow 3.17's UI opens every experiment in its GenAI view unless the URL (or the sidebar switch, kept in
        the browser's local storage) says ``workflowType=machine_learning``; these links say it.
        """
        exp_id = self.experiment_id()
        query = "workflowType=machine_learning"
        if len(run_ids) == 1:
            return f"{base}/#/experiments/{exp_id}/runs/{run_ids[0]}?{query}"
        if run_ids:
            runs = json.dumps(list(run_ids), separators=(",", ":"))
            return f"{base}/#/compare-runs?runs={runs}&experiments={json.dumps([exp_id])}&{query}"
        return f"{base}/#/experiments/{exp_id}/runs?{query}"

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
        """A matplotlib figure as PNG; the figure is closed afterwards (rendering holds ``FIGURE_LOCK``)."""
        import matplotlib.pyplot as plt

        with FIGURE_LOCK:
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
    def registry_lock(self):  # -> a context manager
        """Held around a gate (``repair_promotions`` + register + alias moves) so that two runs of one project do
        not both create a registered model, read "no champion" at once, or repair a promotion the other is making:
        ``{db}.registry.lock`` beside an embedded SQLite store; a tracking server is left to itself."""
        from contextlib import nullcontext

        from tasks.engine.locks import file_lock

        if not self.uri.startswith("sqlite:///"):
            return nullcontext()
        db = Path(self.uri.removeprefix("sqlite:///"))
        return file_lock(db.with_name(db.name + ".registry.lock"), f"the model registry of {db} (another run's gate)")

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
        comparison: Comparison | None = None,
        identity: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Register the GRM (+ meta RM) and apply the champion gate (``registry`` = ``RegistryConfig``).

        One promotion, in an order a crash cannot leave half-read: (1) register the GRM version tagged
        ``grm.promotion=pending``, (2) register the meta RM version and link it (tag ``meta_rm_version`` on the GRM
        version), (3) move the GRM alias: the commit point, one write, (4) mirror the meta RM alias, (5) tag the
        GRM version ``done``. ``repair_promotions`` runs first and finishes (after 3) or rolls back (before 3) a
        promotion an earlier process did not finish.

        Args:
            comparison: the champion measured on this run's test split (``tasks.champion``): the gate decides on its
                paired gap; None: on the champion's stored value (no measured champion).
            identity: what makes this model what it is (``grm.stage_key.grm``, ``grm.stage_key.meta_rm``,
                ``grm.data.dvc_md5``, ``grm.data.md5.test``): tags of the new version; a registered version with the
                same stage keys and data version is this very model, so nothing is registered (``noop``).

        Returns:
            The decision record (also logged as ``registry/decision.json`` and tags on ``run_id``).

        Raises:
            KeyError: ``registry.gate_metric`` is not among ``metrics`` (the message lists what is).
        """
        repairs = self.repair_promotions(registry, keep_run=run_id)
        metric = registry.gate_metric
        if metric not in metrics:
            raise KeyError(
                f"registry.gate_metric={metric!r} was not measured in this run; set it to one of {sorted(metrics)}"
            )
        same = self.same_version(registry, identity) if identity else None
        if same is not None:
            return self._noop(run_id, registry, same, repairs)
        new_value = float(metrics[metric])
        current = self.alias_version(registry.model_name, CHAMPION)
        champ_version = str(current.version) if current is not None else None
        paired, facts, moved = None, {}, False
        if current is not None and comparison is not None:
            # another run's gate registered or moved the champion after this run measured it: never promote on a
            # comparison that was not made on this run's items (nor fail the run: it is registered as challenger)
            moved = comparison.champion_version != champ_version
            paired, champ_value = comparison.paired, comparison.champion_value
            facts = self._split_facts(current, comparison.test_md5)
        else:
            champ_value = self.gate_value(current, metric) if current is not None else None
        if moved:
            measured = f"v{comparison.champion_version}" if comparison.champion_version else "no champion"
            paired, champ_value = None, None
            alias, reason = (
                CHALLENGER,
                (
                    f"champion v{champ_version} was registered by another run while this run ran (this run measured "
                    f"{measured} on its test items): not compared on the same items, so not promoted; rerun to compare"
                ),
            )
        else:
            alias, reason = decide_alias(new_value, champ_value, registry.margin, champ_version, metric, paired)
        if facts.get("test_split_changed"):
            reason += (
                f"; the test split changed since v{champ_version} was registered (md5 {facts['champion_test_md5']} -> "
                f"{facts['test_md5']}): both were measured on the new one"
            )
        gate_tags = gate_tags_of(paired, champ_version, facts)
        tags = {"gate_metric": metric, "gate_value": new_value, PROMOTION_TAG: "pending", "grm.alias": alias}
        version = self.register(run_id, grm_dir, registry.model_name, tags | dict(identity or {}) | gate_tags)
        client = self.client()
        meta_version = None
        if meta_rm_dir is not None:  # the meta RM travels with its GRM: linked by a tag, its alias mirrors the GRM's
            meta_version = self.register(run_id, meta_rm_dir, registry.meta_model_name, {"grm_version": version})
            client.set_model_version_tag(registry.model_name, version, META_LINK_TAG, meta_version)
        client.set_registered_model_alias(registry.model_name, alias, version)  # the commit point
        self._mirror_meta_alias(registry, alias)
        client.set_model_version_tag(registry.model_name, version, PROMOTION_TAG, "done")
        if current is not None and paired is not None:  # the champion's side of the comparison, per challenger
            for key, value in gate_tags.items():
                if key != "grm.gate.champion_version":
                    client.set_model_version_tag(
                        registry.model_name,
                        current.version,
                        key.replace("grm.gate.", f"grm.gate.vs_v{version}."),
                        value,
                    )
        decision = {
            "model": registry.model_name,
            "version": version,
            "alias": alias,
            "reason": reason,
            "noop": False,
            "gate_metric": metric,
            "new_value": new_value,
            "champion_version": champ_version,
            "champion_value": champ_value,
            "comparison": "paired" if paired is not None else ("same_split" if comparison else "stored"),
            "margin": registry.margin,
            "repairs": repairs,
        }
        if paired is not None:
            decision.update(gap=paired.gap, ci_low=paired.ci_low, ci_high=paired.ci_high, n_items=paired.n_items)
        decision.update(facts)
        if meta_version is not None:
            decision["meta_rm_version"] = meta_version
        self.log_dict(run_id, decision, "registry/decision.json")
        self.set_tags(run_id, {"grm.registry.alias": alias, "grm.registry.version": version} | gate_tags)
        return decision

    def same_version(self, registry: Any, identity: Mapping[str, str]) -> Any | None:
        """The registered GRM version whose tags hold every ``identity`` item (the newest; None if none)."""
        found = [
            mv
            for mv in self._versions(registry.model_name)
            if all((mv.tags or {}).get(k) == str(v) for k, v in identity.items())
            and (mv.tags or {}).get(PROMOTION_TAG) != "pending"
        ]
        return max(found, key=lambda mv: int(mv.version)) if found else None

    def _noop(self, run_id: str, registry: Any, same: Any, repairs: list[str]) -> dict[str, Any]:
        """The decision of a run that trained nothing new: nothing registered, the earlier run linked."""
        holds = [a for a in ALIASES if (v := self.alias_version(registry.model_name, a)) and v.version == same.version]
        alias = holds[0] if holds else None
        link = self.ui_url(run_ids=[same.run_id]) if same.run_id else None
        reason = (
            f"no-op: data version, config and code are unchanged since run {same.run_id}, whose model is "
            f"{registry.model_name} v{same.version} ({alias or 'no alias'}); nothing registered"
        )
        decision = {
            "model": registry.model_name,
            "version": str(same.version),
            "alias": alias,
            "reason": reason,
            "noop": True,
            "same_as": {"version": str(same.version), "run_id": same.run_id, "link": link},
            "gate_metric": registry.gate_metric,
            "repairs": repairs,
        }
        self.log_dict(run_id, decision, "registry/decision.json")
        self.set_tags(run_id, {NOOP_TAG: same.run_id, "grm.registry.version": str(same.version)})
        return decision

    def _split_facts(self, champion: Any, test_md5: str | None) -> dict[str, Any]:
        """This run's test-split md5, the one the champion was registered with, and whether they differ."""
        tags = champion.tags or {}
        before = tags.get(TEST_MD5_TAG)
        if before is None and champion.run_id:  # versions registered before the tag: their run's data tag
            from mlflow.exceptions import MlflowException

            with suppress(MlflowException):
                before = self.client().get_run(champion.run_id).data.tags.get(RUN_TEST_MD5_TAG)
        changed = None if before is None or test_md5 is None else before != test_md5
        return {"test_md5": test_md5, "champion_test_md5": before, "test_split_changed": changed}

    def linked_meta_version(self, registry: Any, grm_version: Any) -> str | None:
        """The meta RM version promoted with GRM ``grm_version`` (its ``meta_rm_version`` tag; for versions
        registered before the tag existed, the meta RM version of the same run tagged ``grm_version``)."""
        tags = grm_version.tags or {}
        if META_LINK_TAG in tags:
            return str(tags[META_LINK_TAG])
        for mv in self._versions(registry.meta_model_name):
            if (mv.tags or {}).get("grm_version") == str(grm_version.version) and mv.run_id == grm_version.run_id:
                return str(mv.version)
        return None

    def _versions(self, name: str) -> list[Any]:
        from mlflow.exceptions import MlflowException

        try:
            return list(self.client().search_model_versions(f"name='{name}'"))
        except MlflowException:
            return []

    def _mirror_meta_alias(self, registry: Any, alias: str) -> str | None:
        """Point the meta RM's ``alias`` at the meta RM linked to the GRM holding ``alias`` (remove it when that
        GRM has none); returns what changed, or None."""
        grm = self.alias_version(registry.model_name, alias)
        want = self.linked_meta_version(registry, grm) if grm is not None else None
        have = self.alias_version(registry.meta_model_name, alias)
        have_version = str(have.version) if have is not None else None
        if want == have_version:
            return None
        client = self.client()
        if want is None:
            client.delete_registered_model_alias(registry.meta_model_name, alias)
            why = f"GRM v{grm.version} has no meta RM" if grm is not None else f"no GRM is {alias}"
            return f"{registry.meta_model_name}@{alias} removed: {why}"
        client.set_registered_model_alias(registry.meta_model_name, alias, want)
        return (
            f"{registry.meta_model_name}@{alias} -> v{want} (was v{have_version}), the meta RM of GRM v{grm.version}"
        )

    def repair_promotions(self, registry: Any, keep_run: str | None = None) -> list[str]:
        """Finish or undo the promotions a killed process left half done; returns what it did (logged).

        A GRM version still tagged ``grm.promotion=pending``: if it holds an alias (the crash came after the commit
        point) its meta RM alias is mirrored and it is tagged ``done``; if not, and its run is no longer alive (not
        RUNNING, or RUNNING with a dead process on this host), it is deleted with its meta RM version (rolled
        back). Then both meta RM aliases are checked against their GRM's link. ``keep_run``: the caller's own run.
        """
        from mlflow.exceptions import MlflowException

        client = self.client()
        done: list[str] = []
        holders = {alias: self.alias_version(registry.model_name, alias) for alias in ALIASES}
        held = {str(v.version) for v in holders.values() if v is not None}
        for mv in self._versions(registry.model_name):
            if (mv.tags or {}).get(PROMOTION_TAG) != "pending":
                continue
            if str(mv.version) in held:
                for alias in ALIASES:
                    if holders[alias] is not None and str(holders[alias].version) == str(mv.version):
                        done += filter(None, [self._mirror_meta_alias(registry, alias)])
                client.set_model_version_tag(registry.model_name, mv.version, PROMOTION_TAG, "done")
                done.append(f"completed the promotion of {registry.model_name} v{mv.version}")
                continue
            if mv.run_id == keep_run or self._run_alive(mv.run_id):
                continue  # another live process is promoting it right now
            meta = self.linked_meta_version(registry, mv)
            if meta is not None:
                with suppress(MlflowException):  # already gone
                    client.delete_model_version(registry.meta_model_name, meta)
            client.delete_model_version(registry.model_name, mv.version)
            done.append(
                f"rolled back the unfinished promotion of {registry.model_name} v{mv.version} (run {mv.run_id})"
            )
        for alias in ALIASES:
            done += filter(None, [self._mirror_meta_alias(registry, alias)])
        return done

    def _run_alive(self, run_id: str | None) -> bool:
        from mlflow.exceptions import MlflowException

        if not run_id:
            return False
        try:
            run = self.client().get_run(run_id)
        except MlflowException:
            return False
        return run.info.status == "RUNNING" and not run_is_dead(run.data.tags)


_TRAINER_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_RUN_ID",
    "MLFLOW_FLATTEN_PARAMS",
    "HF_MLFLOW_LOG_ARTIFACTS",
    "MLFLOW_EXPERIMENT_NAME",
)


class NullTracker:
    """``tracking.enabled=false``: every ``Tracker`` method is a no-op; registry calls refuse (they need a store); a
    name ``Tracker`` does not have raises ``AttributeError``, as it would on a ``Tracker``."""

    uri = ""
    experiment = ""
    enabled = False

    def start_run(self, name: str, parent_id: str | None = None, tags: Mapping[str, str] | None = None) -> str:
        return ""

    def registry_lock(self):  # -> a context manager
        from contextlib import nullcontext

        return nullcontext()

    def __getattr__(self, name: str) -> Any:
        if name in ("promote", "register", "download", "alias_version", "repair_promotions"):
            raise RuntimeError(f"{name} needs MLflow; set tracking.enabled=true")
        if name == "trainer_env":
            return _none_env
        if name.startswith("_") or not callable(getattr(Tracker, name, None)):  # a typo fails, as on a Tracker
            raise AttributeError(f"{type(self).__name__} has no attribute {name!r} (neither has Tracker)")
        return lambda *args, **kwargs: None


@contextmanager
def _none_env(run_id: str) -> Iterator[str]:
    yield "none"


def make_tracker(tracking_cfg: Any, experiment: str, project_dir: str | Path = ".") -> Tracker | NullTracker:
    """The tracker of a flow run from ``TrackingConfig`` (``enabled``, ``tracking_uri``)."""
    if not tracking_cfg.enabled:
        return NullTracker()
    return Tracker(mlflow_store.resolve_tracking_uri(tracking_cfg.tracking_uri, project_dir), experiment)
