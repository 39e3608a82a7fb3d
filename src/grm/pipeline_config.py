"""Every setting of the SPCT pipeline and its default, in one file: one frozen dataclass per config section.

The dataclass defaults ARE the default run (``make run``: the embedded world end to end on 2 CPU cores in about
15 minutes); ``configs/default.yaml`` only names it, and the other recipes (``tiny.yaml``, ``gpu-recipe.yaml``)
list only what differs. Each field's ``help`` says what it does and why it has that value; ``grm config`` prints
the resolved config with these helps. Values come from YAML files + dotted overrides (``grm.config.load_config``).

Two layers of rules, both checked when the config is built (so at load, before any compute):

* a section's ``__post_init__`` checks its own fields (``rl.num_generations >= 2``);
* ``PipelineConfig.__post_init__`` resolves the derived values and checks the rules across sections
  (``validate_pipeline``): every stage seed left ``null`` becomes the run's ``seed`` (``stage_seeds`` lists them),
  ``registry.gate_metric: null`` becomes the final model's Voting@k_max accuracy on the held-out split, and an
  explicit gate metric must be one the enabled stages produce (``expected_metrics``).

A section built on its own (a test, a script) keeps ``seed=None``; the core reads it through ``seed_or_zero``.
File checks (the data folder's files) need the project folder: ``check_data_files``.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from grm.ablations import ABLATIONS
from grm.ablations import model_name as ablation_model
from grm.files import project_path
from grm.prompts import TEMPLATES
from grm.verdicts import TIE_POLICIES

FAMILIES = ("facts", "arith", "repeat")  # the embedded world's task families (grm.world.generator)
LAUNCHERS = ("inprocess", "torchrun")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")
SPLIT_FILES = ("train.jsonl", "val.jsonl", "test.jsonl")
GENERAL_FILE = "general.jsonl"
# dotted keys of every seed a stage draws from; None (unset) resolves to the run's ``seed``
SEED_KEYS = (
    "world.seed",
    "model.seed",
    "rft.sampling.seed",
    "rft.train.seed",
    "rl.seed",
    "meta_rm.seed",
    "meta_rm.train.seed",
    "eval.seed",
)


def _fail(key: str, value: object, fix: str) -> None:
    raise ValueError(f"{key}={value!r}: {fix}")


def _positive(section: str, obj: Any, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            _fail(f"{section}.{name}", value, "must be an integer >= 1")


def _at_least(section: str, obj: Any, names: Iterable[str], low: float = 0.0, strict: bool = False) -> None:
    """Each named number must be ``> low`` (``strict``) or ``>= low``; NaN fails both."""
    for name in names:
        value = getattr(obj, name)
        if not (value > low if strict else value >= low):
            _fail(f"{section}.{name}", value, f"must be {'>' if strict else '>='} {low:g}")


def seed_or_zero(seed: int | None) -> int:
    """A section's seed as the core uses it: ``None`` (a section built outside ``PipelineConfig``) means 0."""
    return 0 if seed is None else seed


def _seed_field(what: str) -> Any:
    return field(default=None, metadata={"help": f"seed of {what}; null = the run's seed"})


# ---- the launcher fields of rft.train, rl and meta_rm.train (grm.training.launch) ------------------------------
def _launcher_field(split: str) -> Any:
    return field(
        default="inprocess",
        metadata={
            "help": f"one of {LAUNCHERS}: train in the stage's process, or as nproc_per_node * nnodes DDP processes "
            f"(torchrun; gloo on CPU); {split}"
        },
    )


def _nproc_field() -> Any:
    return field(default=2, metadata={"help": "processes per node with launcher: torchrun"})


def _nnodes_field() -> Any:
    return field(default=1, metadata={"help": "nodes with launcher: torchrun (> 1 needs rdzv_endpoint)"})


def _rdzv_field() -> Any:
    return field(default=None, metadata={"help": "HOST:PORT of torchrun's c10d rendezvous for nnodes > 1"})


def _accelerate_field(what: str) -> Any:
    return field(
        default=None,
        metadata={
            "help": f"launcher: torchrun through `accelerate launch --config_file` with this file instead ({what})"
        },
    )


def _check_launch(section: str, cfg: Any, shares: dict[str, tuple[int, str]]) -> None:
    """The launcher rules every launchable section shares (``rft.train``, ``rl``, ``meta_rm.train``).

    Args:
        section: the config key prefix the messages name.
        cfg: the section (fields ``launcher``, ``nproc_per_node``, ``nnodes``, ``rdzv_endpoint``).
        shares: ``{key: (count, what)}``: global counts that every one of the nproc_per_node * nnodes processes
            takes an equal share of, so each must be divisible by that number with launcher: torchrun.
    """
    if cfg.launcher not in LAUNCHERS:
        _fail(f"{section}.launcher", cfg.launcher, f"use one of {list(LAUNCHERS)}")
    _positive(section, cfg, ("nproc_per_node", "nnodes"))
    if cfg.launcher != "torchrun":
        return
    procs = cfg.nproc_per_node * cfg.nnodes
    for key, (count, what) in shares.items():
        if count % procs:
            _fail(key, count, f"{what} = {count} must be divisible by nproc_per_node * nnodes = {procs} "
                  "(it is the global batch: each process takes an equal share)")  # fmt: skip
    if cfg.nnodes > 1 and not cfg.rdzv_endpoint:
        _fail(f"{section}.rdzv_endpoint", cfg.rdzv_endpoint, "nnodes > 1 needs HOST:PORT of the rendezvous")


# ---- data ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SplitMinimums:
    """The fewest items each split must hold (``data.validate`` checks them before anything is published)."""

    train: int = field(default=1, metadata={"help": "fewest train items (>= 1: an empty train split trains nothing)"})
    val: int = field(default=1, metadata={"help": "fewest validation items (0 allows an empty val split)"})
    test: int = field(default=1, metadata={"help": "fewest test items (>= 1: an empty test split evaluates nothing)"})

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            value = getattr(self, name)
            least = 0 if name == "val" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                _fail(f"data.min_items.{name}", value, f"must be an integer >= {least}")


