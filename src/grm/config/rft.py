"""The ``rft`` section: ``rft.sampling`` (rejective sampling) and ``rft.train`` (SFT)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grm.ablations import ABLATIONS
from grm.config.fields import (
    SCHEDULERS,
    accelerate_field,
    at_least,
    check_launch,
    fail,
    launcher_field,
    nnodes_field,
    nproc_field,
    positive,
    rdzv_field,
    seed_field,
)
from grm.method.prompts import TEMPLATES


@dataclass(frozen=True)
class RFTSamplingConfig:
    """Rejective sampling from a teacher GRM (paper: N_RFT = 3 plus one hinted sample)."""

    n_rft: int = field(default=3, metadata={"help": "un-hinted samples per item (paper: N_RFT = 3)"})
    hinted: bool = field(default=True, metadata={"help": "add one hinted sample per item (n >= 2), kept if correct"})
    drop_too_easy: bool = field(default=True, metadata={"help": "drop items whose n_rft samples are all correct"})
    max_kept_per_item: int | None = field(
        default=None, metadata={"help": "cap on kept un-hinted samples per item; None keeps every correct one"}
    )
    temperature: float = field(default=1.0, metadata={"help": "teacher sampling temperature"})
    max_new_tokens: int = field(default=50, metadata={"help": "teacher generation budget (world critiques: <= 45)"})
    template: str = field(
        default="compact", metadata={"help": "prompt template for teacher and student (= sampling.template)"}
    )
    seed: int | None = seed_field("the teacher's shuffles and samples")

    def __post_init__(self) -> None:
        if self.n_rft < 1:
            raise ValueError(f"rft.sampling.n_rft={self.n_rft}: must be >= 1 (paper: 3)")
        if self.max_kept_per_item is not None and self.max_kept_per_item < 1:
            raise ValueError(f"rft.sampling.max_kept_per_item={self.max_kept_per_item}: must be >= 1 or null")
        if self.template not in TEMPLATES:
            raise ValueError(f"rft.sampling.template={self.template!r}: use one of {list(TEMPLATES)}")
        if self.temperature < 0:
            fail("rft.sampling.temperature", self.temperature, "must be >= 0")
        positive("rft.sampling", self, ("max_new_tokens",))


@dataclass(frozen=True)
class RFTTrainConfig:
    """Hyper-parameters of one SFT run (defaults tuned for the embedded world's tiny model on 2 CPU cores)."""

    learning_rate: float = field(default=3e-3, metadata={"help": "peak AdamW learning rate (paper 27B: 5e-6)"})
    max_steps: int = field(
        default=800,
        metadata={
            "help": "optimizer steps; -1 = use num_train_epochs. 500 was on the edge (seed 2 had not learnt facts "
            "yet: 50%); 800 converged on seeds 0-2"
        },
    )
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs when max_steps is -1"})
    batch_size: int = field(
        default=64,
        metadata={"help": "sequences per micro-step over all processes (launcher: torchrun splits them evenly)"},
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-batches per optimizer step"})
    max_length: int = field(default=96, metadata={"help": "truncate prompt+completion to this many tokens"})
    warmup_ratio: float = field(default=0.03, metadata={"help": "share of steps with linear warm-up, in [0, 1)"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": f"one of {SCHEDULERS}"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    max_grad_norm: float = field(default=1.0, metadata={"help": "gradient clipping norm"})
    seed: int | None = seed_field("the data order and dropout")
    num_threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    logging_steps: int = field(default=50, metadata={"help": "log the loss every this many steps"})
    report_to: str = field(default="none", metadata={"help": "TRL/transformers report_to ('none', 'mlflow', ...)"})
    use_cpu: bool | None = field(default=None, metadata={"help": "force CPU; None = CPU unless CUDA is available"})
    length_groups: int = field(
        default=3,
        metadata={
            "help": "run each batch as up to this many groups of similar length (same gradient, fewer padded "
            "tokens: 1.4x faster steps on the default RFT mix, bench/sft_length_groups.py); 1 = one padded batch"
        },
    )
    launcher: str = launcher_field("batch_size stays the global batch (each rank gets batch_size / processes)")
    nproc_per_node: int = nproc_field()
    nnodes: int = nnodes_field()
    rdzv_endpoint: str | None = rdzv_field()
    accelerate_config: str | None = accelerate_field("configs/accelerate/: DDP, FSDP2, DeepSpeed ZeRO-3; GPUs")

    def __post_init__(self) -> None:
        check_launch("rft.train", self, {"rft.train.batch_size": (self.batch_size, "batch_size")})
        if not self.learning_rate > 0:
            raise ValueError(f"rft.train.learning_rate={self.learning_rate}: must be > 0, e.g. 3e-3")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"rft.train.max_steps={self.max_steps}: must be >= 1, or -1 to use epochs")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            raise ValueError(f"rft.train.num_train_epochs={self.num_train_epochs}: must be > 0")
        positive(
            "rft.train",
            self,
            (
                "batch_size",
                "gradient_accumulation_steps",
                "max_length",
                "num_threads",
                "logging_steps",
                "length_groups",
            ),
        )
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"rft.train.warmup_ratio={self.warmup_ratio}: must be in [0, 1)")
        at_least("rft.train", self, ("weight_decay",))
        at_least("rft.train", self, ("max_grad_norm",), strict=True)
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ValueError(f"rft.train.lr_scheduler_type={self.lr_scheduler_type!r}: must be one of {SCHEDULERS}")


@dataclass(frozen=True)
class RFTConfig:
    """Rejective sampling + rejective fine-tuning (SPEC §3)."""

    sampling: RFTSamplingConfig = field(default_factory=RFTSamplingConfig)
    train: RFTTrainConfig = field(default_factory=RFTTrainConfig)
    general_ratio: float = field(
        default=0.5,
        metadata={
            "help": "general-instruction examples per accepted trajectory in the RFT mix (paper: ~5.8); > 0 with a "
            "data folder needs its general.jsonl"
        },
    )
    sft_unfiltered: bool = field(
        default=True,
        metadata={
            "help": "also train 'SFT on unfiltered teacher samples' (ours, not the paper's ablation): the same number "
            "of un-hinted teacher samples drawn regardless of correctness, same budget (model sft_unfiltered)"
        },
    )
    ablations: tuple[str, ...] = field(
        default=(),
        metadata={
            "help": f"the paper's RFT ablations (Table 4) to train and evaluate beside RFT, any of {sorted(ABLATIONS)} "
            "(no_hinted / no_nonhinted: w/o hinted / non-hinted sampling, no_general: w/o general-instruction data, "
            "no_principles: the critique without its principles line, general_only: the paper's 'RFT w/o "
            "rejective sampling' = general-instruction data only); each is one more RFT-sized SFT + its evaluation "
            "(model rft_{name}). Off by default: each costs about 3 min of the 2-core run"
        },
    )

    def __post_init__(self) -> None:
        if self.general_ratio < 0:
            fail("rft.general_ratio", self.general_ratio, "must be >= 0")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown or len(set(self.ablations)) != len(self.ablations):
            fail("rft.ablations", list(self.ablations), f"use distinct names from {sorted(ABLATIONS)}")
