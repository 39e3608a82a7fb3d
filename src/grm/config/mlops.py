"""The ``tracking``, ``registry`` and ``runtime`` sections."""

from __future__ import annotations

from dataclasses import dataclass, field

from grm.config.fields import fail, positive


@dataclass(frozen=True)
class TrackingConfig:
    """Experiment tracking (MLflow). The embedded default is a SQLite store + artifacts under mlruns/."""

    enabled: bool = field(default=True, metadata={"help": "log runs to MLflow"})
    tracking_uri: str | None = field(
        default=None, metadata={"help": "None: $MLFLOW_TRACKING_URI, else sqlite:///mlruns/mlflow.db"}
    )
    experiment: str = field(default="spct_pipeline", metadata={"help": "MLflow experiment name"})


@dataclass(frozen=True)
class RegistryConfig:
    """Model registry gate: the new GRM becomes champion only if it beats the current one by a margin."""

    model_name: str = field(default="grm", metadata={"help": "registered model name of the GRM"})
    meta_model_name: str = field(default="grm-meta-rm", metadata={"help": "registered model name of the meta RM"})
    gate_metric: str | None = field(
        default=None,
        metadata={
            "help": "metric compared against the champion; null = the final model's Voting@k_max accuracy on the "
            "held-out split (eval/{world, or heldout for a data folder}/{rl or rft}/voting_k{max(eval.ks)}/accuracy), "
            "compared on the same items (the champion is evaluated on this run's test split or benchmark). An "
            "explicit name must be one the enabled stages produce (checked at load)"
        },
    )
    margin: float = field(
        default=0.0,
        metadata={
            "help": "required improvement over the champion: the new version is promoted only when the lower end of "
            "the paired 95% bootstrap interval of (new - champion) on the same items (this run's test split, or the "
            "benchmark items of a benchmark gate metric) is above it"
        },
    )
    pyfunc_model_name: str | None = field(
        default="grm-pyfunc",
        metadata={
            "help": "also register the GRM + meta RM as an MLflow pyfunc model under this name, with the gate's alias "
            "(`mlflow models serve -m models:/grm-pyfunc@champion --env-manager local`); null: skip"
        },
    )

    def __post_init__(self) -> None:
        if not self.margin >= 0:  # a negative margin promotes a model worse than the champion
            fail("registry.margin", self.margin, "must be >= 0 (0: any significant improvement promotes)")


# ---- runtime ---------------------------------------------------------------------------------------------------
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class RuntimeConfig:
    """Where the sampling-heavy work runs (judging in rft.sample, meta-RM data, every eval stage). The executor never
    changes a result (``grm.executors``: the shards and their seeds are fixed by ``sampling.shard_size``), so no
    field here is part of any stage key; a build reads it through ``grm.executors.current()``."""

    executor: str = field(
        default="local", metadata={"help": f"one of {EXECUTORS}: in this process, or shards judged by Ray actors"}
    )
    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "null: a local Ray started by the run (stopped at its end); 'auto' or 'ray://HEAD:10001': an "
            "existing cluster (ray start --head)"
        },
    )
    workers: int = field(default=2, metadata={"help": "Ray actors per sampler, each holding one loaded sampler"})
    num_cpus: float = field(default=1.0, metadata={"help": "CPUs per Ray actor (also its torch threads)"})
    num_gpus: float = field(default=0.0, metadata={"help": "GPUs per Ray actor (1 for an HF or vLLM model on GPU)"})
    max_retries: int = field(
        default=3, metadata={"help": "restarts of a killed actor and retries of its shard before the stage fails"}
    )
    parallel_stages: int = field(
        default=2,
        metadata={
            "help": "model stages that may build at once (RFT's variants beside rl.train, the evaluations side by "
            "side), each in its own process, splitting the cores (at most one per core; tasks/engine/workers.py). The tiny "
            "default model scales poorly to a second thread, so two stages on one thread each beat the two one "
            "after the other on two (bench/stage_concurrency.py). Thread counts never change a result on the "
            "tested CPUs (tests/integration/test_thread_count.py). 1: one build at a time in the run's process; "
            "runtime.executor ray: always 1"
        },
    )

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            fail("runtime.executor", self.executor, f"use one of {list(EXECUTORS)}")
        positive("runtime", self, ("workers", "parallel_stages"))
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            fail("runtime.max_retries", self.max_retries, "must be an integer >= 0")
        if not self.num_cpus > 0:
            fail("runtime.num_cpus", self.num_cpus, "must be > 0 (e.g. 1)")
        if self.num_gpus < 0:
            fail("runtime.num_gpus", self.num_gpus, "must be >= 0")
        if self.ray_address is not None and self.executor != "ray":
            fail("runtime.ray_address", self.ray_address, "is read only with runtime.executor: ray; set both or none")
        if self.executor == "ray":
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                fail("runtime.executor", self.executor, "needs Ray: pip install 'grm[ray]' (or executor: local)")