@dataclass(frozen=True)
class DataConfig:
    """Where preference items come from and the limits every dataset is validated against."""

    source: str = field(
        default="world",
        metadata={
            "help": "'world' (the embedded synthetic world), a folder holding train.jsonl/val.jsonl/test.jsonl "
            "(+ general.jsonl when rft.general_ratio or rl.general_coef is > 0), or a landing folder of drops "
            "(subfolders with those splits, data.window picks them; docs/data.md); the held-out split's metrics are "
            "eval/world/... for the world and eval/heldout/... for any folder (never the folder's name, so a new drop "
            "keeps the gate's metric; the folder is the run's tag grm.data.source and its dataset inputs)"
        },
    )
    window: str = field(
        default="all",
        metadata={
            "help": "which drops of a landing folder data.source the run reads (docs/data.md): 'all' (every drop so "
            "far, concatenated in name order), 'last:N' (the N newest) or 'since:YYYY-MM-DD' (drops whose name "
            "starts with a date on or after it); a folder holding train/val/test.jsonl itself is one drop, read whole"
        },
    )
    data_dir: str = field(default="data", metadata={"help": "DVC-tracked folder the prepared datasets are written to"})
    max_responses: int = field(default=4, metadata={"help": "validation: 1 <= n <= max_responses"})
    max_chars: int = field(default=20000, metadata={"help": "validation: longest query/response text allowed"})
    min_items: SplitMinimums = field(
        default_factory=SplitMinimums, metadata={"help": "validation: the fewest items per split (train, val, test)"}
    )

    def __post_init__(self) -> None:
        _positive("data", self, ("max_responses", "max_chars"))
        if not self.source:
            _fail("data.source", self.source, "use 'world' or a folder with train/val/test JSONL files")
        from grm.drops import parse_window

        parse_window(self.window)  # ValueError naming data.window and its forms


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines one embedded world. Same config -> byte-identical items."""

    seed: int | None = _seed_field("the fact table, the query splits and the items")
    n_train: int = field(default=4000, metadata={"help": "number of train items"})
    n_val: int = field(default=200, metadata={"help": "number of validation items"})
    n_test: int = field(
        default=1000,
        metadata={"help": "number of test items (each has n >= 2 unless test_single); 1000 gives +-3 points at 95%"},
    )
    n_entities: int = field(
        default=60, metadata={"help": "countries in the fact table (each has a unique capital and a language)"}
    )
    n_languages: int = field(default=12, metadata={"help": "languages shared between countries"})
    num_min: int = field(default=2, metadata={"help": "smallest addend of the arith family"})
    num_max: int = field(
        default=26,
        metadata={
            "help": "largest addend of the arith family. 2..26 (625 sums, all in the general-instruction data): the "
            "student half-knows the test sums after 800 RFT steps. With 2..20 (361 sums) 800 steps solved seed 0 at "
            "93.9% (no room) and 500 steps left seed 2 at 61.4% (docs/results.md)"
        },
    )
    repeat_max: int = field(default=4, metadata={"help": "largest repeat count of the repeat family (min is 2)"})
    family_mix: tuple[float, float, float] = field(
        default=(0.5, 0.5, 0.0),
        metadata={
            "help": "sampling weights of (facts, arith, repeat); must sum to > 0. arith's test sums are where the "
            "student stays unsure; facts carries the style cues (the rare ones are where RFT is weak and RL gains). "
            "repeat is off: its responses are long (CPU step time grows with the longest sequence)"
        },
    )
    n_probs: tuple[float, float, float, float] = field(
        default=(0.1, 0.55, 0.35, 0.0),
        metadata={"help": "probabilities of n = 1, 2, 3, 4 responses per item (n = 4 off by default: length)"},
    )
    facts_reference: bool = field(
        default=True,
        metadata={
            "help": "facts queries carry a reference note ('capital of Zorvia ? ref Lima'): the judge copies the "
            "answer from the query. False = the answer is world knowledge from the general-instruction mix (test "
            "capitals then appear only as wrong answers in training, and the tiny student learns that token prior "
            "instead of the comparison: below chance in 600 steps)"
        },
    )
    facts_cues: bool = field(
        default=True,
        metadata={
            "help": "facts queries end in a style cue ('capital of Zorvia ? ref Lima , terse') that decides whether "
            "the bare value or 'it is Lima' is best: two common cue words and six rare synonyms the world teacher "
            "misreads (TeacherConfig.cue_misread), a judging skill shared by train and test queries (docs/results.md, 'The embedded world')"
        },
    )
    cue_pair_share: float = field(
        default=0.7,
        metadata={
            "help": "share of cued facts items (n >= 2) that state the reference in both styles, so only the cue "
            "decides the best response; on the others a misread cue changes the scores but not the pick"
        },
    )
    general_cap: int = field(
        default=700, metadata={"help": "most general-instruction examples per family (a seeded subset; 0 = all)"}
    )
    test_single: bool = field(
        default=False,
        metadata={
            "help": "keep n = 1 items in the TEST split (default off: pairwise/listwise accuracy is measured on "
            "n >= 2 items; single responses are trained on with the 0/1 template, but evaluation scores them 1..10 "
            "against a midpoint, which the world's students never see). train/val keep n = 1 items either way"
        },
    )

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"world.{name}={value!r}: must be an integer >= 0; e.g. {name}=1000")
        if self.n_entities < 8:
            raise ValueError(f"world.n_entities={self.n_entities}: need >= 8 countries; raise it")
        if not 4 <= self.n_languages <= self.n_entities:
            raise ValueError(f"world.n_languages={self.n_languages}: must be in [4, n_entities={self.n_entities}]")
        if not 0 <= self.num_min < self.num_max:
            raise ValueError(f"world.num_min={self.num_min}, num_max={self.num_max}: need 0 <= num_min < num_max")
        if self.num_max - self.num_min < 3:
            raise ValueError(f"world.num_max={self.num_max}: the addend range must span >= 4 numbers")
        if not 3 <= self.repeat_max <= 9:
            raise ValueError(f"world.repeat_max={self.repeat_max}: must be in [3, 9]")
        if len(self.family_mix) != len(FAMILIES) or any(w < 0 for w in self.family_mix) or sum(self.family_mix) <= 0:
            raise ValueError(
                f"world.family_mix={self.family_mix!r}: need {len(FAMILIES)} non-negative weights for "
                f"{FAMILIES} with a positive sum, e.g. (0.4, 0.35, 0.25)"
            )
        if len(self.n_probs) != 4 or any(p < 0 for p in self.n_probs) or sum(self.n_probs) <= 0:
            raise ValueError(
                f"world.n_probs={self.n_probs!r}: need 4 non-negative weights for n = 1..4 with a positive "
                "sum, e.g. (0.1, 0.4, 0.25, 0.25)"
            )
        if not 0.0 <= self.cue_pair_share <= 1.0:
            raise ValueError(f"world.cue_pair_share={self.cue_pair_share!r}: must be a probability in [0, 1]")
        if self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("world: n_train + n_val + n_test is 0; ask for at least one item")

    @property
    def max_n(self) -> int:
        """The most responses an item of this world can have."""
        return max(n for n, p in enumerate(self.n_probs, start=1) if p > 0)


# ---- models ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TinyModelConfig:
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
        _positive("model.tiny", self, ("hidden_size", "num_layers", "num_heads", "intermediate_size"))
        _positive("model.tiny", self, ("max_position_embeddings",))
        _at_least("model.tiny", self, ("rope_theta",), strict=True)
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
    tiny: TinyModelConfig = field(default_factory=TinyModelConfig)
    seed: int | None = _seed_field("the embedded base model's random init")
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
            _fail("sampling.template", self.template, f"use one of {list(TEMPLATES)}")
        _positive("sampling", self, ("max_new_tokens", "batch_size", "num_threads", "shard_size"))


# ---- RFT -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RejectiveSamplingConfig:
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
    seed: int | None = _seed_field("the teacher's shuffles and samples")

    def __post_init__(self) -> None:
        if self.n_rft < 1:
            raise ValueError(f"rft.sampling.n_rft={self.n_rft}: must be >= 1 (paper: 3)")
        if self.max_kept_per_item is not None and self.max_kept_per_item < 1:
            raise ValueError(f"rft.sampling.max_kept_per_item={self.max_kept_per_item}: must be >= 1 or null")
        if self.template not in TEMPLATES:
            raise ValueError(f"rft.sampling.template={self.template!r}: use one of {list(TEMPLATES)}")
        if self.temperature < 0:
            _fail("rft.sampling.temperature", self.temperature, "must be >= 0")
        _positive("rft.sampling", self, ("max_new_tokens",))


@dataclass(frozen=True)
class SFTStageConfig:
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
    seed: int | None = _seed_field("the data order and dropout")
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
    launcher: str = _launcher_field("batch_size stays the global batch (each rank gets batch_size / processes)")
    nproc_per_node: int = _nproc_field()
    nnodes: int = _nnodes_field()
    rdzv_endpoint: str | None = _rdzv_field()
    accelerate_config: str | None = _accelerate_field("configs/accelerate/: DDP, FSDP2, DeepSpeed ZeRO-3; GPUs")

    def __post_init__(self) -> None:
        _check_launch("rft.train", self, {"rft.train.batch_size": (self.batch_size, "batch_size")})
        if not self.learning_rate > 0:
            raise ValueError(f"rft.train.learning_rate={self.learning_rate}: must be > 0, e.g. 3e-3")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"rft.train.max_steps={self.max_steps}: must be >= 1, or -1 to use epochs")
        if self.max_steps == -1 and not self.num_train_epochs > 0:
            raise ValueError(f"rft.train.num_train_epochs={self.num_train_epochs}: must be > 0")
        _positive(
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
        _at_least("rft.train", self, ("weight_decay",))
        _at_least("rft.train", self, ("max_grad_norm",), strict=True)
        if self.lr_scheduler_type not in SCHEDULERS:
            raise ValueError(f"rft.train.lr_scheduler_type={self.lr_scheduler_type!r}: must be one of {SCHEDULERS}")


@dataclass(frozen=True)
class RFTConfig:
    """Rejective sampling + rejective fine-tuning (SPEC §3)."""

    sampling: RejectiveSamplingConfig = field(default_factory=RejectiveSamplingConfig)
    train: SFTStageConfig = field(default_factory=SFTStageConfig)
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
            _fail("rft.general_ratio", self.general_ratio, "must be >= 0")
        unknown = [a for a in self.ablations if a not in ABLATIONS]
        if unknown or len(set(self.ablations)) != len(self.ablations):
            _fail("rft.ablations", list(self.ablations), f"use distinct names from {sorted(ABLATIONS)}")


# ---- RL --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GRPOStageConfig:
    """GRPO hyper-parameters (defaults: the tiny world model). Paper (27B): G=4, beta=0.08, lr 4e-7, 900 steps."""

    learning_rate: float = field(default=1e-4, metadata={"help": "AdamW learning rate (paper 27B: 4e-7)"})
    beta: float = field(
        default=0.04, metadata={"help": "KL coefficient against the RFT reference (paper 27B: 0.08; 16B: 0.002)"}
    )
    num_generations: int = field(default=4, metadata={"help": "group size G (paper: 4)"})
    prompts_per_step: int = field(
        default=16, metadata={"help": "prompts per optimizer step; the batch is prompts_per_step * G rollouts"}
    )
    max_steps: int = field(
        default=150, metadata={"help": "optimizer steps (paper: 900); 0 turns rl.train off (the GRM is then RFT)"}
    )
    max_completion_length: int = field(default=50, metadata={"help": "rollout length budget in tokens"})
    temperature: float = field(
        default=0.8, metadata={"help": "rollout temperature [choice: the paper leaves it open]"}
    )
    epsilon: float = field(default=0.2, metadata={"help": "PPO-style clip range"})
    loss_type: str = field(
        default="grpo", metadata={"help": "TRL loss_type; 'grpo' is the original sequence-normalised loss"}
    )
    too_easy_samples: int = field(
        default=3,
        metadata={
            "help": "drop items the start model gets right this many times out of this many (paper: 3/3); 0 disables"
        },
    )
    too_easy_temperature: float = field(default=1.0, metadata={"help": "temperature of the too-easy probe"})
    max_items: int | None = field(
        default=1000,
        metadata={
            "help": "probe and train on a seeded subset of this many train items (None: all); GRPO sees at most "
            "prompts_per_step * max_steps prompts (16 x 150 = 2,400; ~500 items stay after the too-easy probe), "
            "so probing more costs time for nothing"
        },
    )
    general_coef: float = field(
        default=1.0,
        metadata={
            "help": "weight of a next-token loss on general-instruction data added to each GRPO step (PPO-ptx). "
            "Without it GRPO erases the test sums the critiques rely on (seed 1: general accuracy on test sums "
            "56% -> 33%, test judging -3.5 points; README). 0 = plain GRPO as in the paper; > 0 with a data folder "
            "needs its general.jsonl"
        },
    )
    general_batch_size: int = field(default=16, metadata={"help": "general-instruction examples per GRPO step"})
    template: str = field(default="compact", metadata={"help": "prompt template (= sampling.template)"})
    warmup_ratio: float = field(default=0.0, metadata={"help": "linear warmup share of steps"})
    logging_steps: int = field(
        default=5, metadata={"help": "log every N steps (reward mean, KL, length, zero-variance share)"}
    )
    seed: int | None = _seed_field("the item subset, the rollouts and the general batches")
    report_to: str = field(
        default="none", metadata={"help": "TRL/transformers report_to ('mlflow' inside a tracked stage)"}
    )
    launcher: str = _launcher_field(
        "the step stays global: prompts_per_step * num_generations rollouts, each rank generating and scoring "
        "1/processes of them (TRL gathers the rewards before the group advantages), and general_batch_size "
        "examples, each rank taking its 1/processes slice of the same seeded batch"
    )
    nproc_per_node: int = _nproc_field()
    nnodes: int = _nnodes_field()
    rdzv_endpoint: str | None = _rdzv_field()
    accelerate_config: str | None = _accelerate_field("configs/accelerate/: DDP, FSDP2, DeepSpeed ZeRO-3; GPUs")

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError(f"rl.num_generations={self.num_generations}: GRPO needs groups of >= 2 (paper: 4)")
        if not self.beta >= 0:
            raise ValueError(f"rl.beta={self.beta}: must be >= 0")
        _at_least("rl", self, ("learning_rate", "epsilon"), strict=True)
        _at_least("rl", self, ("too_easy_temperature",))
        if not 0 <= self.warmup_ratio < 1:
            _fail("rl.warmup_ratio", self.warmup_ratio, "must be in [0, 1)")
        if self.max_steps < 0:
            _fail("rl.max_steps", self.max_steps, "must be >= 1, or 0 to skip rl.train")
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"rl.max_items={self.max_items}: must be >= 1, or null for every train item")
        if self.general_coef < 0:
            raise ValueError(f"rl.general_coef={self.general_coef}: must be >= 0 (0 turns the general loss off)")
        _positive("rl", self, ("prompts_per_step", "max_completion_length", "general_batch_size", "logging_steps"))
        if self.too_easy_samples < 0:
            _fail("rl.too_easy_samples", self.too_easy_samples, "must be >= 0 (0 disables the too-easy probe)")
        if not self.temperature > 0:
            _fail("rl.temperature", self.temperature, "must be > 0: greedy rollouts make every group's reward equal")
        if self.template not in TEMPLATES:
            raise ValueError(f"rl.template={self.template!r}: use one of {list(TEMPLATES)}")
        shares = {"rl.prompts_per_step": (self.prompts_per_step * self.num_generations, "prompts_per_step * "
                                          "num_generations (rollouts per step)")}  # fmt: skip
        if self.general_coef > 0:
            shares["rl.general_batch_size"] = (self.general_batch_size, "general_batch_size")
        _check_launch("rl", self, shares)

    @property
    def enabled(self) -> bool:
        return self.max_steps >= 1


# ---- meta RM ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MetaRMConfig:
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
    seed: int | None = _seed_field("the meta RM's init, data split and batches")
    launcher: str = _launcher_field(
        "batch_size stays the global batch: every rank draws the same seeded indices and trains on its "
        "1/processes block of them under torch DDP (averaged gradients); rank 0 saves and scores the held-out AUC"
    )
    nproc_per_node: int = _nproc_field()
    nnodes: int = _nnodes_field()
    rdzv_endpoint: str | None = _rdzv_field()
    accelerate_config: str | None = _accelerate_field(
        "DDP only, e.g. configs/accelerate/ddp.yaml: the meta RM is a hand-written loop under torch DDP, so an "
        "FSDP or DeepSpeed config is refused when the ranks start; GPUs"
    )

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError(
                f"meta_rm.train.steps={self.steps}, meta_rm.train.batch_size={self.batch_size}: both must be >= 1"
            )
        _positive("meta_rm.train", self, ("max_length",))
        if self.objective not in ("pointwise", "pairwise"):
            _fail("meta_rm.train.objective", self.objective, "use 'pointwise' (paper) or 'pairwise'")
        if self.select_every < 0:
            _fail("meta_rm.train.select_every", self.select_every, "must be >= 0 (0: keep the last step)")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"meta_rm.train.val_fraction={self.val_fraction}: must be in [0, 1)")
        _at_least("meta_rm.train", self, ("learning_rate",), strict=True)
        _at_least("meta_rm.train", self, ("weight_decay",))
        _check_launch("meta_rm.train", self, {"meta_rm.train.batch_size": (self.batch_size, "batch_size")})


@dataclass(frozen=True)
class MetaStageConfig:
    """Meta RM data and training (SPEC §6)."""

    train: MetaRMConfig = field(default_factory=MetaRMConfig)
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
    seed: int | None = _seed_field("the meta-RM data (which items, which GRM samples)")

    def __post_init__(self) -> None:
        for name in ("grm_samples", "grm_items"):
            if getattr(self, name) < 0:
                _fail(f"meta_rm.{name}", getattr(self, name), "must be >= 0 (0: teacher samples only)")
        if self.temperature < 0:
            _fail("meta_rm.temperature", self.temperature, "must be >= 0")
        if self.grm_split not in ("train", "val"):
            _fail("meta_rm.grm_split", self.grm_split, "use 'train' or 'val'")


# ---- evaluation, tracking, registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol: greedy, Voting@k and MetaRM@k read from one set of k_max samples per item."""

    ks: tuple[int, ...] = field(
        default=(1, 2, 4, 8),
        metadata={"help": "k values for Voting@k / MetaRM@k; 16 is configurable and doubles the sampling cost"},
    )
    temperature: float = field(default=0.5, metadata={"help": "sampling temperature for voting (paper: 0.5)"})
    k_meta: int | None = field(
        default=None, metadata={"help": "samples the meta RM keeps, <= max(ks); None = k // 2 (paper)"}
    )
    meta_vote: Literal["top", "weighted"] = field(
        default="top",
        metadata={
            "help": "how MetaRM@k uses the meta scores: 'top' keeps the k_meta best-rated samples and votes over them "
            "(paper); 'weighted' lets every parsed sample vote with its scores times its meta score, so a meta RM "
            "that cannot rank an item's samples gives Voting@k back instead of Voting@k_meta (docs/meta-rm.md)"
        },
    )
    meta_min_auc: float | None = field(
        default=None,
        metadata={
            "help": "fall back to plain voting when the meta RM's held-out within-item AUC "
            "(meta_rm/train/val_within_item_auc, stored in its meta_rm.json) is below this (or not recorded): "
            "MetaRM@k is then Voting@k, marked fell_back=1 in every MetaRM@k cell and logged; null never falls back"
        },
    )
    tie_policy: Literal["random", "strict", "half"] = field(
        default="random", metadata={"help": f"top-tie handling, one of {TIE_POLICIES} (paper: random)"}
    )
    seed: int | None = _seed_field("the evaluation's shuffles, samples and tie-breaks")
    hygiene: bool = field(default=True, metadata={"help": "greedy position-flip check (one more greedy pass)"})
    seed_agreement: bool = field(
        default=False,
        metadata={"help": "run-to-run agreement of Voting@k_max with seed + 1 (doubles the sampling cost)"},
    )
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N test items (None: all)"})
    benchmarks: tuple[str, ...] = field(
        default=("rewardbench", "realmistake"),
        metadata={
            "help": "registered real benchmarks (grm eval names) each trained GRM (rft, rl; MetaRM@k with the meta "
            "RM) is evaluated on besides the held-out split, as stages bench.{benchmark}.{model} with grm eval's "
            "code; metrics eval/{benchmark}/{model}/... (usable as registry.gate_metric). Default: the two of the "
            "paper's four (RewardBench, PPE, RMB, ReaLMistake) shipped in the repository (PPE is hub only; RMB has no "
            "licence to redistribute: list rmb with eval.benchdata at a copy holding it). On the embedded tiny model (128 positions, world vocabulary) the "
            "items are cut to fit the context (counted): a protocol check, not a quality measure. [] turns it off"
        },
    )
    benchmark_limit: int | None = field(
        default=10,
        metadata={
            "help": "items per benchmark, spread over its subsets (None: all). 10: enough for the CPU default to show "
            "the path works (a protocol check); measured on a default-shape model at load ~6 on 2 cores, 20 items "
            "took 1-100 s per benchmark and model (rows x generated tokens), so 10 keeps the added time near a "
            "minute (configs/gpu-recipe.yaml: all)"
        },
    )
    benchdata: str | None = field(
        default=None,
        metadata={
            "help": "folder holding the local benchmark copies (relative to the project folder); null: the copy "
            "shipped in the repository (benchdata/*.tar.gz: rewardbench, realmistake, judgebench, rm-bench, gsm8k; "
            "unpacked once into $GRM_CACHE_DIR or ~/.cache/grm; docs/benchdata.md). Each benchmark's own subfolder "
            "is keyed by content, and a missing one fails at load when eval.benchmarks lists it"
        },
    )

    @property
    def k_max(self) -> int:
        return max(self.ks)

    def __post_init__(self) -> None:
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            _fail("eval.ks", self.ks, "give one or more integers k >= 1, e.g. [1, 2, 4, 8]")
        if self.temperature < 0:
            _fail("eval.temperature", self.temperature, "must be >= 0")
        if self.k_meta is not None and not 1 <= self.k_meta <= self.k_max:
            _fail(
                "eval.k_meta",
                self.k_meta,
                f"must be in [1, max(eval.ks)={self.k_max}] (the meta RM keeps k_meta of the k samples; more than "
                "k_max is plain voting), or null for k // 2",
            )
        if self.meta_vote not in ("top", "weighted"):
            _fail("eval.meta_vote", self.meta_vote, "use 'top' (paper) or 'weighted'")
        if self.meta_min_auc is not None and not 0 <= self.meta_min_auc <= 1:
            _fail("eval.meta_min_auc", self.meta_min_auc, "must be in [0, 1] (an AUC), or null never to fall back")
        for name in ("limit", "benchmark_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                _fail(f"eval.{name}", value, "must be >= 1, or null for every item")


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
            _fail("registry.margin", self.margin, "must be >= 0 (0: any significant improvement promotes)")


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
            "side), each in its own process, splitting the cores (at most one per core; tasks/workers.py). The tiny "
            "default model scales poorly to a second thread, so two stages on one thread each beat the two one "
            "after the other on two (bench/stage_concurrency.py). Thread counts never change a result on the "
            "tested CPUs (tests/integration/test_thread_count.py). 1: one build at a time in the run's process; "
            "runtime.executor ray: always 1"
        },
    )

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            _fail("runtime.executor", self.executor, f"use one of {list(EXECUTORS)}")
        _positive("runtime", self, ("workers", "parallel_stages"))
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            _fail("runtime.max_retries", self.max_retries, "must be an integer >= 0")
        if not self.num_cpus > 0:
            _fail("runtime.num_cpus", self.num_cpus, "must be > 0 (e.g. 1)")
        if self.num_gpus < 0:
            _fail("runtime.num_gpus", self.num_gpus, "must be >= 0")
        if self.ray_address is not None and self.executor != "ray":
            _fail("runtime.ray_address", self.ray_address, "is read only with runtime.executor: ray; set both or none")
        if self.executor == "ray":
            import importlib.util

            if importlib.util.find_spec("ray") is None:
                _fail("runtime.executor", self.executor, "needs Ray: pip install 'grm[ray]' (or executor: local)")


