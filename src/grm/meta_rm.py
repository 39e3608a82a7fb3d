"""Meta RM (SPEC §6): a scalar classifier that rates sampled GRM judgements, and its batch scorer for voting.

Training pairs are (meta-RM template, sampled judgement) labelled by Eq. 10 correctness: the RFT-stage non-hinted
teacher samples plus samples of the trained GRM. The model is a sequence classifier with one logit trained with
binary cross-entropy; at inference its sigmoid is the meta score and meta-guided voting keeps the top k_meta.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from grm import prompts
from grm.benchmarks.scoring import roc_auc  # one ROC-AUC (Mann-Whitney, ties 1/2) for the project
from grm.judging import ItemJudgement
from grm.model_files import check_model_dir, load_pretrained
from grm.pipeline_config import MetaRMConfig, seed_or_zero
from grm.progress import Progress
from grm.rft import Trajectory
from grm.schemas import Item
from grm.threads import set_torch_threads

log = logging.getLogger(__name__)


def examples_from_trajectories(
    items: Mapping[str, Item], trajectories: Sequence[Trajectory], include_hinted: bool = False
) -> list[dict[str, Any]]:
    """Meta-RM pairs from rejective-sampling trajectories (non-hinted by default, as in the paper)."""
    out = []
    for t in trajectories:
        if t.hinted and not include_hinted:
            continue
        item = items[t.id]
        shown = [item.responses[o] for o in t.order]
        out.append(
            {"text": prompts.render_meta_prompt(item.query, shown, t.completion), "label": int(t.correct), "id": t.id}
        )
    return out


def examples_from_judgements(items: Sequence[Item], judgements: Sequence[ItemJudgement]) -> list[dict[str, Any]]:
    """Meta-RM pairs from the trained GRM's own samples (so the meta RM sees the policy it will guide)."""
    from grm.correctness import is_correct

    out = []
    for item, res in zip(items, judgements, strict=True):
        for s in res.samples:
            shown = [item.responses[o] for o in s.order]
            label = int(is_correct(s.scores, best=item.best, label=item.label))
            out.append({"text": prompts.render_meta_prompt(item.query, shown, s.text), "label": label, "id": item.id})
    return out


def mixed_item_ids(examples: Sequence[dict[str, Any]]) -> set[str]:
    """Ids of the items that have both a correct and an incorrect judgement among ``examples``.

    An item whose samples are all right (or all wrong) only teaches the meta RM that the item is easy (or hard);
    meta-guided voting ranks samples *of one item*, so the contrast inside an item is the useful signal.

    Example:
        >>> mixed_item_ids([{"id": "a", "label": 1}, {"id": "a", "label": 0}, {"id": "b", "label": 1}])
        {'a'}
    """
    labels: dict[str, set[int]] = {}
    for e in examples:
        labels.setdefault(e["id"], set()).add(int(e["label"]))
    return {item_id for item_id, seen in labels.items() if len(seen) == 2}


def _split(examples: Sequence[dict[str, Any]], frac: float, seed: int) -> tuple[list, list]:
    """Split by item id so the held-out AUC is measured on unseen items."""
    import numpy as np

    ids = sorted({e["id"] for e in examples})
    rng = np.random.default_rng(seed)
    held = set(rng.choice(ids, size=int(len(ids) * frac), replace=False).tolist()) if frac > 0 else set()
    return [e for e in examples if e["id"] not in held], [e for e in examples if e["id"] in held]


