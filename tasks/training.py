"""Model stages of the SPCT recipe: ``model.base``, ``rft.sample``, ``rft.train``, ``rft.train_unfiltered`` (ours:
SFT on unfiltered teacher samples), ``rft.ablation.{ablation}`` (the paper's, ``rft.ablations``), ``rl.train`` and ``meta_rm.train``.

Each stage is declared once (``tasks.engine.stages.Stage``): a pure ``select_*`` picks the config slice its module-level
``build_*`` reads, ``*_files`` the files it reads; the build runs one ``grm.training.spct`` / ``grm.training.rft`` /
``grm.training`` / ``grm.meta_rm`` function on that slice only. Trainers log into their stage's MLflow run through
``b.tracker.trainer_env(b.run_id)`` (TRL ``report_to="mlflow"``). A stage the config switches off selects
``Skip``; its task returns ``None`` and the flow skips what depends on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm.ablations import ABLATIONS, UNFILTERED
from grm.config import MetaRMConfig, PipelineConfig, SamplingConfig
from grm.files import write_jsonl_atomic
from grm.schemas import read_items
from grm.training import grpo, rft, spct
from grm.training.grpo import RLConfig
from grm.training.meta_rm_train import train_meta_rm
from grm.training.rft import RFTSamplingConfig
from grm.training.sft import RFTTrainConfig, train_sft
from grm.world.generator import WorldConfig
from grm.world.model import ModelTinyConfig
from tasks import validation
from tasks.data import DataLimits, select_limits, split
from tasks.engine.runtime import TASK_OPTIONS, RunContext, run_stage
from tasks.engine.stages import BuildContext, FileInput, Skip, Stage, StageOutput, StageResult, register
from tasks.slices import (
    GeneralSlice,
    TeacherSlice,
    general_examples,
    general_files,
    make_teacher,
    select_general,
    select_teacher,
    teacher_files,
)
from tasks.versioning import DataVersion


def numeric(stats: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a core function's stats dict (for MLflow metrics)."""
    return {k: float(v) for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}


def _read_trajectories(path: Path) -> list[rft.Trajectory]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [rft.Trajectory.from_dict(r) for r in rows]


# --- model.base --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseSlice:
    """``model.base``: ``embedded`` reads ``tiny``, ``world`` (the tokenizer's vocabulary) and the init ``seed``; a
    folder is keyed by its path (the stage's output points at it) and its content (file input ``model.base``)."""

    base: str
    tiny: ModelTinyConfig | None
    world: WorldConfig | None
    seed: int | None


def select_base(cfg: PipelineConfig) -> BaseSlice:
    seed = cfg.model.seed
    if cfg.model.base == "embedded":
        return BaseSlice("embedded", cfg.model.tiny, cfg.world, seed)
    return BaseSlice(cfg.model.base, None, None, None)


def base_files(cfg: PipelineConfig) -> dict[str, FileInput]:
    if cfg.model.base == "embedded":
        return {}
    return {"model.base": FileInput(cfg.model.base, "model.base", fix="point model.base at a local HF model folder")}


def build_base(s: BaseSlice, b: BuildContext) -> StageOutput:
    """The model RFT starts from: the embedded tiny Llama built locally, or the given folder (checked)."""
    base = s.base if s.base == "embedded" else str(b.files["model.base"])
    path = spct.build_base_model(base, s.tiny, s.world, b.out, s.seed)
    rel = path.relative_to(b.out).as_posix() if path.is_relative_to(b.out) else str(path)
    return StageOutput({"model": rel}, {}, {"base": s.base})


BASE = register(Stage("model.base", select_base, build_base, files=base_files))


@task(name="model.base", cache_policy=NO_CACHE, **TASK_OPTIONS)
def base_model(ctx: RunContext) -> StageResult:
    """The ``model.base`` stage (``build_base``)."""
    result = run_stage(ctx, BASE)
    assert result is not None
    return result


# --- rft.sample --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSlice:
    """``rft.sample``: the rejection rules (``rft.sampling``), the teacher and the trajectory validation limits."""

    sampling: RFTSamplingConfig
    teacher: TeacherSlice
    limits: DataLimits


def select_sample(cfg: PipelineConfig) -> SampleSlice:
    seed = cfg.rft.sampling.seed  # also the world teacher's sampling seed
    return SampleSlice(cfg.rft.sampling, select_teacher(cfg, seed), select_limits(cfg))