# ---- the whole pipeline ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PipelineConfig:
    """Every section of the SPCT pipeline; building it resolves the derived values and checks cross-section rules.

    Resolution happens once: ``dataclasses.replace(cfg, seed=5)`` keeps the stage seeds and gate metric already
    resolved from the old seed/stages; build a new config (``load_config`` with overrides) to re-derive them.
    """

    name: str = field(default="default", metadata={"help": "config name, logged as a tag"})
    seed: int = field(default=0, metadata={"help": "the run's seed: every stage seed left null takes this value"})
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
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        # resolved section by section: replacing the whole (frozen) config would rerun this method
        for key in SEED_KEYS:
            section, _, rest = key.partition(".")
            if get_path(getattr(self, section), rest) is None:
                object.__setattr__(self, section, replace_path(getattr(self, section), rest, self.seed))
        if self.registry.gate_metric is None:
            object.__setattr__(
                self, "registry", dataclasses.replace(self.registry, gate_metric=default_gate_metric(self))
            )
        validate_pipeline(self)


def get_path(cfg: Any, dotted: str) -> Any:
    """``get_path(cfg, "rft.sampling.seed")``."""
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def replace_path(cfg: Any, dotted: str, value: Any) -> Any:
    """A copy of ``cfg`` with the nested field ``dotted`` set to ``value`` (sections are frozen)."""
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(cfg, **{head: value})
    return dataclasses.replace(cfg, **{head: replace_path(getattr(cfg, head), rest, value)})