def _meta_tokenizer(model_dir: str | Path) -> Any:
    """The tokenizer as training and scoring both use it: left truncation keeps the judgement (it is at the end)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.truncation_side = "left"
    tokenizer.padding_side = "left"
    return tokenizer


class MetaScorer:
    """Batch scorer: meta-RM prompts -> probability that each judgement is correct."""

    def __init__(
        self, model_dir: str | Path, batch_size: int = 32, max_length: int = 256, num_threads: int | None = None
    ):
        from transformers import AutoModelForSequenceClassification

        if num_threads:
            set_torch_threads(num_threads)
        self.tokenizer = _meta_tokenizer(model_dir)
        self.model = load_pretrained(
            AutoModelForSequenceClassification, model_dir, role="meta RM", use_safetensors=True
        ).eval()  # strict: a GRM folder, a missing head or NaN weights are refused, not loaded with random weights
        self.batch_size = batch_size
        self.max_length = max_length

    def logits(self, texts: Sequence[str]) -> list[float]:
        """One logit per text, in input order. Texts are batched shortest first, so a batch pads to a length near
        its own (1.27-1.31x faster on eval-like texts of 89-149 tokens, logits equal to 1e-5; the padding is
        masked, so only float noise follows the batching)."""
        import torch

        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = [0.0] * len(ids)
        bar = Progress(len(ids), "meta-rm scoring", unit="text")
        with torch.no_grad():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                enc = self.tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt")
                for i, logit in zip(batch, self.model(**enc).logits[:, 0].float().tolist(), strict=True):
                    out[i] = logit
                bar.update(len(batch))
        bar.close()
        return out

    def __call__(self, texts: list[str]) -> list[float]:
        return [1.0 / (1.0 + math.exp(-x)) for x in self.logits(texts)]


def load_meta_scorer(model_dir: str | Path, **kwargs: Any) -> MetaScorer:
    """Load a trained meta RM as a batch scorer for ``judging.judge_items(meta_scorer=...)``."""
    path = check_model_dir(model_dir)  # missing/pickle-only/truncated weights, FIFOs: named before loading
    return MetaScorer(path, **kwargs)


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


def train_meta_rm(
    backbone_dir: str | Path,
    examples: Sequence[dict[str, Any]],
    out_dir: str | Path,
    cfg: MetaRMConfig,
    num_threads: int | None = None,
    log_fn: Any = None,
) -> dict[str, Any]:
    """Train a one-logit sequence classifier with BCE and save it (safetensors) to ``out_dir`` atomically.

    A hand-written loop (AdamW, one-cycle schedule, clipping at 1.0). Inside an initialised
    ``torch.distributed`` process group (``cfg.launcher == "torchrun"``: ``grm.training.launch`` starts this
    function in ``nproc_per_node * nnodes`` processes) it trains under ``torch.nn.parallel.DDP``: every rank draws
    the same seeded ``cfg.batch_size`` indices per step and trains on its rank-strided ``1 / world`` of them, DDP
    averages the gradients (the mean of the ranks' mean losses = the global batch's mean loss), the logged loss is
    the all-reduced mean, and rank 0 alone saves the model and scores the held-out split.

    Args:
        backbone_dir: HF causal-LM or classifier dir to initialise from (a new one-logit head is added).
        examples: ``{"text", "label", "id"}`` dicts.
        out_dir: destination.
        cfg: training settings.
        num_threads: torch CPU threads (of each process).
        log_fn: optional ``(metrics: dict, step: int) -> None`` for training curves (launched: replayed from the
            returned curve when the ranks are done).

    Returns:
        ``train_loss`` (last 20 steps), ``val_auc``, ``val_accuracy``, ``n_train``, ``n_val``, ``positive_rate``,
        ``steps`` and ``loss_curve`` (every step's loss; a list, not a metric); launched, also ``world_size`` and
        ``backend``.
    """
    import numpy as np
    import torch
    import torch.distributed as dist

    labels = [e["label"] for e in examples]
    if len(set(labels)) < 2:
        raise ValueError(f"meta-RM data has only label {set(labels)}: it needs correct and incorrect judgements")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if cfg.launcher == "torchrun":  # grm.training.launch: this function in nproc_per_node * nnodes processes
        from grm.training.launch import run_launched

        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.launch.", dir=out_dir.parent))
        try:
            metrics = run_launched(
                "meta_rm", backbone_dir, {"examples": examples}, out_dir, cfg, work, not torch.cuda.is_available(),
                num_threads=num_threads or 1, options={"num_threads": num_threads},
            )  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for step in range(len(metrics["loss_curve"])):
            _log_curve(log_fn, metrics["loss_curve"], step)
        return metrics
    from transformers import AutoModelForSequenceClassification

    if num_threads:
        set_torch_threads(num_threads)
    distributed = dist.is_available() and dist.is_initialized()
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    if cfg.batch_size % world:
        raise ValueError(f"meta_rm.train.batch_size={cfg.batch_size}: must be divisible by the {world} processes")
    on_gpu = distributed and dist.get_backend() == "nccl"
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    torch.manual_seed(seed_or_zero(cfg.seed))
    train, val = _split(examples, cfg.val_fraction, seed_or_zero(cfg.seed))
    tokenizer = _meta_tokenizer(backbone_dir)
    with expected_new_head():
        model = AutoModelForSequenceClassification.from_pretrained(backbone_dir, num_labels=1, use_safetensors=True)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    pos_rate = float(np.mean([e["label"] for e in train]))
    pos_weight = torch.tensor((1 - pos_rate) / max(pos_rate, 1e-6), device=device) if cfg.balance else None
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    # DDP broadcasts rank 0's weights (the new head included) and averages the gradients in backward()
    net = (
        torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if on_gpu else None)
        if distributed
        else model
    )
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=cfg.steps, pct_start=0.1)
    rng = np.random.default_rng(seed_or_zero(cfg.seed))
    losses: list[float] = []
    net.train()
    bar = Progress(cfg.steps, "meta-rm train", unit="step", enabled=rank == 0)
    for step in range(cfg.steps):
        picked = rng.integers(0, len(train), size=cfg.batch_size)  # the same global batch on every rank
        batch = [train[i] for i in picked[rank::world]]  # this rank's share
        enc = tokenizer(
            [b["text"] for b in batch], return_tensors="pt", padding=True, truncation=True, max_length=cfg.max_length
        ).to(device)
        logits = net(**enc).logits[:, 0]
        loss = loss_fn(logits, torch.tensor([float(b["label"]) for b in batch], device=device))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        logged = loss.detach()
        if distributed:  # the global batch's loss: the mean of the ranks' (equal-sized) means
            dist.all_reduce(logged)
            logged = logged / world
        losses.append(float(logged))
        bar.update(loss=losses[-1])
        if rank == 0:
            _log_curve(log_fn, losses, step)
    bar.close()
    model.eval()
    metrics: dict[str, Any] = {
        "train_loss": float(np.mean(losses[-20:])),
        "n_train": float(len(train)),
        "n_val": float(len(val)),
        "positive_rate": pos_rate,
        "val_auc": float("nan"),
        "val_accuracy": float("nan"),
        "steps": cfg.steps,
        "loss_curve": losses,
    }
    if rank == 0:
        _save_and_score(model.to("cpu"), tokenizer, val, out_dir, cfg, metrics)
    if distributed:
        dist.barrier()  # the other ranks end once rank 0 has published the model
    return metrics


def _log_curve(log_fn: Any, losses: Sequence[float], step: int) -> None:
    """Every 10th step: the mean loss of the last 10 (``meta_rm/train/loss``)."""
    import numpy as np

    if log_fn is not None and (step + 1) % 10 == 0:
        log_fn({"meta_rm/train/loss": float(np.mean(losses[step - 9 : step + 1]))}, step + 1)


def _save_and_score(
    model: Any, tokenizer: Any, val: Sequence[dict[str, Any]], out_dir: Path, cfg: MetaRMConfig, metrics: dict
) -> None:
    """Save into a temp folder beside ``out_dir``, score the held-out split from it, then rename it into place."""
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if val:
        scorer = MetaScorer(tmp, max_length=cfg.max_length)
        probs = scorer([e["text"] for e in val])
        ys = [e["label"] for e in val]
        metrics["val_auc"] = roc_auc(probs, ys)
        metrics["val_accuracy"] = float(np.mean([(p > 0.5) == bool(y) for p, y in zip(probs, ys, strict=True)]))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
