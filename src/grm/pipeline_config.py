"""The resolved configuration of the whole SPCT pipeline: one frozen dataclass per section.

Sections: ``data`` (where items come from), ``sampling`` (how the GRM generates), ``eval`` (greedy / Voting@k /
MetaRM@k protocol), ``tracking`` and ``registry``. Training sections are added by their stages. Values come from
``configs/*.yaml`` + dotted overrides (``grm.config.load_config``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from grm.meta_rm import MetaRMConfig
from grm.prompts import TEMPLATES
from grm.rft import RejectiveSamplingConfig
from grm.training.grpo import GRPOStageConfig
from grm.training.sft import SFTStageConfig
from grm.verdicts import TIE_POLICIES
from grm.world.generator import WorldConfig
from grm.world.model import TinyModelConfig


def _fail(key: str, value: object, fix: str) -> None:
    raise ValueError(f"{key}={value!r}: {fix}")


@dataclass(frozen=True)
class DataConfig:
    """Where preference items come from and the limits every dataset is validated against."""

    source: str = field(
        default="world",
        metadata={"help": "'world' (embedded synthetic world) or a folder holding train.jsonl/val.jsonl/test.jsonl"},
    )
    data_dir: str = field(default="data", metadata={"help": "DVC-tracked folder the prepared datasets are written to"})
    max_responses: int = field(default=4, metadata={"help": "validation: 1 <= n <= max_responses"})
    max_chars: int = field(default=20000, metadata={"help": "validation: longest query/response text allowed"})

    def __post_init__(self) -> None:
        if self.max_responses < 1:
            _fail("data.max_responses", self.max_responses, "must be >= 1")
        if self.max_chars < 1:
            _fail("data.max_chars", self.max_chars, "must be >= 1")


@dataclass(frozen=True)
class SamplingConfig:
    """How the GRM generates judgements (any backend: model dir, http URL, vllm:PATH)."""

    template: str = field(default="deepseek-grm", metadata={"help": f"prompt template, one of {TEMPLATES}"})
    chat_template: bool = field(
        default=False,
        metadata={"help": "wrap prompts in the tokenizer's chat template (instruct models); base models: false"},
    )
    max_new_tokens: int = field(default=512, metadata={"help": "generation budget per judgement"})
    batch_size: int = field(default=16, metadata={"help": "prompts per forward batch (HF backend)"})
    num_threads: int = field(default=2, metadata={"help": "torch CPU threads (HF backend)"})
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow model repos to run their own code; off unless you trust the source"}
    )

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            _fail("sampling.template", self.template, f"use one of {list(TEMPLATES)}")
        if self.max_new_tokens < 1:
            _fail("sampling.max_new_tokens", self.max_new_tokens, "must be >= 1")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol: greedy, Voting@k and MetaRM@k read from one set of k_max samples per item."""

    ks: tuple[int, ...] = field(default=(1, 2, 4, 8, 16), metadata={"help": "k values for Voting@k / MetaRM@k"})
    temperature: float = field(default=0.5, metadata={"help": "sampling temperature for voting (paper: 0.5)"})
    k_meta: int | None = field(default=None, metadata={"help": "samples the meta RM keeps; None = k // 2"})
    tie_policy: Literal["random", "strict", "half"] = field(
        default="random", metadata={"help": f"top-tie handling, one of {TIE_POLICIES}"}
    )
    seed: int = field(default=0, metadata={"help": "seed for shuffles, sampling and tie-breaks"})
    hygiene: bool = field(default=True, metadata={"help": "greedy position-flip check (one more greedy pass)"})
    seed_agreement: bool = field(
        default=False,
        metadata={"help": "run-to-run agreement of Voting@k_max with seed + 1 (doubles the sampling cost)"},
    )
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N test items"})
    benchmarks: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": "registered benchmarks to evaluate the final GRM on (grm eval names), besides the held-out test split"
        },
    )
    benchmark_limit: int | None = field(default=None, metadata={"help": "items per benchmark (None: all)"})
    benchdata: str = field(default="../shared/benchdata", metadata={"help": "folder holding local benchmark copies"})

    @property
    def k_max(self) -> int:
        return max(self.ks)

    def __post_init__(self) -> None:
        if not self.ks or any(k < 1 for k in self.ks):
            _fail("eval.ks", self.ks, "give one or more k >= 1")
        if self.temperature < 0:
            _fail("eval.temperature", self.temperature, "must be >= 0")
        if self.k_meta is not None and self.k_meta < 1:
            _fail("eval.k_meta", self.k_meta, "must be >= 1 or null")


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
    gate_metric: str = field(
        default="eval/world/rl/voting_k8/accuracy", metadata={"help": "metric compared against the champion"}
    )
    margin: float = field(default=0.0, metadata={"help": "required improvement over the champion's gate metric"})


