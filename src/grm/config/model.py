"""The ``model`` (``model.tiny``) and ``sampling`` sections."""

from __future__ import annotations

from dataclasses import dataclass, field

from grm.config.fields import at_least, fail, positive, seed_field
from grm.method.prompts import TEMPLATES


@dataclass(frozen=True)
class ModelTinyConfig:
    """Shape of the tiny Llama student (0.9 M parameters with the ~1.4 k-token world vocabulary)."""

    hidden_size: int = field(default=128, metadata={"help": "model width"})
    num_layers: int = field(default=4, metadata={"help": "transformer blocks"})
    num_heads: int = field(default=4, metadata={"help": "attention heads (hidden_size must be divisible by it)"})
    num_kv_heads: int | None = field(default=None, metadata={"help": "key/value heads (None = num_heads)"})
    intermediate_size: int = field(default=384, metadata={"help": "MLP width"})
    max_position_embeddings: int = field(
        default=128,
        metadata={
            "help": "nominal context: the GRM's sequences fit (rft.train.max_length=96); RoPE has no hard limit, so "
            "the meta RM's longer inputs (meta_rm.train.max_length=192) still run"
        },
    )
    tie_word_embeddings: bool = field(default=True, metadata={"help": "share input and output embeddings"})
    rope_theta: float = field(default=10000.0, metadata={"help": "RoPE base"})

    def __post_init__(self) -> None:
        positive("model.tiny", self, ("hidden_size", "num_layers", "num_heads", "intermediate_size"))
        positive("model.tiny", self, ("max_position_embeddings",))
        at_least("model.tiny", self, ("rope_theta",), strict=True)
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"model.tiny.hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}; "
                "pick e.g. hidden_size=128, num_heads=4"
            )
        kv = self.num_kv_heads or self.num_heads
        if self.num_heads % kv:
            raise ValueError(f"model.tiny.num_kv_heads={kv}: must divide num_heads={self.num_heads}")
        if self.max_position_embeddings < 64:
            raise ValueError(
                f"model.tiny.max_position_embeddings={self.max_position_embeddings}: too short for a prompt "
                "plus a critique; use >= 128"
            )


@dataclass(frozen=True)
class ModelConfig:
    """The base model the GRM is trained from, and the teacher that rejective sampling draws from."""

    base: str = field(
        default="embedded",
        metadata={
            "help": "'embedded' builds the tiny world model locally; otherwise a local HF model dir (safetensors)"
        },
    )
    tiny: ModelTinyConfig = field(default_factory=ModelTinyConfig)
    seed: int | None = seed_field("the embedded base model's random init")
    teacher: str = field(
        default="world-teacher",
        metadata={"help": "teacher sampler: world-teacher[:ERROR_RATE], a model dir, an http(s) URL, or vllm:PATH"},
    )
    teacher_model_name: str | None = field(
        default=None, metadata={"help": "served model name for an http teacher (None: the server's first model)"}
    )


# ---- sampling --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplingConfig:
    """How the GRM generates judgements (any backend: model dir, http URL, vllm:PATH)."""

    template: str = field(
        default="compact",
        metadata={
            "help": f"prompt template, one of {TEMPLATES}: 'compact' is the world's short format (the tiny student "
            "and the world teacher), 'deepseek-grm' the paper's (the released checkpoints need it)"
        },
    )
    chat_template: bool = field(
        default=False,
        metadata={"help": "wrap prompts in the tokenizer's chat template (instruct models); base models: false"},
    )
    max_new_tokens: int = field(
        default=50,
        metadata={"help": "generation budget per judgement (the longest world critique is 45 tokens + EOS)"},
    )
    batch_size: int = field(default=256, metadata={"help": "prompts per forward batch (HF backend)"})
    num_threads: int = field(
        default=2, metadata={"help": "torch CPU threads (HF backend): the 2-core default machine"}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "allow model repos to run their own code; off unless you trust the source"}
    )
    shard_size: int = field(
        default=256,
        metadata={
            "help": "distinct prompts per shard, the unit one worker samples (runtime.executor local and ray alike; "
            "= batch_size keeps one HF batch per shard): each shard has its own batches and seed, so it changes a "
            "model's samples (keyed), never the world teacher's (seeded per prompt)"
        },
    )

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            fail("sampling.template", self.template, f"use one of {list(TEMPLATES)}")
        positive("sampling", self, ("max_new_tokens", "batch_size", "num_threads", "shard_size"))
