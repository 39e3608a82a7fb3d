"""Rule-based online RL (SPEC §4) with TRL's GRPO trainer: reward +1 if the judgement is correct, -1 otherwise.

Ground truth travels as dataset columns (``best`` = position of the best response in the order the prompt shows,
``label`` for single responses, ``n``), which TRL passes to ``grm.rewards.CorrectnessReward``. The reference policy
is the starting (RFT) checkpoint; a KL term (``beta``) keeps the format (no format reward, as in the paper).
Items the starting model already gets right ``too_easy_samples`` times out of ``too_easy_samples`` are removed.

``general_coef > 0`` adds a next-token loss on general-instruction data to every GRPO step (InstructGPT's
"PPO-ptx"). The KL term only holds the policy near the reference on the RL prompts; knowledge the critiques lean on
but RL never rewards (the world's sums, learnt from the general mix) drifts away without it. Measured on the
embedded world, seed 1, 150 steps: general-mix accuracy on test sums 56% -> 33% and test judging accuracy -3.5
points without the term (docs/results.md).
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from grm.config import RLConfig, seed_or_zero
from grm.method import judging, prompts, voting
from grm.method.correctness import is_correct
from grm.model_files import load_pretrained
from grm.progress import use_progress_callback
from grm.rewards import CorrectnessReward
from grm.sampling.base import Sampler
from grm.schemas import Item
from grm.threads import set_torch_threads
from grm.training.publish import publish_trained

log = logging.getLogger(__name__)


def build_rl_rows(items: Sequence[Item], template: str, seed: int) -> list[dict[str, Any]]:
    """One RL prompt per item, responses in a seeded shuffled order; ground truth in that order.

    Returns rows with ``prompt``, ``best`` (shown position, -1 for n = 1), ``label`` (-1 for n >= 2), ``n``, ``id``.
    """
    rows = []
    for item in items:
        order = voting.shuffle_order(item.n, seed, item.id, 0)
        shown = [item.responses[o] for o in order]
        rows.append(
            {
                "id": item.id,
                "prompt": prompts.render_prompt(item.query, shown, template=template, single_label=item.n == 1),
                "best": order.index(item.best) if item.best is not None else -1,
                "label": item.label if item.label is not None else -1,
                "n": item.n,
            }
        )
    return rows


def drop_too_easy(items: Sequence[Item], sampler: Sampler, cfg: RLConfig) -> tuple[list[Item], float]:
    """Remove items the current model judges correctly in all ``cfg.too_easy_samples`` samples (after drawing a
    seeded subset of ``cfg.max_items`` items when set).

    Returns:
        The remaining items and the too-easy rate.
    """
    if cfg.max_items is not None and len(items) > cfg.max_items:
        items = random.Random(seed_or_zero(cfg.seed)).sample(list(items), cfg.max_items)
    if cfg.too_easy_samples < 1 or not items:
        return list(items), 0.0
    results = judging.judge_items(
        items,
        sampler,
        k=cfg.too_easy_samples,
        temperature=cfg.too_easy_temperature,
        max_new_tokens=cfg.max_completion_length,
        seed=seed_or_zero(cfg.seed) + 104729,
        template=cfg.template,
        single_label=True,
    )
    keep = [
        item
        for item, res in zip(items, results, strict=True)
        if not all(is_correct(s.scores, best=item.best, label=item.label) for s in res.samples)
    ]
    return keep, 1.0 - len(keep) / len(items)


def ignore_trl_checkpointing_deprecations() -> None:
    """Ignore the FutureWarnings TRL's GRPOTrainer triggers on every step by calling transformers 5's deprecated
    ``is_gradient_checkpointing`` / ``gradient_checkpointing_enable`` / ``gradient_checkpointing_disable`` (TRL's
    code, not ours: the user cannot act on them). Only that category, message and module are filtered."""
    warnings.filterwarnings(
        "ignore",
        message=r"`(is_)?gradient_checkpointing(_enable|_disable)?` is deprecated",
        category=FutureWarning,
        module=r"transformers\.modeling_utils",
    )


def train_grpo(
    model_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    out_dir: str | Path,
    cfg: RLConfig,
    num_threads: int | None = None,
    callbacks: list[Any] | None = None,
    reward_funcs: list[Any] | None = None,
    general: Sequence[dict[str, str]] | None = None,
    rank: int = 0,
    world_size: int = 1,
    activation_checkpointing: bool = False,
) -> dict[str, Any]:
    """Run TRL GRPO from ``model_dir`` (also the KL reference) and save the policy to ``out_dir`` atomically.

    Args:
        model_dir: the RFT checkpoint (HF dir, safetensors).
        rows: from ``build_rl_rows``.
        out_dir: where the trained policy and tokenizer are saved.
        cfg: GRPO settings. ``cfg.launcher == "torchrun"`` runs this function in ``nproc_per_node * nnodes``
            processes (``grm.training.launch``); ``reward_funcs`` and ``callbacks`` are then pickled to them.
        num_threads: torch CPU threads (of each process).
        callbacks: extra ``transformers.TrainerCallback`` objects.
        reward_funcs: TRL reward functions; default ``[CorrectnessReward()]`` (the paper's ±1 rule).
        general: general-instruction examples (``prompt`` / ``completion``) for the ``cfg.general_coef`` loss.
        rank, world_size: this process's place in a launched run (``grm.training.launch`` passes them): each of
            the ``world_size`` ranks generates ``prompts_per_step * num_generations / world_size`` rollouts per
            step and takes its rank-strided ``1 / world_size`` of each general batch, so a step's data is the same
            as one process's (``per_rank_batches``).
        activation_checkpointing: recompute activations in the backward (TRL's default, for memory). Off: the CPU
            models need no memory saving and the recomputation costs a policy forward per step (~10%); the weights
            are bitwise the same either way (``tests/integration/test_training_rl_meta.py``).

    Returns:
        The trainer's log history (list of dicts) under ``log_history`` and the final ``train_loss`` (rank 0's:
        TRL gathers the logged rewards and lengths over the ranks); launched, also ``world_size`` and ``backend``.
    """
    import torch

    _check_inputs(rows, cfg, general)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)  # the temp folder sits beside out_dir: the rename is atomic
    if cfg.launcher == "torchrun":  # grm.training.launch: this function in nproc_per_node * nnodes processes
        return _train_launched(model_dir, rows, out_dir, cfg, num_threads, callbacks, reward_funcs, general)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOTrainer

    if num_threads:
        set_torch_threads(num_threads)
    rollouts, _ = per_rank_batches(cfg, world_size)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.padding_side = "left"
    model = load_pretrained(AutoModelForCausalLM, model_dir, role="GRM", use_safetensors=True, dtype=torch.float32)
    args = _grpo_args(cfg, tmp / "trainer", rollouts, activation_checkpointing)
    dataset = Dataset.from_list([dict(r) for r in rows])
    trainer = _trainer_class(GRPOTrainer, tokenizer, cfg, general, rank, world_size)(
        model=model,
        reward_funcs=reward_funcs or [CorrectnessReward()],
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    ignore_trl_checkpointing_deprecations()
    use_progress_callback(trainer, "rl train (GRPO)")  # a bar on a TTY, else a line every 15 s; no stdout dicts
    try:
        result = trainer.train()
        publish_trained(trainer, tokenizer, tmp, out_dir)  # rank 0 renames tmp/model to out_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"train_loss": float(result.training_loss), "log_history": list(trainer.state.log_history)}


def _trainer_class(
    base: type, tokenizer: Any, cfg: RLConfig, general: Sequence[dict[str, str]] | None, rank: int, world: int
) -> type:
    """TRL's ``GRPOTrainer``, with the ``cfg.general_coef`` loss on this rank's general batches when it is > 0."""
    if cfg.general_coef <= 0:
        return base
    assert general is not None
    batches = general_batches(tokenizer, general, cfg.general_batch_size, seed_or_zero(cfg.seed), rank, world)
    return _with_general_loss(base, batches, cfg.general_coef)


def _check_inputs(rows: Sequence[dict[str, Any]], cfg: RLConfig, general: Any) -> None:
    if not rows:
        raise ValueError("train_grpo got no RL rows (every item was too easy?); lower rl.too_easy_samples or add data")
    if cfg.general_coef > 0 and not general:
        raise ValueError(
            f"rl.general_coef={cfg.general_coef} needs general-instruction examples; pass general= or set it to 0"
        )


def _train_launched(
    model_dir: str | Path,
    rows: Sequence[dict[str, Any]],
    out_dir: Path,
    cfg: RLConfig,
    num_threads: int | None,
    callbacks: list[Any] | None,
    reward_funcs: list[Any] | None,
    general: Sequence[dict[str, str]] | None,
) -> dict[str, Any]:
    """``train_grpo`` in ``nproc_per_node * nnodes`` processes (``grm.training.launch``); the reward functions and
    callbacks are pickled to them."""
    import torch

    from grm.training.launch import run_launched

    objects = {k: v for k, v in (("reward_funcs", reward_funcs), ("callbacks", callbacks)) if v}
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.launch.", dir=out_dir.parent))
    try:
        return run_launched(
            "grpo", model_dir, {"rows": rows, "general": general if cfg.general_coef > 0 else None}, out_dir,
            cfg, work, not torch.cuda.is_available(), num_threads=num_threads or 1,
            options={"num_threads": num_threads}, objects=objects,
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _grpo_args(cfg: RLConfig, output_dir: Path, rollouts: int, activation_checkpointing: bool) -> Any:
    """TRL's ``GRPOConfig`` for one process generating ``rollouts`` completions per step."""
    import torch
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(output_dir),
        learning_rate=cfg.learning_rate,
        beta=cfg.beta,
        num_generations=cfg.num_generations,
        per_device_train_batch_size=rollouts,  # x world_size ranks = TRL's generation batch, whole groups
        gradient_accumulation_steps=1,  # so steps_per_generation = 1: one generation batch per optimizer step
        max_steps=cfg.max_steps,
        max_completion_length=cfg.max_completion_length,
        temperature=cfg.temperature,
        epsilon=cfg.epsilon,
        loss_type=cfg.loss_type,
        warmup_steps=cfg.warmup_ratio,
        logging_steps=cfg.logging_steps,
        seed=seed_or_zero(cfg.seed),
        report_to=cfg.report_to,
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        save_strategy="no",
        disable_dropout=True,
        log_completions=False,
        shuffle_dataset=True,
        dataloader_num_workers=0,
        activation_checkpointing=activation_checkpointing,
    )