def stage_seeds(cfg: PipelineConfig) -> dict[str, int]:
    """Every resolved seed by dotted key (``seed`` first), for logging: ``{"seed": 0, "world.seed": 0, ...}``."""
    return {"seed": cfg.seed} | {key: get_path(cfg, key) for key in SEED_KEYS}


# ---- what the enabled stages produce ---------------------------------------------------------------------------
def heldout_name(cfg: PipelineConfig) -> str:
    """The benchmark segment of the held-out split's metric names: ``world``, or ``heldout`` for a data folder."""
    from grm.evaluation import heldout_benchmark

    return heldout_benchmark(cfg.data.source)


def evaluated_models(cfg: PipelineConfig) -> tuple[str, ...]:
    """The models the pipeline evaluates on the held-out split, in flow order (``flows/pipeline.py``)."""
    models = ["teacher"]
    if cfg.rft.sft_unfiltered:
        models.append("sft_unfiltered")
    models += [ablation_model(a) for a in cfg.rft.ablations]
    models.append("rft")
    if cfg.rl.enabled:
        models.append("rl")
    return tuple(models)


def final_model(cfg: PipelineConfig) -> str:
    """The model the registry gate registers: ``rl`` when rl.train runs, else ``rft``."""
    return "rl" if cfg.rl.enabled else "rft"


