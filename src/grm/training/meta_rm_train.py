"""Meta-RM training (SPEC §6): the loop, the objective, the checkpoint selection and the saving.

``train_meta_rm`` trains a one-logit sequence classifier on ``{"text", "label", "id"}`` examples
(``grm.meta_rm.examples_from_judgements``, ``grm.training.rft.examples_from_trajectories``) and saves it with ``meta_rm.json`` (``grm.meta_rm.write_info``), which every
scorer (``grm.meta_rm.load_meta_scorer``) reads back. Objectives (``meta_rm.train.objective``):

- ``pointwise`` (paper, default): binary cross-entropy on each example's Eq. 10 label.
- ``pairwise``: Bradley-Terry within an item: a correct and a wrong sample of the *same* item, loss
  ``-log sigmoid(s_correct - s_wrong)`` (``pairwise_loss``). MetaRM@k only compares samples of one item, so this
  trains exactly that comparison; items whose samples are all right or all wrong give no pair.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm import meta_rm
from grm.benchmarks.scoring import roc_auc
from grm.config import MetaRMTrainConfig, seed_or_zero
from grm.progress import Progress
from grm.threads import set_torch_threads

log = logging.getLogger(__name__)


def split_by_item(examples: Sequence[dict[str, Any]], frac: float, seed: int) -> tuple[list, list]:
    """Split by item id so the held-out AUC is measured on unseen items."""
    import numpy as np

    ids = sorted({e["id"] for e in examples})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(ids, size=int(len(ids) * frac), replace=False).tolist()) if frac > 0 else set()
    return [e for e in examples if e["id"] not in held], [e for e in examples if e["id"] in held]


def item_pairs(examples: Sequence[dict[str, Any]]) -> list[tuple[list[int], list[int]]]:
    """Per item with both labels: (indices of its correct examples, indices of its wrong ones), in first-seen order.

    Example:
        >>> item_pairs([{"id": "a", "label": 1}, {"id": "a", "label": 0}, {"id": "b", "label": 1}])
        [([0], [1])]
    """
    by_item: dict[str, tuple[list[int], list[int]]] = {}
    for i, e in enumerate(examples):
        by_item.setdefault(e["id"], ([], []))[0 if e["label"] else 1].append(i)
    return [(pos, neg) for pos, neg in by_item.values() if pos and neg]


def pairwise_loss(correct: Any, wrong: Any) -> Any:
    """Bradley-Terry loss of paired logits: mean of ``-log sigmoid(correct - wrong)`` (= softplus(wrong - correct)).

    Example:
        >>> import torch
        >>> round(float(pairwise_loss(torch.tensor([0.0]), torch.tensor([0.0]))), 4)  # log 2: no preference
        0.6931
    """
    import torch

    return torch.nn.functional.softplus(wrong - correct).mean()


@dataclass
class _Run:
    """What one training holds: the model (``net`` = it or its DDP wrapper), the tokenised splits and the rank."""

    model: Any
    net: Any
    tokenizer: Any
    device: Any
    train: list[dict[str, Any]]
    val: list[dict[str, Any]]
    train_ids: list[list[int]]
    val_ids: list[list[int]]
    n_truncated: int
    rank: int = 0
    world: int = 1
    losses: list[float] = field(default_factory=list)


def train_meta_rm(
    backbone_dir: str | Path,
    examples: Sequence[dict[str, Any]],
    out_dir: str | Path,
    cfg: MetaRMTrainConfig,
    num_threads: int | None = None,
    log_fn: Any = None,
    template: str | None = None,
) -> dict[str, Any]:
    """Train a one-logit sequence classifier (``cfg.objective``) and save it (safetensors) to ``out_dir``
    atomically, with ``meta_rm.json`` (``cfg.max_length``, ``template``, the selected step and the held-out
    within-item AUC: what every scorer and the evaluation's fall-back read back).

    A hand-written loop (AdamW, one-cycle schedule, clipping at 1.0). Inside an initialised
    ``torch.distributed`` process group (``cfg.launcher == "torchrun"``: ``grm.training.launch`` starts this
    function in ``nproc_per_node * nnodes`` processes) it trains under ``torch.nn.parallel.DDP``: every rank draws
    the same seeded global batch per step and trains on its rank-strided ``1 / world`` of it, DDP averages the
    gradients, the logged loss is the all-reduced mean, and rank 0 alone saves the model and scores the held-out
    split.

    Args:
        backbone_dir: HF causal-LM or classifier dir to initialise from (a new one-logit head is added).
        examples: ``{"text", "label", "id"}`` dicts, optionally ``source`` ("teacher" or "grm").
        out_dir: destination.
        cfg: training settings.
        num_threads: torch CPU threads (of each process).
        log_fn: optional ``(metrics: dict, step: int) -> None`` for training curves (launched: replayed from the
            returned curve when the ranks are done).
        template: the GRM prompt template of the judgements it rates (recorded; ``load_meta_scorer`` checks it).

    With ``cfg.select_every`` > 0 and a held-out split, the held-out within-item AUC is measured every that many
    steps (and at the end) and the best checkpoint is the one saved (``selected_step``; the first on ties).

    Returns:
        ``train_loss`` (last 20 steps), ``val_within_item_auc`` (the headline: MetaRM@k ranks samples of one item;
        over the held-out examples of ``source`` "grm", the guided GRM's, when there are any, else all of them),
        ``val_mixed_items`` (its items with both labels), ``val_within_item_auc_all`` (every held-out example, the
        teacher's too), ``val_auc`` (global), ``val_accuracy``, ``n_train``, ``n_val``, ``n_truncated``
        (inputs longer than ``cfg.max_length``), ``positive_rate``, ``selected_step``, ``steps``, ``n_pairs``
        (pairwise: training items with both labels), ``loss_curve`` and ``selection_curve`` (lists, not
        metrics); launched, also ``world_size`` and ``backend``.
    """
    labels = [e["label"] for e in examples]
    if len(set(labels)) < 2:
        raise ValueError(f"meta-RM data has only label {set(labels)}: it needs correct and incorrect judgements")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if cfg.launcher == "torchrun":  # grm.training.launch: this function in nproc_per_node * nnodes processes
        return _train_launched(backbone_dir, examples, out_dir, cfg, num_threads, log_fn, template)
    if num_threads:
        set_torch_threads(num_threads)
    run = _prepare(backbone_dir, examples, cfg)
    best, curve, n_pairs = _loop(run, cfg, log_fn)
    if best[2] is not None:
        run.model.load_state_dict(best[2])
    run.model.eval()
    metrics = _metrics(run, cfg, best, curve, n_pairs)
    if run.rank == 0:
        _save_and_score(run.model.to("cpu"), run.tokenizer, run.val, out_dir, cfg, metrics, template)
    if run.world > 1:
        import torch.distributed as dist

        dist.barrier()  # the other ranks end once rank 0 has published the model
    return metrics


def _metrics(run: _Run, cfg: MetaRMTrainConfig, best: tuple, curve: list, n_pairs: int) -> dict[str, Any]:
    """``train_meta_rm``'s returned figures before the held-out scoring (``_save_and_score`` fills the val ones)."""
    import numpy as np

    metrics: dict[str, Any] = {
        "train_loss": float(np.mean(run.losses[-20:])),
        "n_train": float(len(run.train)),
        "n_val": float(len(run.val)),
        "n_truncated": float(run.n_truncated),
        "positive_rate": float(np.mean([e["label"] for e in run.train])),
        "val_within_item_auc": float("nan"),
        "val_within_item_auc_all": float("nan"),
        "val_mixed_items": 0.0,
        "val_auc": float("nan"),
        "val_accuracy": float("nan"),
        "selected_step": float(best[1] if best[2] is not None else cfg.steps),
        "steps": cfg.steps,
        "loss_curve": run.losses,
        "selection_curve": curve,
    }
    if cfg.objective == "pairwise":
        metrics["n_pairs"] = float(n_pairs)
    return metrics


def _train_launched(
    backbone_dir: str | Path,
    examples: Sequence[dict[str, Any]],
    out_dir: Path,
    cfg: MetaRMTrainConfig,
    num_threads: int | None,
    log_fn: Any,
    template: str | None,
) -> dict[str, Any]:
    """``train_meta_rm`` in ``nproc_per_node * nnodes`` processes (``grm.training.launch``); the curves replayed."""
    import torch

    from grm.training.launch import run_launched

    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.launch.", dir=out_dir.parent))
    try:
        metrics = run_launched(
            "meta_rm", backbone_dir, {"examples": list(examples)}, out_dir, cfg, work, not torch.cuda.is_available(),
            num_threads=num_threads or 1, options={"num_threads": num_threads, "template": template},
        )  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for step in range(len(metrics["loss_curve"])):
        _log_curve(log_fn, metrics["loss_curve"], step)
    for step, auc in metrics.get("selection_curve", []):
        if log_fn is not None and not math.isnan(auc):
            log_fn({"meta_rm/val/within_item_auc": auc}, int(step))
    return metrics


def _prepare(backbone_dir: str | Path, examples: Sequence[dict[str, Any]], cfg: MetaRMTrainConfig) -> _Run:
    """The model with its new head on this rank's device (under DDP when a process group is up), the split and
    the token ids both halves train and score on."""
    import torch
    import torch.distributed as dist
    from transformers import AutoModelForSequenceClassification

    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    per_step = 2 * world if cfg.objective == "pairwise" else world  # pairwise: batch_size // 2 pairs per step
    if cfg.batch_size % per_step:
        raise ValueError(
            f"meta_rm.train.batch_size={cfg.batch_size}: must be divisible by {per_step} ({world} processes"
            + (", 2 examples per pair)" if cfg.objective == "pairwise" else ")")
        )
    on_gpu = distributed and dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    torch.manual_seed(seed_or_zero(cfg.seed))
    train, val = split_by_item(examples, cfg.val_fraction, seed_or_zero(cfg.seed))
    tokenizer = meta_rm.meta_tokenizer(backbone_dir)
    with expected_new_head():
        model = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    # DDP broadcasts rank 0's weights (the new head included) and averages the gradients in backward()
    net = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if on_gpu else None)
        if distributed
        else model
    )
    train_ids, cut = meta_rm.encode(tokenizer, [e["text"] for e in train], cfg.max_length)
    val_ids, val_cut = meta_rm.encode(tokenizer, [e["text"] for e in val], cfg.max_length)
    if cut + val_cut:
        log.warning(
            "meta RM: %d of %d training inputs are longer than meta_rm.train.max_length=%d and were left-truncated",
            cut + val_cut, len(examples), cfg.max_length,
        )  # fmt: skip
    return _Run(model, net, tokenizer, device, train, val, train_ids, val_ids, cut + val_cut, rank, world)


class _Objective:
    """One step's loss on this rank's share of a seeded global batch: BCE on ``batch_size`` examples (pointwise)
    or Bradley-Terry on ``batch_size // 2`` within-item pairs (pairwise). Every rank draws the same batch."""

    def __init__(self, run: _Run, cfg: MetaRMTrainConfig):
        import numpy as np
        import torch

        self.run, self.cfg = run, cfg
        self.rng = np.random.default_rng(seed_or_zero(cfg.seed))
        self.pairs = item_pairs(run.train) if cfg.objective == "pairwise" else []
        if cfg.objective == "pairwise" and not self.pairs:
            raise ValueError(
                "meta_rm.train.objective=pairwise: no training item has both a correct and a wrong sample; use "
                "the pointwise objective or more samples per item (meta_rm.grm_samples)"
            )
        pos_rate = float(np.mean([e["label"] for e in run.train]))
        pos_weight = torch.tensor((1 - pos_rate) / max(pos_rate, 1e-6), device=run.device) if cfg.balance else None
        self.bce = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def __call__(self) -> Any:
        import torch

        run = self.run
        if not self.pairs:
            picked = self.rng.integers(0, len(run.train), size=self.cfg.batch_size)  # the same on every rank
            mine = picked[run.rank :: run.world]
            labels = torch.tensor([float(run.train[i]["label"]) for i in mine], device=run.device)
            return self.bce(self._logits(list(mine)), labels)
        items = self.rng.integers(0, len(self.pairs), size=self.cfg.batch_size // 2)
        drawn = [(self._one(self.pairs[i][0]), self._one(self.pairs[i][1])) for i in items]
        mine = drawn[run.rank :: run.world]
        logits = self._logits([p for p, _ in mine] + [n for _, n in mine])
        return pairwise_loss(logits[: len(mine)], logits[len(mine) :])

    def _one(self, indices: list[int]) -> int:
        return indices[int(self.rng.integers(len(indices)))]

    def _logits(self, indices: list[int]) -> Any:
        run = self.run
        enc = run.tokenizer.pad({"input_ids": [run.train_ids[i] for i in indices]}, return_tensors="pt")
        return run.net(**enc.to(run.device)).logits[:, 0]


def _loop(run: _Run, cfg: MetaRMTrainConfig, log_fn: Any) -> tuple[tuple[float, int, dict | None], list, int]:
    """The optimizer steps, with the held-out selection every ``cfg.select_every``; returns the best checkpoint
    (within-item AUC, step, weights or None), the selection curve and the number of training pair items."""
    import torch
    import torch.distributed as dist

    objective = _Objective(run, cfg)
    opt = torch.optim.AdamW(run.net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=cfg.steps, pct_start=0.1)
    select = _Selection(run, cfg, log_fn)
    run.net.train()
    bar = Progress(cfg.steps, "meta-rm train", unit="step", enabled=run.rank == 0)
    for step in range(cfg.steps):
        loss = objective()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(run.net.parameters(), 1.0)
        opt.step()
        sched.step()
        logged = loss.detach()
        if run.world > 1:  # the global batch's loss: the mean of the ranks' (equal-sized) means
            dist.all_reduce(logged)
            logged = logged / run.world
        run.losses.append(float(logged))
        bar.update(loss=run.losses[-1])
        if run.rank == 0:
            _log_curve(log_fn, run.losses, step)
        select.maybe(step + 1)
    bar.close()
    return select.best, select.curve, len(objective.pairs)


class _Selection:
    """The checkpoint selection: the held-out within-item AUC on the guided GRM's samples (``source`` "grm" when
    there are any: the teacher's errors are easier to read than the policy's and would pick a checkpoint for the
    wrong model), every ``select_every`` steps and at the end; the best weights are kept (the first on ties)."""

    def __init__(self, run: _Run, cfg: MetaRMTrainConfig, log_fn: Any):
        self.run, self.cfg, self.log_fn = run, cfg, log_fn
        guided = [i for i, e in enumerate(run.val) if e.get("source") == "grm"] or list(range(len(run.val)))
        self.ids = [run.val_ids[i] for i in guided]
        self.labels, self.items = [run.val[i]["label"] for i in guided], [run.val[i]["id"] for i in guided]
        self.enabled = cfg.select_every > 0 and bool(run.val)
        self.best: tuple[float, int, dict | None] = (-1.0, 0, None)  # (within-item AUC, step, weights)
        self.curve: list[list[float]] = []

    def maybe(self, done: int) -> None:
        if not self.enabled or (done % self.cfg.select_every and done != self.cfg.steps):
            return
        model = self.run.model
        model.eval()  # every rank scores the same held-out split with the same weights: one decision
        scores = meta_rm.batch_logits(model, self.run.tokenizer, self.ids, 64, progress=False)
        auc, _ = meta_rm.within_item_auc(scores, self.labels, self.items)
        model.train()
        self.curve.append([done, auc])
        if self.run.rank == 0 and self.log_fn is not None and not math.isnan(auc):
            self.log_fn({"meta_rm/val/within_item_auc": auc}, done)
        if not math.isnan(auc) and auc > self.best[0]:
            self.best = (auc, done, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})


class _DropLoadReport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "LOAD REPORT" not in str(record.msg)


@contextmanager
def expected_new_head() -> Iterator[None]:
    """Drop transformers' LOAD REPORT (a WARNING) while a causal-LM backbone becomes a classifier: its
    ``score.weight`` is MISSING (the new head) and ``lm_head`` UNEXPECTED by design. Mismatched sizes and
    conversion errors still raise, and every other warning of that ``from_pretrained`` call still shows. A filter,
    not a level: transformers runs an extra tensor-parallel check (and warns) when its logger level is >= WARNING.
    """
    report = logging.getLogger("transformers.modeling_utils")  # from_pretrained passes its logger to the report
    drop = _DropLoadReport()
    report.addFilter(drop)
    try:
        yield
    finally:
        report.removeFilter(drop)


def _log_curve(log_fn: Any, losses: Sequence[float], step: int) -> None:
    """Every 10th step: the mean loss of the last 10 (``meta_rm/train/loss``)."""
    import numpy as np

    if log_fn is not None and (step + 1) % 10 == 0:
        log_fn({"meta_rm/train/loss": float(np.mean(losses[step - 9 : step + 1]))}, step + 1)


def _save_and_score(
    model: Any,
    tokenizer: Any,
    val: Sequence[dict[str, Any]],
    out_dir: Path,
    cfg: MetaRMTrainConfig,
    metrics: dict,
    template: str | None,
) -> None:
    """Save into a temp folder beside ``out_dir``, score the held-out split from it with the scorer every loader
    builds (``load_meta_scorer``), record the held-out within-item AUC in its ``meta_rm.json`` (the evaluation's
    fall-back reads it), then rename it into place."""
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    meta_rm.write_info(tmp, cfg.max_length, template, selected_step=int(metrics["selected_step"]))
    if val:
        probs = meta_rm.load_meta_scorer(tmp, template=template)([e["text"] for e in val])
        ys = [e["label"] for e in val]
        ids = [e["id"] for e in val]
        guided = [i for i, e in enumerate(val) if e.get("source") == "grm"] or list(range(len(val)))
        metrics["val_within_item_auc"], mixed = meta_rm.within_item_auc(
            [probs[i] for i in guided], [ys[i] for i in guided], [ids[i] for i in guided]
        )
        metrics["val_mixed_items"] = float(mixed)
        metrics["val_within_item_auc_all"] = meta_rm.within_item_auc(probs, ys, ids)[0]
        metrics["val_auc"] = roc_auc(probs, ys) if len(set(ys)) == 2 else float("nan")
        metrics["val_accuracy"] = float(np.mean([(p > 0.5) == bool(y) for p, y in zip(probs, ys, strict=True)]))
    auc = metrics["val_within_item_auc"]
    meta_rm.write_info(
        tmp, cfg.max_length, template, selected_step=int(metrics["selected_step"]), objective=cfg.objective,
        val_within_item_auc=None if math.isnan(auc) else round(float(auc), 6),
    )  # fmt: skip
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