def per_rank_batches(cfg: RLConfig, world_size: int) -> tuple[int, int]:
    """``(rollouts, general examples)`` of one of ``world_size`` ranks per GRPO step.

    The step is global: ``prompts_per_step * num_generations`` rollouts (TRL's generation batch: per-rank batch x
    ranks x ``steps_per_generation`` = 1, which TRL requires to hold whole groups of ``num_generations``) and
    ``general_batch_size`` general examples; each rank takes ``1 / world_size`` of both. ``RLConfig``
    checks the divisibility at load for its own launcher; this checks it for any caller.

    >>> per_rank_batches(RLConfig(prompts_per_step=2, num_generations=4, general_batch_size=4), 2)
    (4, 2)
    """
    rollouts = cfg.prompts_per_step * cfg.num_generations
    if rollouts % world_size:
        raise ValueError(
            f"rl.prompts_per_step * rl.num_generations = {rollouts} rollouts per step: must be divisible by the "
            f"{world_size} processes"
        )
    if cfg.general_coef > 0 and cfg.general_batch_size % world_size:
        raise ValueError(
            f"rl.general_batch_size={cfg.general_batch_size}: must be divisible by the {world_size} processes"
        )
    return rollouts // world_size, cfg.general_batch_size // world_size


def general_batches(
    tokenizer: Any, examples: Sequence[dict[str, str]], batch_size: int, seed: int, rank: int = 0, world_size: int = 1
) -> Iterator[dict[str, Any]]:
    """Endless seeded batches of general-instruction examples: right-padded ``input_ids`` / ``attention_mask`` and
    ``labels`` that count the completion only (the RFT stage's loss).

    With ``world_size > 1`` every rank draws the same seeded global batch of ``batch_size`` and yields its
    rank-strided share (``batch[rank::world_size]``): the ranks' shares of one step make up one process's batch.
    """
    import torch

    encoded = []
    for ex in examples:
        prompt_ids = tokenizer(ex["prompt"], add_special_tokens=False)["input_ids"]
        full = tokenizer(ex["prompt"] + ex["completion"], add_special_tokens=False)["input_ids"]
        if tokenizer.eos_token_id is not None:
            full = full + [tokenizer.eos_token_id]
        labels = [-100] * len(prompt_ids) + full[len(prompt_ids) :]
        encoded.append((full, labels))
    rng = random.Random(seed)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    size = min(batch_size, len(encoded))
    if size < world_size:
        raise ValueError(
            f"{len(encoded)} general examples for batches of {batch_size} over {world_size} processes: every process "
            "needs at least one per step; add general data or lower rl.general_batch_size / the process count"
        )
    while True:  # one seeded pass over the examples after another (a short last batch is dropped)
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order) - size + 1, size):
            chunk = [encoded[i] for i in order[start : start + size]][rank::world_size]
            width = max(len(ids) for ids, _ in chunk)
            yield {
                "input_ids": torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in chunk]),
                "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in chunk]),
                "labels": torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in chunk]),
            }


def _with_general_loss(base: type, batches: Iterator[dict[str, Any]], coef: float) -> type:
    """``base`` (TRL's GRPOTrainer) with ``coef`` x the next-token loss of one general batch added to each step's
    loss; the mean general loss is logged as ``general_loss``."""

    class GRPOWithGeneralLoss(base):  # type: ignore[misc, valid-type]
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            batch = {k: v.to(loss.device) for k, v in next(batches).items()}
            general_loss = model(**batch).loss
            # the ranks' mean (each rank's batch is its share of the step's); one process: its own value
            self._metrics["train"]["general_loss"].append(self.accelerator.gather(general_loss.detach()).mean().item())
            return loss + coef * general_loss

    return GRPOWithGeneralLoss