def default_gate_metric(cfg: PipelineConfig) -> str:
    """The final model's Voting@k_max accuracy on the held-out split."""
    from grm.evaluation import VOTING, metric_name

    return f"eval/{heldout_name(cfg)}/{metric_name(final_model(cfg))}/{VOTING}_k{cfg.eval.k_max}/accuracy"


class _ProbeSampler:
    """A sampler that answers every prompt with the same unparsable text (metric names do not depend on it)."""

    def generate(self, prompts: Any, n: int, temperature: float, max_new_tokens: int, seed: int) -> list[list[str]]:
        return [["-"] * n for _ in prompts]


def expected_metrics(cfg: PipelineConfig) -> set[str]:
    """The exact metric names the held-out evaluations of the enabled stages log.

    Built by the evaluation code itself: ``grm.evaluation.evaluate`` runs on one two-response probe item with a
    stub sampler (milliseconds), once per evaluated model, with the run's ks, methods, hygiene and seed-agreement
    settings, and ``EvalReport.metrics`` names the results. Benchmarks of ``eval.benchmarks`` are not included
    (their metrics depend on the benchmark's subsets): ``gate_metric_problem`` accepts their prefixes.
    """
    return set(
        _probe_metrics(
            evaluated_models(cfg), heldout_name(cfg), tuple(cfg.eval.ks), cfg.meta_rm.enabled, cfg.eval.k_meta,
            cfg.eval.temperature, cfg.sampling.template, cfg.eval.tie_policy, cfg.eval.hygiene, cfg.eval.seed_agreement,
        )
    )  # fmt: skip