def build_sample(s: SampleSlice, b: BuildContext) -> StageOutput:
    """Rejective sampling from the teacher on the train split (SPEC §3), then the ``trajectories`` GX suite.

    Outputs: ``accepted.jsonl`` (the RFT set) and ``samples.jsonl`` (every sample: meta-RM data).
    """
    items = read_items(b.inputs["train"].path)
    result = rft.rejective_sample(items, make_teacher(s.teacher, b.files), s.sampling)
    samples = [t.to_dict() for t in result.samples]
    summary = validation.validate_trajectories(samples, s.limits, b.out / "data_docs")
    if not summary.success:
        b.tracker.log_artifact(b.run_id, b.out / "data_docs", "data_docs")
        raise validation.DataValidationError(summary.suite, summary.failures, summary.docs)
    write_jsonl_atomic(b.out / "accepted.jsonl", (t.to_dict() for t in result.accepted))
    write_jsonl_atomic(b.out / "samples.jsonl", samples)
    metrics = {f"rft/sample/{k}": v for k, v in numeric(result.stats).items()} | summary.metrics()
    return StageOutput({"accepted": "accepted.jsonl", "samples": "samples.jsonl", "data_docs": "data_docs"}, metrics)


def after_sample(s: SampleSlice, tracker: Any, run_id: str, result: StageResult) -> None:
    rows = [json.loads(line) for line in result.output("samples").read_text(encoding="utf-8").splitlines()[:500]]
    if rows:
        cols = ("id", "sample", "hinted", "correct", "status", "n", "completion")
        tracker.log_table(run_id, {c: [r[c] for r in rows] for c in cols}, "tables/rft_samples.json")


SAMPLE = register(
    Stage("rft.sample", select_sample, build_sample, inputs=("train",), files=teacher_files, after=after_sample)
)


