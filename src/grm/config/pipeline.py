"""The root ``PipelineConfig``: every section, the run's seed resolved into the stage seeds, and the rules across
sections that need nothing but the config.

The rules that need other modules (a registered benchmark, the metric names the evaluation produces, the data
folder's files) are the plan step's: ``grm.plan.resolve_config`` runs them right after loading, before any compute.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from grm.ablations import model_name as ablation_model
from grm.config.data import DataConfig, WorldConfig
from grm.config.eval import EvalConfig
from grm.config.meta_rm import MetaRMConfig
from grm.config.mlops import RegistryConfig, RuntimeConfig, TrackingConfig
from grm.config.model import ModelConfig, SamplingConfig
from grm.config.rft import RFTConfig
from grm.config.rl import RLConfig

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


@dataclass(frozen=True)
class PipelineConfig:
    """Every section of the SPCT pipeline; building it resolves the stage seeds and checks cross-section rules.

    Resolution happens once: ``dataclasses.replace(cfg, seed=5)`` keeps the stage seeds already resolved from the
    old seed; build a new config (``load_config`` with overrides) to re-derive them. ``registry.gate_metric: null``
    stays null here: the plan step (``grm.plan.resolve_config``) derives it from the metric names.
    """

    name: str = field(default="default", metadata={"help": "config name, logged as a tag"})
    seed: int = field(default=0, metadata={"help": "the run's seed: every stage seed left null takes this value"})
    data: DataConfig = field(default_factory=DataConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    rft: RFTConfig = field(default_factory=RFTConfig)
    rl: RLConfig = field(default_factory=RLConfig)
    meta_rm: MetaRMConfig = field(default_factory=MetaRMConfig)
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
        problems = cross_section_problems(self)
        if problems:
            raise ValueError("\n".join(problems))


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


# ---- what the enabled stages run -------------------------------------------------------------------------------
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


# ---- cross-section rules ---------------------------------------------------------------------------------------
def cross_section_problems(cfg: PipelineConfig) -> list[str]:
    """Every rule across sections that needs only the config, as messages naming the keys, values and fix.

    Rules: the three prompt templates agree (the GRM is trained on the format it is evaluated on); the world
    teacher reads compact prompts; the embedded world's largest item fits ``data.max_responses`` and its split sizes
    reach ``data.min_items``; the embedded model's context holds the generation budgets.
    """
    return [*_template_problems(cfg), *_world_problems(cfg), *_context_problems(cfg)]


def _template_problems(cfg: PipelineConfig) -> list[str]:
    problems = []
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
    return problems


def _world_problems(cfg: PipelineConfig) -> list[str]:
    if cfg.data.source != "world":
        return []
    problems = []
    if cfg.world.max_n > cfg.data.max_responses:
        problems.append(
            f"world.n_probs={list(cfg.world.n_probs)} makes items with up to {cfg.world.max_n} responses, but "
            f"data.max_responses={cfg.data.max_responses} would reject them at data.validate; raise "
            f"data.max_responses to {cfg.world.max_n} or set the n_probs of n > {cfg.data.max_responses} to 0"
        )
    for split in ("train", "val", "test"):
        least, made = getattr(cfg.data.min_items, split), getattr(cfg.world, f"n_{split}")
        if made < least:
            problems.append(
                f"world.n_{split}={made} is below data.min_items.{split}={least}: data.validate would refuse "
                f"the split; raise world.n_{split} or lower data.min_items.{split}"
            )
    return problems


def _context_problems(cfg: PipelineConfig) -> list[str]:
    if cfg.model.base != "embedded":
        return []
    ctx = cfg.model.tiny.max_position_embeddings
    budgets = {
        "sampling.max_new_tokens": cfg.sampling.max_new_tokens,
        "rl.max_completion_length": cfg.rl.max_completion_length,
    }
    return [
        f"{key}={value} leaves no room for the prompt in the embedded model's context "
        f"(model.tiny.max_position_embeddings={ctx}); lower {key} or raise max_position_embeddings"
        for key, value in budgets.items()
        if value >= ctx
    ]