@functools.lru_cache(maxsize=256)
def _probe_metrics(
    models: tuple[str, ...],
    benchmark: str,
    ks: tuple[int, ...],
    meta: bool,
    k_meta: int | None,
    temperature: float,
    template: str,
    tie_policy: str,
    hygiene: bool,
    seed_agreement: bool,
) -> frozenset[str]:
    """``expected_metrics`` of one combination of the settings metric names depend on (memoised: every config
    build checks its gate metric, and the probe evaluation costs ~20 ms)."""
    from grm.evaluation import METARM, VOTING, evaluate
    from grm.schemas import Item

    probe = [Item(id="probe", query="q", responses=("a", "b"), best=0)]
    methods = (VOTING, METARM) if meta else (VOTING,)
    names: set[str] = set()
    for model in models:
        report = evaluate(
            probe,
            _ProbeSampler(),  # type: ignore[arg-type]
            benchmark=benchmark,
            model_name=model,
            ks=ks,
            methods=methods,
            meta_scorer=(lambda texts: [0.5] * len(texts)) if meta else None,
            k_meta=k_meta,
            temperature=temperature,
            max_new_tokens=1,
            seed=0,
            template=template,
            tie_policy=tie_policy,
            hygiene=hygiene,
            seed_agreement=seed_agreement,
        )
        names |= set(report.metrics())
    return frozenset(names)