@dataclass(frozen=True)
class ModelConfig:
    """The base model the GRM is trained from, and the teacher that rejective sampling draws from."""

    base: str = field(
        default="embedded",
        metadata={
            "help": "'embedded' builds the tiny world model locally; otherwise a local HF model dir (safetensors)"
        },
    )
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    teacher: str = field(
        default="world-teacher",
        metadata={"help": "teacher sampler: world-teacher[:ERROR_RATE], a model dir, an http(s) URL, or vllm:PATH"},
    )
    teacher_model_name: str | None = field(
        default=None, metadata={"help": "served model name for an http teacher (None: the server's first model)"}
    )


@dataclass(frozen=True)
class RFTConfig:
    """Rejective sampling + rejective fine-tuning (SPEC §3)."""

    sampling: RejectiveSamplingConfig = field(default_factory=RejectiveSamplingConfig)
    train: SFTStageConfig = field(default_factory=SFTStageConfig)
    general_ratio: float = field(
        default=0.5,
        metadata={"help": "general-instruction examples per accepted trajectory in the RFT mix (paper: ~5.8)"},
    )
    ablation_unfiltered: bool = field(
        default=True,
        metadata={"help": "also train 'RFT w/o rejective sampling' on unfiltered teacher samples, same budget"},
    )

    def __post_init__(self) -> None:
        if self.general_ratio < 0:
            _fail("rft.general_ratio", self.general_ratio, "must be >= 0")


@dataclass(frozen=True)
class MetaStageConfig:
    """Meta RM data and training (SPEC §6)."""

    train: MetaRMConfig = field(default_factory=MetaRMConfig)
    grm_samples: int = field(
        default=4, metadata={"help": "samples per train item drawn from the trained GRM for meta-RM data"}
    )
    grm_items: int = field(default=1000, metadata={"help": "train items whose GRM samples join the meta-RM data"})
    temperature: float = field(
        default=0.5, metadata={"help": "temperature of those GRM samples (the voting temperature)"}
    )
    mixed_only: bool = field(
        default=False,
        metadata={
            "help": "keep only items whose samples have both labels (some judgements right, some wrong): the meta RM "
            "must then tell samples of one item apart, which is what MetaRM@k needs, instead of learning which items "
            "are hard (measured with bench/meta_study.py: within-item AUC arith 0.46 -> 0.56, MetaRM@8 - Voting@8 "
            "-4.4 -> -0.9)"
        },
    )
    enabled: bool = field(default=True, metadata={"help": "train the meta RM and report MetaRM@k"})


@dataclass(frozen=True)
class PipelineConfig:
    """Every section of the SPCT pipeline."""

    name: str = field(default="default", metadata={"help": "config name, logged as a tag"})
    seed: int = field(default=0, metadata={"help": "global seed"})
    data: DataConfig = field(default_factory=DataConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    rft: RFTConfig = field(default_factory=RFTConfig)
    rl: GRPOStageConfig = field(default_factory=GRPOStageConfig)
    meta_rm: MetaStageConfig = field(default_factory=MetaStageConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
