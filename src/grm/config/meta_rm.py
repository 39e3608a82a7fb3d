"""The ``meta_rm`` section (the meta RM that guides voting) and its ``meta_rm.train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from grm.config.fields import (
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


@dataclass(frozen=True)
class MetaRMTrainConfig:
    """Meta-RM training. Paper: lr 1e-5, batch 512, same base family as the GRM."""

    backbone: str = field(
        default="grm",
        metadata={
            "help": "'grm' initialises from the GRM checkpoint it guides, 'base' from the pretrained base model "
            "(model.base; the paper trains its meta RM from a base model), or any HF model dir (its tokenizer must "
            "read the GRM's text)"
        },
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate (paper: 1e-5 at 27B)"})
    steps: int = field(default=200, metadata={"help": "optimizer steps"})
    batch_size: int = field(default=32, metadata={"help": "examples per step (paper: 512)"})
    max_length: int = field(
        default=192,
        metadata={
            "help": "tokens per meta-RM input (left-truncated: the judgement is at the end); a 3-response world "
            "input is ~150 tokens (128 cut the query off)"
        },
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    balance: bool = field(default=True, metadata={"help": "weight BCE so both labels count equally"})
    objective: Literal["pointwise", "pairwise"] = field(
        default="pointwise",
        metadata={
            "help": "'pointwise': BCE on each judgement's Eq. 10 label (paper); 'pairwise': Bradley-Terry on a correct "
            "and a wrong judgement of the same item (batch_size // 2 pairs per step; items with one label give no "
            "pair), the only comparison MetaRM@k makes (docs/meta-rm.md)"
        },
    )
    select_every: int = field(
        default=50,
        metadata={
            "help": "every N steps (and at the end) measure the held-out within-item AUC and keep the best "
            "checkpoint: the ranking of one item's samples is all MetaRM@k uses; 0 keeps the last step"
        },
    )
    val_fraction: float = field(default=0.1, metadata={"help": "held-out share for the AUC report"})
    seed: int | None = seed_field("the meta RM's init, data split and batches")
    launcher: str = launcher_field(
        "batch_size stays the global batch: every rank draws the same seeded indices and trains on its "
        "1/processes block of them under torch DDP (averaged gradients); rank 0 saves and scores the held-out AUC"
    )
    nproc_per_node: int = nproc_field()
    nnodes: int = nnodes_field()
    rdzv_endpoint: str | None = rdzv_field()
    accelerate_config: str | None = accelerate_field(
        "DDP only, e.g. configs/accelerate/ddp.yaml: the meta RM is a hand-written loop under torch DDP, so an "
        "FSDP or DeepSpeed config is refused when the ranks start; GPUs"
    )

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"meta_rm.train.steps={self.steps}, meta_rm.train.batch_size={self.batch_size}: both must be >= 1"
            )
        positive("meta_rm.train", self, ("max_length",))
        if self.objective not in ("pointwise", "pairwise"):
            fail("meta_rm.train.objective", self.objective, "use 'pointwise' (paper) or 'pairwise'")
        if self.select_every < 0:
            fail("meta_rm.train.select_every", self.select_every, "must be >= 0 (0: keep the last step)")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"meta_rm.train.val_fraction={self.val_fraction}: must be in [0, 1)")
        at_least("meta_rm.train", self, ("learning_rate",), strict=True)
        at_least("meta_rm.train", self, ("weight_decay",))
        check_launch("meta_rm.train", self, {"meta_rm.train.batch_size": (self.batch_size, "batch_size")})


@dataclass(frozen=True)
class MetaRMConfig:
    """Meta RM data and training (SPEC §6)."""

    train: MetaRMTrainConfig = field(default_factory=MetaRMTrainConfig)
    grm_samples: int = field(
        default=8,
        metadata={
            "help": "samples per train item drawn from the trained GRM for meta-RM data (12,000 beside the 12,000 "
            "teacher samples by default): its mistakes are what MetaRM@k must spot"
        },
    )
    grm_items: int = field(
        default=1500, metadata={"help": "items (of meta_rm.grm_split) whose GRM samples join the meta-RM data"}
    )
    grm_split: str = field(
        default="train",
        metadata={
            "help": "where the guided GRM's samples are drawn: 'train' (items it was trained on, where it knows more "
            "than at test time) or 'val' (held-out items RFT and RL never saw, as test items are)"
        },
    )
    teacher: bool = field(
        default=True, metadata={"help": "include the RFT-stage non-hinted teacher samples (the paper does)"}
    )
    keep_parse_failures: bool = field(
        default=False,
        metadata={
            "help": "train on unparsable samples as label 0; off: they never take a slot at inference, so the "
            "meta RM is never asked about them"
        },
    )
    temperature: float = field(
        default=0.5, metadata={"help": "temperature of those GRM samples (the voting temperature)"}
    )
    mixed_only: bool = field(
        default=True,
        metadata={
            "help": "keep only items whose samples have both labels (some judgements right, some wrong): the meta RM "
            "must then tell samples of one item apart, which is what MetaRM@k needs, instead of learning which items "
            "are hard (measured with bench/meta_study.py: within-item AUC arith 0.46 -> 0.56, MetaRM@8 - Voting@8 "
            "-4.4 -> -0.9)"
        },
    )
    enabled: bool = field(default=True, metadata={"help": "train the meta RM and report MetaRM@k"})
    seed: int | None = seed_field("the meta-RM data (which items, which GRM samples)")

    def __post_init__(self) -> None:
        for name in ("grm_samples", "grm_items"):
            if getattr(self, name) < 0:
                fail(f"meta_rm.{name}", getattr(self, name), "must be >= 0 (0: teacher samples only)")
        if self.temperature < 0:
            fail("meta_rm.temperature", self.temperature, "must be >= 0")
        if self.grm_split not in ("train", "val"):
            fail("meta_rm.grm_split", self.grm_split, "use 'train' or 'val'")