def benchmark_metric_prefixes(cfg: PipelineConfig) -> set[str]:
    """``eval/{benchmark}/{model}/{cell}/`` for every ``eval.benchmarks`` entry and trained model (rft, rl).

    The cells are those the held-out evaluation of the same model produces (``expected_metrics``: greedy, the
    position-swap hygiene cell, Voting@k, MetaRM@k): the bench stages run the same ``evaluate`` with the same
    settings; only the metrics inside a cell depend on the benchmark's scorer.
    """
    from grm.evaluation import metric_name

    models = [m for m in evaluated_models(cfg) if m in ("rft", "rl")]
    cells = {name.split("/")[3] for name in expected_metrics(cfg) if name.split("/")[2] in models}
    return {f"eval/{metric_name(b)}/{m}/{c}/" for b in cfg.eval.benchmarks for m in models for c in cells}


def _why_missing(cfg: PipelineConfig, metric: str) -> str:
    from grm.evaluation import METARM

    parts = metric.split("/")
    notes = []
    if len(parts) >= 3 and parts[0] == "eval":
        bench, model = parts[1], parts[2]
        if bench not in {heldout_name(cfg), *cfg.eval.benchmarks}:
            notes.append(
                f"the held-out split is named {heldout_name(cfg)!r} (data.source={cfg.data.source!r}), not {bench!r}"
            )
        if model == "rl" and not cfg.rl.enabled:
            notes.append(f"rl.max_steps={cfg.rl.max_steps} turns rl.train off, so no rl metrics")
        if model == "sft_unfiltered" and not cfg.rft.sft_unfiltered:
            notes.append("rft.sft_unfiltered=false: no sft_unfiltered metrics")
        ablation = model.removeprefix("rft_")
        if ablation in ABLATIONS and ablation not in cfg.rft.ablations:
            notes.append(f"rft.ablations={list(cfg.rft.ablations)} does not train {ablation!r}")
        if len(parts) >= 4:
            if parts[3].startswith(f"{METARM}_k") and not cfg.meta_rm.enabled:
                notes.append("meta_rm.enabled=false: no metarm_k* cells")
            if parts[3].partition("_k")[2].isdigit() and int(parts[3].partition("_k")[2]) not in cfg.eval.ks:
                notes.append(f"eval.ks={list(cfg.eval.ks)} has no k={parts[3].partition('_k')[2]}")
    return "; ".join(notes)


def gate_metric_problem(cfg: PipelineConfig, metric: str) -> str | None:
    """Why ``metric`` will not be measured in this run (None: it will)."""
    produced = expected_metrics(cfg)
    if metric in produced or any(metric.startswith(p) for p in benchmark_metric_prefixes(cfg)):
        return None
    tail = "/".join(metric.split("/")[3:])
    close = sorted(m for m in produced if tail and m.endswith("/" + tail)) or sorted(
        m for m in produced if m.endswith("/accuracy") and "/voting_k" in m
    )
    why = _why_missing(cfg, metric)
    return (
        f"registry.gate_metric={metric!r} is not a metric this run produces"
        + (f" ({why})" if why else "")
        + f". Set registry.gate_metric to one of {close[:8]}, or to null for the default "
        f"{default_gate_metric(cfg)!r} (the final model's Voting@k_max accuracy)"
    )


# ---- cross-section rules ---------------------------------------------------------------------------------------
def validate_pipeline(cfg: PipelineConfig) -> None:
    """Every rule across sections; raises ``ValueError`` naming the keys, their values and the fix.

    Rules: the gate metric is produced by the enabled stages; ``eval.benchmarks`` are registered; the three prompt
    templates agree (the GRM is trained on the format it is evaluated on); the embedded world's largest item fits
    ``data.max_responses`` and its split sizes reach ``data.min_items``; the embedded model's context holds the
    generation budgets.
    """
    from grm.benchmarks import available

    problems = []
    for name in cfg.eval.benchmarks:
        if name not in available("benchmark"):
            problems.append(
                f"eval.benchmarks has {name!r}, which is not a registered benchmark; use names from "
                f"{available('benchmark')} (grm eval --help)"
            )
    templates = {
        "sampling.template": cfg.sampling.template,
        "rft.sampling.template": cfg.rft.sampling.template,
        "rl.template": cfg.rl.template,
    }
    if len(set(templates.values())) > 1:
        shown = ", ".join(f"{k}={v!r}" for k, v in templates.items())
        problems.append(
            f"{shown}: the GRM is trained (rft, rl) and evaluated (sampling) on its prompt format, so they must "
            f"agree; set all three, e.g. --set sampling.template={cfg.sampling.template} --set "
            f"rft.sampling.template={cfg.sampling.template} --set rl.template={cfg.sampling.template}"
        )
    if cfg.model.teacher.split(":")[0] == "world-teacher" and cfg.rft.sampling.template != "compact":
        problems.append(
            f"model.teacher={cfg.model.teacher!r} reads 'compact' prompts only, but rft.sampling.template="
            f"{cfg.rft.sampling.template!r}; use the compact template or a model teacher (a dir, URL or vllm:PATH)"
        )
    if cfg.data.source == "world" and cfg.world.max_n > cfg.data.max_responses:
        problems.append(
            f"world.n_probs={list(cfg.world.n_probs)} makes items with up to {cfg.world.max_n} responses, but "
            f"data.max_responses={cfg.data.max_responses} would reject them at data.validate; raise "
            f"data.max_responses to {cfg.world.max_n} or set the n_probs of n > {cfg.data.max_responses} to 0"
        )
    if cfg.data.source == "world":
        for split in ("train", "val", "test"):
            least, made = getattr(cfg.data.min_items, split), getattr(cfg.world, f"n_{split}")
            if made < least:
                problems.append(
                    f"world.n_{split}={made} is below data.min_items.{split}={least}: data.validate would refuse "
                    f"the split; raise world.n_{split} or lower data.min_items.{split}"
                )
    if cfg.model.base == "embedded":
        ctx = cfg.model.tiny.max_position_embeddings
        budgets = {
            "sampling.max_new_tokens": cfg.sampling.max_new_tokens,
            "rl.max_completion_length": cfg.rl.max_completion_length,
        }
        for key, value in budgets.items():
            if value >= ctx:
                problems.append(
                    f"{key}={value} leaves no room for the prompt in the embedded model's context "
                    f"(model.tiny.max_position_embeddings={ctx}); lower {key} or raise max_position_embeddings"
                )
    if cfg.registry.gate_metric is not None:
        problem = gate_metric_problem(cfg, cfg.registry.gate_metric)
        if problem:
            problems.append(problem)
    if problems:
        raise ValueError("\n".join(problems))


