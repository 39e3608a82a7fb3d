"""Model stages of the SPCT recipe: ``model.base``, ``rft.sample``, ``rft.train``, ``rft.train_unfiltered`` (the
ablation), ``rl.train`` and ``meta_rm.train``.

Each task is one ``run_stage`` call around one ``grm.spct`` / ``grm.rft`` / ``grm.training`` / ``grm.meta_rm``
function. Trainers log into their stage's MLflow run through ``ctx.tracker.trainer_env(run_id)`` (TRL
``report_to="mlflow"``). Optional stages return ``None`` when switched off; the flow skips what depends on them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from grm import meta_rm, rft, spct
from grm.files import write_jsonl_atomic
from grm.schemas import read_items
from grm.training import grpo
from grm.training.sft import train_sft
from tasks import validation
from tasks.data import split_inputs, split_path
from tasks.runtime import TASK_OPTIONS, RunContext, logger, run_stage
from tasks.stages import StageResult
from tasks.versioning import DataVersion


def numeric(stats: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of a core function's stats dict (for MLflow metrics)."""
    return {k: float(v) for k, v in stats.items() if isinstance(v, int | float) and not isinstance(v, bool)}


@task(name="model.base", cache_policy=NO_CACHE, **TASK_OPTIONS)
def base_model(ctx: RunContext) -> StageResult:
    """The model RFT starts from (``model.base``: the embedded tiny Llama built locally, or a given folder)."""

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        path = spct.build_base_model(ctx.cfg.model, ctx.cfg.world, out, ctx.cfg.seed)
        rel = path.relative_to(out).as_posix() if path.is_relative_to(out) else str(path)
        return {"model": rel}, {}, {"base": ctx.cfg.model.base}

    return run_stage(
        ctx, "model.base", config={"model": ctx.cfg.model, "world": ctx.cfg.world, "seed": ctx.cfg.seed},
        inputs={}, build=build,
    )  # fmt: skip


