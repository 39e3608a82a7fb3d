"""Supervised fine-tuning (the RFT stage, SPEC §3) with TRL's ``SFTTrainer`` on prompt/completion pairs.

The loss is on the completion only (TRL's default for prompt/completion datasets); TRL appends the EOS token to
every completion. The trained model and its tokenizer are written to a temporary folder next to ``out_dir`` and
renamed into place, so ``out_dir`` is either absent or complete.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grm.config import RFTTrainConfig, seed_or_zero
from grm.model_files import load_pretrained
from grm.progress import use_progress_callback
from grm.threads import set_torch_threads
from grm.training.padding import is_right_padded, plan_groups, split_batch
from grm.training.publish import publish_trained

logger = logging.getLogger(__name__)


def _check_examples(examples: Sequence[dict[str, str]]) -> None:
    if not examples:
        raise ValueError("train_sft got no examples; rejective sampling kept nothing? check the teacher/data")
    for i, ex in enumerate(examples):
        if not isinstance(ex.get("prompt"), str) or not isinstance(ex.get("completion"), str):
            raise ValueError(f"examples[{i}] must have string 'prompt' and 'completion' fields, got {sorted(ex)}")
        if not ex["completion"]:
            raise ValueError(f"examples[{i}]: empty completion")


def _length_grouped_trainer(base: type, max_groups: int) -> type:
    """``base`` (TRL's SFTTrainer) computing each training batch as length groups (``grm.training.padding``).

    Exact because TRL's loss is a token sum divided by ``num_items_in_batch`` (the whole batch's count), so the
    groups' losses add up to the padded batch's loss; batches without that count, or not right-padded, run as
    they are. The logged entropy and token accuracy become means over the groups.
    """

    class LengthGroupedSFTTrainer(base):  # type: ignore[misc, valid-type]
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            if not model.training or return_outputs or num_items_in_batch is None or not is_right_padded(inputs):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            groups = plan_groups(inputs["attention_mask"].sum(dim=1).tolist(), max_groups=max_groups)
            if len(groups) == 1:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            parts = split_batch(inputs, groups)
            parent = super()  # zero-argument super() does not work inside a generator expression
            return sum(parent.compute_loss(model, part, False, num_items_in_batch) for part in parts)

    return LengthGroupedSFTTrainer


def train_sft(
    model_dir: str | Path, examples: Sequence[dict[str, str]], out_dir: str | Path, cfg: RFTTrainConfig
) -> dict[str, Any]:
    """Fine-tune the causal LM in ``model_dir`` on ``examples`` and save it (with its tokenizer) to ``out_dir``.

    Args:
        model_dir: a local Hugging Face model folder (safetensors) with its tokenizer.
        examples: ``[{"prompt": ..., "completion": ...}, ...]``; the loss covers the completion only.
        out_dir: destination folder, written atomically (train into a temp folder, then rename).
        cfg: the run's hyper-parameters.

    Returns:
        Metrics: ``train_loss`` (mean), ``first_loss``/``last_loss`` (logged), ``steps``, ``examples``,
        ``train_seconds``, ``seconds_per_step``, ``loss_curve`` (the logged losses). With ``cfg.launcher ==
        "torchrun"`` the same function runs in ``nproc_per_node * nnodes`` processes (``grm.training.launch``),
        plus ``world_size`` and ``backend``.
    """
    import torch

    _check_examples(examples)
    use_cpu = cfg.use_cpu if cfg.use_cpu is not None else not torch.cuda.is_available()
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if cfg.launcher == "torchrun":  # grm.training.launch: the same function in nproc_per_node * nnodes processes
        from grm.training.launch import run_launched

        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.launch.", dir=out_dir.parent))
        try:
            return run_launched(
                "sft", model_dir, {"examples": examples}, out_dir, cfg, work, use_cpu, num_threads=cfg.num_threads
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTTrainer

    set_torch_threads(cfg.num_threads)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = load_pretrained(AutoModelForCausalLM, model_dir, role="base model", dtype=torch.float32)
        dataset = Dataset.from_list([{"prompt": e["prompt"], "completion": e["completion"]} for e in examples])
        args = _sft_args(cfg, tmp / "trainer", use_cpu)
        trainer_cls = _length_grouped_trainer(SFTTrainer, cfg.length_groups) if cfg.length_groups > 1 else SFTTrainer
        trainer = trainer_cls(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
        use_progress_callback(trainer, "sft train")  # a bar on a TTY, else a line every 15 s; no stdout dicts
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        losses = [rec["loss"] for rec in trainer.state.log_history if "loss" in rec]
        publish_trained(trainer, tokenizer, tmp, out_dir)  # rank 0 renames tmp/model to out_dir
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    steps = int(trainer.state.global_step)
    metrics = {
        "train_loss": float(result.training_loss),
        "first_loss": float(losses[0]) if losses else math.nan,
        "last_loss": float(losses[-1]) if losses else math.nan,
        "steps": steps,
        "examples": len(examples),
        "train_seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / max(steps, 1), 4),
        "loss_curve": [float(x) for x in losses],  # the logged losses, every logging_steps (not a metric)
    }
    logger.debug("SFT done: %s -> %s", metrics, out_dir)
    return metrics


def _sft_args(cfg: RFTTrainConfig, output_dir: Path, use_cpu: bool) -> Any:
    """TRL's ``SFTConfig`` for ``cfg`` (loss on the completion only, no checkpoints, no tqdm)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_train_epochs,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler_type,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=seed_or_zero(cfg.seed),
        data_seed=seed_or_zero(cfg.seed),
        max_length=cfg.max_length,
        completion_only_loss=True,
        bf16=False,
        fp16=False,
        use_cpu=use_cpu,
        activation_checkpointing=False,  # transformers 5 name; the old `gradient_checkpointing` warns
        report_to=cfg.report_to,
        logging_steps=cfg.logging_steps,
        save_strategy="no",
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,  # a causal LM uses every parameter (True: a warning + an extra pass)
        disable_tqdm=True,
        dataset_num_proc=None,
    )