def check_benchdata(cfg: PipelineConfig, project_dir: str | Path = ".") -> None:
    """``eval.benchdata`` (relative to ``project_dir``) holds every benchmark of ``eval.benchmarks``: checked at
    load, so a missing copy fails before training rather than at the benchmark stage after it.

    Raises:
        ConfigError: naming eval.benchdata, the missing folder and the fix.
    """
    if not cfg.eval.benchmarks:
        return
    from grm.benchmarks import bundled, get_benchmark, registry
    from grm.config import ConfigError

    try:
        root = bundled.resolve(cfg.eval.benchdata, project_dir)
    except OSError as exc:  # the shipped archives are missing or cannot be unpacked: the message names the fix
        raise ConfigError(f"eval.benchdata=null (the copy shipped in the repository): {exc}") from exc
    shown = "null (the copy shipped in the repository)" if cfg.eval.benchdata is None else repr(cfg.eval.benchdata)
    problems = []
    for name in cfg.eval.benchmarks:
        if get_benchmark(name).local_shards is None:
            problems.append(f"{name} has no local reader (hub only)")
            continue
        try:
            registry.local_shards(get_benchmark(name), root)
        except (FileNotFoundError, OSError) as exc:
            problems.append(f"{name}: {exc}")
    if problems:
        raise ConfigError(
            f"eval.benchdata={shown} ({root}) lacks what eval.benchmarks={list(cfg.eval.benchmarks)} "
            f"reads: {'; '.join(problems)}. Point eval.benchdata at the benchdata folder, or drop those benchmarks "
            "(--set eval.benchmarks=[] turns the benchmark evaluation off)"
        )


def general_data_needed(cfg: PipelineConfig) -> list[str]:
    """The settings that read general-instruction data (``rft.general_ratio > 0``, ``rl.general_coef > 0``, the
    ``general_only`` ablation)."""
    keys = []
    if cfg.rft.general_ratio > 0:
        keys.append(f"rft.general_ratio={cfg.rft.general_ratio}")
    if cfg.rl.enabled and cfg.rl.general_coef > 0:
        keys.append(f"rl.general_coef={cfg.rl.general_coef}")
    if "general_only" in cfg.rft.ablations:
        keys.append("rft.ablations=[general_only]")
    return keys


def check_data_files(cfg: PipelineConfig, project_dir: str | Path = ".", training: bool = True) -> None:
    """The data folder's files, checked at load (``data.source`` relative to ``project_dir``).

    A folder source needs ``train/val/test.jsonl``, and ``general.jsonl`` when a general-instruction term is on
    (the embedded world brings its own). Missing general data is refused rather than skipped: the defaults mix it
    into RFT and RL because the recipe measurably needs it (README), so training without it is a different recipe
    the user should choose (``rft.general_ratio=0 rl.general_coef=0``), not learn about from a warning after training.

    Args:
        cfg: the resolved config.
        project_dir: the root a relative ``data.source`` is read from.
        training: the flow trains (``spct_pipeline``); evaluation and data-only flows need the splits only.

    Raises:
        ConfigError: naming data.source, the missing files and the fix.
    """
    from grm.config import ConfigError

    if cfg.data.source == "world":
        return
    folder = project_path(project_dir, cfg.data.source)
    from grm.drops import is_landing, select_drops

    landing = is_landing(folder) and any(p.is_dir() for p in folder.iterdir())
    if landing:  # a landing folder of drops: every drop's layout and the window (rows: grm.source_check)
        select_drops(folder, cfg.data.window, project_path(project_dir, cfg.data.data_dir))
    missing = [f for f in SPLIT_FILES if not (folder / f).is_file()] if not landing else []
    if missing:
        raise ConfigError(
            f"data.source={cfg.data.source!r}: {folder} lacks {', '.join(missing)}; point data.source at a folder "
            "with train.jsonl, val.jsonl and test.jsonl (canonical items, docs/data.md) or use data.source=world"
        )
    needed = general_data_needed(cfg) if training else []
    if needed and not (folder / GENERAL_FILE).is_file():
        raise ConfigError(
            f"data.source={cfg.data.source!r}: {', '.join(needed)} mix general-instruction data into training, but "
            f'{folder / GENERAL_FILE} does not exist. Add it (JSONL rows {{"prompt": ..., "completion": ...}}; '
            "the paper mixes ~5.8 general examples per judgement), or train on judgements only with "
            "--set rft.general_ratio=0 --set rl.general_coef=0"
        )