@task(name="rft.sample", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rft_sample(ctx: RunContext, dv: DataVersion) -> StageResult:
    """The ``rft.sample`` stage (``build_sample``)."""
    result = run_stage(ctx, SAMPLE, {"train": split(ctx, dv, "train")})
    assert result is not None
    return result


# --- rft.train / rft.train_unfiltered / rft.ablation.{ablation} -------------------------------------------------


@dataclass(frozen=True)
class SFTSlice:
    """RFT or one of its variants: the SFT settings, the general-data mix and its seed. ``variant`` is ``rft``,
    ``sft_unfiltered`` (ours: unfiltered teacher samples) or a paper ablation (``grm.ablations.ABLATIONS``)."""

    train: RFTTrainConfig
    general_ratio: float
    general: GeneralSlice
    variant: str
    seed: int  # the mix shuffle and the variants' draws


def select_sft(cfg: PipelineConfig, variant: str = "rft") -> SFTSlice | Skip:
    if variant == UNFILTERED and not cfg.rft.sft_unfiltered:
        return Skip("rft.sft_unfiltered is false")
    if variant in ABLATIONS and variant not in cfg.rft.ablations:
        return Skip(f"rft.ablations={list(cfg.rft.ablations)} does not list {variant!r}")
    seed = cfg.rft.train.seed
    return SFTSlice(cfg.rft.train, cfg.rft.general_ratio, select_general(cfg, seed), variant, seed)


def select_unfiltered(cfg: PipelineConfig) -> SFTSlice | Skip:
    return select_sft(cfg, variant=UNFILTERED)


def select_ablation(cfg: PipelineConfig, ablation: str) -> SFTSlice | Skip:
    if ablation not in ABLATIONS:
        raise ValueError(f"unknown RFT ablation {ablation!r}; use one of {sorted(ABLATIONS)}")
    return select_sft(cfg, variant=ablation)


def sft_files(cfg: PipelineConfig, **params: Any) -> dict[str, FileInput]:
    return general_files(cfg)


def _metric_prefix(variant: str) -> str:
    if variant == "rft":
        return "rft/train"
    return "rft/train_unfiltered" if variant == UNFILTERED else f"rft/train_{variant}"


def build_sft(s: SFTSlice, b: BuildContext) -> StageOutput:
    """SFT of the base model on the accepted trajectories mixed with general data (TRL SFTTrainer); the variants
    change the data only (``sft_unfiltered``: as many unfiltered teacher samples; an ablation:
    ``grm.training.spct.ablation_examples``)."""
    samples: StageResult = b.inputs["samples"]
    accepted = _read_trajectories(samples.output("accepted"))
    general = general_examples(s.general, b.files.get("general.jsonl"))
    if s.variant in ABLATIONS:
        chosen = spct.ablation_trajectories(s.variant, accepted)
        examples = spct.ablation_examples(s.variant, accepted, general, s.general_ratio, s.seed)
    else:
        chosen = accepted
        if s.variant == UNFILTERED:  # same number of examples, drawn regardless of correctness
            chosen = spct.unfiltered_trajectories(_read_trajectories(samples.output("samples")), len(accepted), s.seed)
        examples = spct.rft_mix(chosen, general, s.general_ratio, s.seed)
    if not examples:
        raise ValueError(f"{s.variant}: no SFT examples (no accepted trajectories and no general data)")
    with b.tracker.trainer_env(b.run_id) as report_to:
        stats = train_sft(
            b.inputs["base"].output("model"), examples, b.out / "model", replace(s.train, report_to=report_to)
        )
    prefix = _metric_prefix(s.variant)
    metrics = {f"{prefix}/{k}": v for k, v in numeric(stats).items()}
    metrics[f"{prefix}/n_trajectories"] = float(len(chosen))
    metrics[f"{prefix}/trajectory_accuracy"] = sum(t.correct for t in chosen) / max(1, len(chosen))
    metrics[f"{prefix}/n_examples"] = float(len(examples))
    return StageOutput({"model": "model"}, metrics)


RFT_TRAIN = register(
    Stage("rft.train", select_sft, build_sft, inputs=("base", "samples"), files=sft_files, process=True)
)
RFT_UNFILTERED = register(
    Stage(
        "rft.train_unfiltered", select_unfiltered, build_sft, inputs=("base", "samples"), files=sft_files,
        process=True,
    )
)  # fmt: skip
RFT_ABLATION = register(
    Stage(
        "rft.ablation.{ablation}", select_ablation, build_sft, inputs=("base", "samples"), files=sft_files,
        examples=lambda tmp: [{"ablation": a} for a in ABLATIONS], process=True,
    )
)  # fmt: skip


@task(name="rft.train", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rft_train(ctx: RunContext, base: StageResult, samples: StageResult) -> StageResult:
    """RFT: the ``rft.train`` stage (``build_sft``)."""
    result = run_stage(ctx, RFT_TRAIN, {"base": base, "samples": samples})
    assert result is not None
    return result


@task(name="rft.train_unfiltered", cache_policy=NO_CACHE, **TASK_OPTIONS)
def sft_unfiltered_train(ctx: RunContext, base: StageResult, samples: StageResult) -> StageResult | None:
    """Ours, not the paper's row: "SFT on unfiltered teacher samples", the same budget (``rft.sft_unfiltered``)."""
    return run_stage(ctx, RFT_UNFILTERED, {"base": base, "samples": samples})


@task(name="rft.ablation", task_run_name="rft.ablation.{ablation}", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rft_ablation_train(ctx: RunContext, ablation: str, base: StageResult, samples: StageResult) -> StageResult | None:
    """One of the paper's RFT ablations (``rft.ablations``; None when it is not listed)."""
    return run_stage(ctx, RFT_ABLATION, {"base": base, "samples": samples}, ablation=ablation)


# --- rl.train ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RLSlice:
    """GRPO: its section, the student sampler's backend options, the general data (only when mixed in) and the
    seed of the RL rows' response order."""

    rl: RLConfig
    sampling: SamplingConfig
    general: GeneralSlice | None  # None: rl.general_coef is 0
    seed: int


def select_rl(cfg: PipelineConfig) -> RLSlice | Skip:
    if cfg.rl.max_steps < 1:
        return Skip(f"rl.max_steps={cfg.rl.max_steps}")
    seed = cfg.rl.seed
    general = select_general(cfg, seed) if cfg.rl.general_coef > 0 else None
    return RLSlice(cfg.rl, cfg.sampling, general, seed)


def rl_files(cfg: PipelineConfig) -> dict[str, FileInput]:
    return general_files(cfg) if cfg.rl.general_coef > 0 else {}


def build_rl(s: RLSlice, b: BuildContext) -> StageOutput:
    """Rule-based GRPO from the RFT checkpoint (reference = RFT), too-easy items removed (SPEC §4)."""
    model_dir = b.inputs["rft"].output("model")
    items = read_items(b.inputs["train"].path)
    kept, too_easy = grpo.drop_too_easy(items, spct.student_sampler(model_dir, s.sampling), s.rl)
    rows = grpo.build_rl_rows(kept, s.rl.template, s.seed)
    general = general_examples(s.general, b.files.get("general.jsonl")) if s.general is not None else None
    with b.tracker.trainer_env(b.run_id) as report_to:
        stats = grpo.train_grpo(
            model_dir, rows, b.out / "model", replace(s.rl, report_to=report_to),
            num_threads=s.sampling.num_threads, general=general,
        )  # fmt: skip
    history = stats.pop("log_history")
    metrics = {"rl/data/too_easy_rate": too_easy, "rl/data/n_items": float(len(rows))}
    metrics |= {f"rl/train/{k}": v for k, v in numeric(stats).items()}
    logs = [h for h in history if "reward" in h]
    if logs:
        for key in ("reward", "kl", "completions/mean_length", "frac_reward_zero_std", "general_loss"):
            metrics[f"rl/train/final_{key.replace('/', '_')}"] = float(logs[-1].get(key, float("nan")))
    return StageOutput({"model": "model"}, metrics)


RL_TRAIN = register(Stage("rl.train", select_rl, build_rl, inputs=("rft", "train"), files=rl_files, process=True))


@task(name="rl.train", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rl_train(ctx: RunContext, rft_model: StageResult, dv: DataVersion) -> StageResult | None:
    """The ``rl.train`` stage (``build_rl``); None when ``rl.max_steps`` < 1."""
    return run_stage(ctx, RL_TRAIN, {"rft": rft_model, "train": split(ctx, dv, "train")})


# --- meta_rm.train -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetaSlice:
    """The meta RM: its section (data + training), the GRM sampler's settings and the seed of the GRM samples."""

    meta_rm: MetaRMConfig
    sampling: SamplingConfig
    seed: int


def select_meta(cfg: PipelineConfig) -> MetaSlice | Skip:
    if not cfg.meta_rm.enabled:
        return Skip("meta_rm.enabled is false")
    seed = cfg.meta_rm.seed
    return MetaSlice(cfg.meta_rm, cfg.sampling, seed)


def meta_files(cfg: PipelineConfig) -> dict[str, FileInput]:
    backbone = cfg.meta_rm.train.backbone
    if backbone in ("grm", "base"):
        return {}
    return {"backbone": FileInput(backbone, "meta_rm.train.backbone", fix="use 'grm', 'base' or a local model folder")}


def build_meta(s: MetaSlice, b: BuildContext) -> StageOutput:
    """The meta RM on teacher samples + trained-GRM samples, BCE on Eq. 10 labels (SPEC §6)."""
    grm_dir = b.inputs["grm"].output("model")
    items = read_items(b.inputs["train"].path)
    pool = read_items(b.inputs["val"].path) if s.meta_rm.grm_split == "val" else None
    examples, counts = spct.meta_rm_examples(
        items, _read_trajectories(b.inputs["samples"].output("samples")), spct.student_sampler(grm_dir, s.sampling),
        s.meta_rm, s.sampling.template, s.sampling.max_new_tokens, s.seed, grm_pool=pool,
    )  # fmt: skip
    backbones = {"grm": grm_dir, "base": b.inputs["base"].output("model")}
    backbone = backbones.get(s.meta_rm.train.backbone) or b.files["backbone"]

    def log_curve(values: dict[str, float], step: int) -> None:
        b.tracker.log_metrics(b.run_id, values, step=step)

    stats = train_meta_rm(
        backbone,
        examples,
        b.out / "model",
        s.meta_rm.train,
        num_threads=s.sampling.num_threads,
        log_fn=log_curve,
        template=s.sampling.template,
    )
    metrics = {f"meta_rm/data/{k}": v for k, v in counts.items()}
    metrics |= {f"meta_rm/train/{k}": v for k, v in numeric(stats).items()}
    return StageOutput({"model": "model"}, metrics)


META_RM = register(
    Stage(
        "meta_rm.train",
        select_meta,
        build_meta,
        inputs=("samples", "grm", "train", "val", "base"),
        files=meta_files,
        process=True,
    )
)


@task(name="meta_rm.train", cache_policy=NO_CACHE, **TASK_OPTIONS)
def meta_rm_train(
    ctx: RunContext, samples: StageResult, grm_model: StageResult, dv: DataVersion, base: StageResult | None = None
) -> StageResult | None:
    """The ``meta_rm.train`` stage (``build_meta``); None when ``meta_rm.enabled`` is false. ``base``: the
    ``model.base`` result (``meta_rm.train.backbone: base``)."""
    inputs = {"samples": samples, "grm": grm_model, "train": split(ctx, dv, "train"), "val": split(ctx, dv, "val")}
    return run_stage(ctx, META_RM, inputs | {"base": base})