@task(name="rft.sample", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rft_sample(ctx: RunContext, dv: DataVersion) -> StageResult:
    """Rejective sampling from the teacher on the train split (SPEC §3), then the ``trajectories`` GX suite.

    Outputs: ``accepted.jsonl`` (the RFT set) and ``samples.jsonl`` (every sample: meta-RM data).
    """
    cfg = ctx.cfg

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        items = read_items(split_path(ctx, "train"))
        teacher = spct.teacher_sampler(cfg.model, cfg.world, cfg.sampling, cfg.seed)
        result = rft.rejective_sample(items, teacher, cfg.rft.sampling)
        samples = [t.to_dict() for t in result.samples]
        summary = validation.validate_trajectories(samples, cfg.data, out / "data_docs")
        if not summary.success:
            ctx.tracker.log_artifact(run_id, out / "data_docs", "data_docs")
            raise validation.DataValidationError(summary.suite, summary.failures, summary.docs)
        write_jsonl_atomic(out / "accepted.jsonl", (t.to_dict() for t in result.accepted))
        write_jsonl_atomic(out / "samples.jsonl", samples)
        metrics = {f"rft/sample/{k}": v for k, v in numeric(result.stats).items()} | summary.metrics()
        return {"accepted": "accepted.jsonl", "samples": "samples.jsonl", "data_docs": "data_docs"}, metrics, {}

    def after(run_id: str, result: StageResult) -> None:
        rows = [json.loads(line) for line in result.output("samples").read_text(encoding="utf-8").splitlines()[:500]]
        if rows:
            cols = ("id", "sample", "hinted", "correct", "status", "n", "completion")
            ctx.tracker.log_table(run_id, {c: [r[c] for r in rows] for c in cols}, "tables/rft_samples.json")

    return run_stage(
        ctx,
        "rft.sample",
        config={"rft.sampling": cfg.rft.sampling, "model.teacher": cfg.model.teacher, "world": cfg.world,
                "sampling": cfg.sampling, "seed": cfg.seed, "data": cfg.data},
        inputs=split_inputs(ctx, dv, "train"),
        build=build,
        after=after,
    )  # fmt: skip


def _general_examples(ctx: RunContext) -> list[dict[str, str]]:
    """General-instruction data for the RFT mix: the world's own tasks, or ``general.jsonl`` beside the splits."""
    if ctx.cfg.data.source == "world":
        from grm.world.generator import general_instruction_examples

        return general_instruction_examples(ctx.cfg.world, seed=ctx.cfg.seed)
    path = Path(ctx.cfg.data.source) / "general.jsonl"
    if not path.exists():
        logger().warning("no %s: RFT trains on sampled judgements only (the paper mixes general data)", path)
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_trajectories(path: Path) -> list[rft.Trajectory]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [rft.Trajectory.from_dict(r) for r in rows]


def _sft_stage(ctx: RunContext, stage: str, base: StageResult, samples: StageResult, unfiltered: bool) -> StageResult:
    cfg = ctx.cfg

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        accepted = _read_trajectories(samples.output("accepted"))
        chosen = accepted
        if unfiltered:  # the ablation: same number of examples, drawn regardless of correctness
            every = _read_trajectories(samples.output("samples"))
            chosen = spct.unfiltered_trajectories(every, len(accepted), cfg.seed)
        examples = spct.rft_mix(chosen, _general_examples(ctx), cfg.rft.general_ratio, cfg.seed)
        with ctx.tracker.trainer_env(run_id) as report_to:
            stats = train_sft(
                base.output("model"), examples, out / "model", replace(cfg.rft.train, report_to=report_to)
            )
        prefix = stage.replace(".", "/")
        metrics = {f"{prefix}/{k}": v for k, v in numeric(stats).items()}
        metrics[f"{prefix}/n_trajectories"] = float(len(chosen))
        metrics[f"{prefix}/trajectory_accuracy"] = sum(t.correct for t in chosen) / max(1, len(chosen))
        metrics[f"{prefix}/n_examples"] = float(len(examples))
        return {"model": "model"}, metrics, {}

    return run_stage(
        ctx,
        stage,
        config={"rft": cfg.rft, "world": cfg.world, "data.source": cfg.data.source, "seed": cfg.seed,
                "unfiltered": unfiltered},
        inputs={"base": base, "samples": samples},
        build=build,
    )  # fmt: skip


@task(name="rft.train", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rft_train(ctx: RunContext, base: StageResult, samples: StageResult) -> StageResult:
    """RFT: SFT of the base model on the accepted trajectories mixed with general data (TRL SFTTrainer)."""
    return _sft_stage(ctx, "rft.train", base, samples, unfiltered=False)


@task(name="rft.train_unfiltered", cache_policy=NO_CACHE, **TASK_OPTIONS)
def sft_unfiltered_train(ctx: RunContext, base: StageResult, samples: StageResult) -> StageResult | None:
    """The ablation "RFT w/o rejective sampling": the same budget on unfiltered teacher samples."""
    if not ctx.cfg.rft.ablation_unfiltered:
        return None
    return _sft_stage(ctx, "rft.train_unfiltered", base, samples, unfiltered=True)


@task(name="rl.train", cache_policy=NO_CACHE, **TASK_OPTIONS)
def rl_train(ctx: RunContext, rft_model: StageResult, dv: DataVersion) -> StageResult | None:
    """Rule-based GRPO from the RFT checkpoint (reference = RFT), too-easy items removed (SPEC §4)."""
    cfg = ctx.cfg
    if cfg.rl.max_steps < 1:
        logger().warning("rl.train skipped: rl.max_steps=%s", cfg.rl.max_steps)
        return None

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        items = read_items(split_path(ctx, "train"))
        sampler = spct.student_sampler(rft_model.output("model"), cfg.sampling)
        kept, too_easy = grpo.drop_too_easy(items, sampler, cfg.rl)
        rows = grpo.build_rl_rows(kept, cfg.rl.template, cfg.seed)
        general = _general_examples(ctx) if cfg.rl.general_coef > 0 else None
        with ctx.tracker.trainer_env(run_id) as report_to:
            stats = grpo.train_grpo(
                rft_model.output("model"), rows, out / "model", replace(cfg.rl, report_to=report_to),
                num_threads=cfg.sampling.num_threads, general=general,
            )  # fmt: skip
        history = stats.pop("log_history")
        metrics = {"rl/data/too_easy_rate": too_easy, "rl/data/n_items": float(len(rows))}
        metrics |= {f"rl/train/{k}": v for k, v in numeric(stats).items()}
        logs = [h for h in history if "reward" in h]
        if logs:
            for key in ("reward", "kl", "completions/mean_length", "frac_reward_zero_std", "general_loss"):
                metrics[f"rl/train/final_{key.replace('/', '_')}"] = float(logs[-1].get(key, float("nan")))
        return {"model": "model"}, metrics, {}

    return run_stage(
        ctx, "rl.train", config={"rl": cfg.rl, "sampling": cfg.sampling, "seed": cfg.seed, "world": cfg.world,
                                 "data.source": cfg.data.source},
        inputs={"rft": rft_model, **split_inputs(ctx, dv, "train")}, build=build,
    )  # fmt: skip


@task(name="meta_rm.train", cache_policy=NO_CACHE, **TASK_OPTIONS)
def meta_rm_train(
    ctx: RunContext, samples: StageResult, grm_model: StageResult, dv: DataVersion
) -> StageResult | None:
    """The meta RM on teacher samples + trained-GRM samples, BCE on Eq. 10 labels (SPEC §6)."""
    cfg = ctx.cfg
    if not cfg.meta_rm.enabled:
        logger().warning("meta_rm.train skipped: meta_rm.enabled is false")
        return None

    def build(out: Path, run_id: str) -> tuple[dict[str, str], dict[str, float], dict[str, Any]]:
        items = read_items(split_path(ctx, "train"))
        sampler = spct.student_sampler(grm_model.output("model"), cfg.sampling)
        examples, counts = spct.meta_rm_examples(
            items, _read_trajectories(samples.output("samples")), sampler, cfg.meta_rm,
            cfg.sampling.template, cfg.sampling.max_new_tokens, cfg.seed,
        )  # fmt: skip
        train_cfg = cfg.meta_rm.train
        backbone = grm_model.output("model") if train_cfg.backbone == "grm" else Path(train_cfg.backbone)

        def log_curve(values: dict[str, float], step: int) -> None:
            ctx.tracker.log_metrics(run_id, values, step=step)

        stats = meta_rm.train_meta_rm(
            backbone, examples, out / "model", train_cfg, num_threads=cfg.sampling.num_threads, log_fn=log_curve
        )
        metrics = {f"meta_rm/data/{k}": v for k, v in counts.items()}
        metrics |= {f"meta_rm/train/{k}": v for k, v in numeric(stats).items()}
        return {"model": "model"}, metrics, {}

    return run_stage(
        ctx, "meta_rm.train",
        config={"meta_rm": cfg.meta_rm, "sampling": cfg.sampling, "seed": cfg.seed},
        inputs={"samples": samples, "grm": grm_model, **split_inputs(ctx, dv, "train")}, build=build,
    )  # fmt: skip
