"""Meta RM (SPEC §6): a scalar classifier that rates sampled GRM judgements, and its batch scorer for voting.

Training pairs are (meta-RM template, sampled judgement) labelled by Eq. 10 correctness: the RFT-stage non-hinted
teacher samples plus samples of the trained GRM. The model is a sequence classifier with one logit trained with
binary cross-entropy; at inference its sigmoid is the meta score and meta-guided voting keeps the top k_meta.

The model folder holds ``meta_rm.json`` (``INFO_FILE``): the ``max_length`` it was trained with and the GRM template
whose judgements it rates. Training and scoring tokenise through one function (``encode``: left truncation at that
length), so a scorer sees the same tokens of an input that training saw; an input that does not fit is counted and
reported (``MetaScorer.truncated``, a warning), never cut silently. MetaRM@k only compares samples *of one item*, so
the held-out metric that selects the checkpoint is the within-item AUC (``within_item_auc``); the global AUC, which
a model that only learns item difficulty maximises, is kept beside it.
"""

from __future__ import annotations

import json
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
from grm.config import MetaRMTrainConfig, seed_or_zero
from grm.judging import ItemJudgement
from grm.model_files import check_model_dir, load_pretrained
from grm.progress import Progress
from grm.rft import Trajectory
from grm.schemas import Item
from grm.threads import set_torch_threads

log = logging.getLogger(__name__)

INFO_FILE = "meta_rm.json"  # beside the weights: what scoring must reproduce of training
LEGACY_MAX_LENGTH = 192  # meta_rm.train.max_length's default before the length was stored with the model


def examples_from_trajectories(
    items: Mapping[str, Item],
    trajectories: Sequence[Trajectory],
    include_hinted: bool = False,
    keep_parse_failures: bool = False,
) -> list[dict[str, Any]]:
    """Meta-RM pairs from rejective-sampling trajectories (non-hinted by default, as in the paper).

    Parse failures are left out unless ``keep_parse_failures``: at inference they never take a slot (only parsed
    samples are scored and voted), so as label-0 examples they only teach a format feature nobody asks about.
    """
    out = []
    for t in trajectories:
        if t.hinted and not include_hinted:
            continue
        if t.status != "ok" and not keep_parse_failures:
            continue
        item = items[t.id]
        shown = [item.responses[o] for o in t.order]
        out.append(
            {
                "text": prompts.render_meta_prompt(item.query, shown, t.completion),
                "label": int(t.correct),
                "id": t.id,
                "source": "teacher",
            }
        )
    return out


def examples_from_judgements(
    items: Sequence[Item], judgements: Sequence[ItemJudgement], keep_parse_failures: bool = False
) -> list[dict[str, Any]]:
    """Meta-RM pairs from the trained GRM's own samples (so the meta RM sees the policy it will guide); parse
    failures (``scores is None``) are left out unless ``keep_parse_failures`` (see ``examples_from_trajectories``)."""
    from grm.correctness import is_correct

    out = []
    for item, res in zip(items, judgements, strict=True):
        for s in res.samples:
            if s.scores is None and not keep_parse_failures:
                continue
            shown = [item.responses[o] for o in s.order]
            label = int(is_correct(s.scores, best=item.best, label=item.label))
            text = prompts.render_meta_prompt(item.query, shown, s.text)
            out.append({"text": text, "label": label, "id": item.id, "source": "grm"})
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


def within_item_auc(scores: Sequence[float], labels: Sequence[int], ids: Sequence[str]) -> tuple[float, int]:
    """P(a correct sample of an item scores above an incorrect sample of the same item), ties 1/2, pooled over
    the pairs of every item with both labels; and the number of such items. The only comparison MetaRM@k makes.

    Example:
        >>> within_item_auc([0.9, 0.1, 0.2, 0.8, 0.5], [1, 0, 1, 0, 1], ["a", "a", "b", "b", "c"])
        (0.5, 2)
    """
    by_item: dict[str, tuple[list[float], list[float]]] = {}
    for p, y, i in zip(scores, labels, ids, strict=True):
        by_item.setdefault(i, ([], []))[0 if y else 1].append(float(p))
    wins, pairs, mixed = 0.0, 0, 0
    for pos, neg in by_item.values():
        if pos and neg:
            mixed += 1
            pairs += len(pos) * len(neg)
            wins += sum(1.0 if x > z else 0.5 if x == z else 0.0 for x in pos for z in neg)
    return (wins / pairs if pairs else float("nan")), mixed


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


def encode(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[list[list[int]], int]:
    """The token ids of meta-RM inputs, as training and scoring both feed them: at most ``max_length`` tokens,
    left-truncated (the judgement is at the end). Also returns how many inputs were longer (and cut).

    Example (a character tokenizer that keeps the last 3):
        >>> class T:
        ...     def __call__(self, texts, truncation=False, max_length=None):
        ...         return {"input_ids": [[ord(c) for c in t][-max_length if truncation else 0 :] for t in texts]}
        >>> encode(T(), ["ab", "abcd"], 3)
        ([[97, 98], [98, 99, 100]], 1)
    """
    if not texts:
        return [], 0
    ids = tokenizer(list(texts))["input_ids"]
    long = [i for i, x in enumerate(ids) if len(x) > max_length]
    if long:  # re-tokenised with truncation, so special tokens (a BOS) stay as the tokenizer places them
        cut = tokenizer([texts[i] for i in long], truncation=True, max_length=max_length)["input_ids"]
        for i, x in zip(long, cut, strict=True):
            ids[i] = x
    return ids, len(long)


def write_info(model_dir: str | Path, max_length: int, template: str | None, **extra: Any) -> None:
    """Record what scoring must reproduce of training (``INFO_FILE``)."""
    info = {"max_length": int(max_length), "truncation_side": "left", "grm_template": template, **extra}
    Path(model_dir, INFO_FILE).write_text(json.dumps(info, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def read_info(model_dir: str | Path) -> dict[str, Any]:
    """The meta RM's ``INFO_FILE``; a folder trained before it existed reads as ``max_length`` 192 (the then
    default) with a warning, and an unreadable file is an error that names it."""
    path = Path(model_dir, INFO_FILE)
    if not path.exists():
        log.warning(
            "%s: no %s (a meta RM trained before the length was stored); scoring at max_length=%d, the then "
            "default; retrain it to record its own", model_dir, INFO_FILE, LEGACY_MAX_LENGTH,
        )  # fmt: skip
        return {"max_length": LEGACY_MAX_LENGTH, "truncation_side": "left", "grm_template": None}
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        if not (isinstance(info.get("max_length"), int) and info["max_length"] > 0):
            raise ValueError("max_length must be a positive integer")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{path}: {e}; retrain the meta RM or restore this file") from e
    return info


class MetaScorer:
    """Batch scorer: meta-RM prompts -> probability that each judgement is correct, at the ``max_length`` the
    model was trained with (``read_info``). ``truncated`` counts the inputs cut so far (each call warns)."""

    def __init__(self, model_dir: str | Path, batch_size: int = 32, num_threads: int | None = None):
        from transformers import AutoModelForSequenceClassification

        if num_threads:
            set_torch_threads(num_threads)
        self.info = read_info(model_dir)
        self.tokenizer = _meta_tokenizer(model_dir)
        self.model = load_pretrained(
            AutoModelForSequenceClassification, model_dir, role="meta RM", use_safetensors=True
        ).eval()  # strict: a GRM folder, a missing head or NaN weights are refused, not loaded with random weights
        self.batch_size = batch_size
        self.max_length: int = self.info["max_length"]
        self.truncated = 0
        self.scored = 0

    def logits(self, texts: Sequence[str]) -> list[float]:
        """One logit per text, in input order. Texts are batched shortest first, so a batch pads to a length near
        its own (1.27-1.31x faster on eval-like texts of 89-149 tokens, logits equal to 1e-5; the padding is
        masked, so only float noise follows the batching)."""
        ids, cut = encode(self.tokenizer, texts, self.max_length)
        self.truncated += cut
        self.scored += len(ids)
        if cut:
            log.warning(
                "meta RM: %d of %d inputs are longer than the max_length=%d it was trained with and were "
                "left-truncated (as in training); train with a larger meta_rm.train.max_length to see them whole",
                cut, len(ids), self.max_length,
            )  # fmt: skip
        return _logits(self.model, self.tokenizer, ids, self.batch_size)

    def __call__(self, texts: list[str]) -> list[float]:
        return [1.0 / (1.0 + math.exp(-x)) for x in self.logits(texts)]


def _logits(model: Any, tokenizer: Any, ids: Sequence[list[int]], batch_size: int, progress: bool = True) -> list:
    """The model's logit for each token-id list (shortest first in batches of ``batch_size``), in input order."""
    import torch

    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = [0.0] * len(ids)
    bar = Progress(len(ids), "meta-rm scoring", unit="text", enabled=progress)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            enc = tokenizer.pad({"input_ids": [ids[i] for i in batch]}, return_tensors="pt").to(device)
            for i, logit in zip(batch, model(**enc).logits[:, 0].float().tolist(), strict=True):
                out[i] = logit
            bar.update(len(batch))
    bar.close()
    return out


def load_meta_scorer(model_dir: str | Path, template: str | None = None, **kwargs: Any) -> MetaScorer:
    """Load a trained meta RM as a batch scorer for ``judging.judge_items(meta_scorer=...)``: the one loader of
    every MetaRM@k (pipeline, ``grm eval``, ``grm serve``, the MLflow pyfunc). ``template``: the GRM template of
    the judgements it will rate; a meta RM that recorded another one is refused."""
    path = Path(model_dir)
    trained = read_info(path).get("grm_template") if path.is_dir() else None  # the cheap refusal first
    if template is not None and trained is not None and trained != template:
        raise ValueError(
            f"{path}: this meta RM rates judgements of the {trained!r} template, not {template!r}; use the "
            f"{trained!r} template or a meta RM trained on {template!r} judgements"
        )
    path = check_model_dir(path)  # missing/pickle-only/truncated weights, FIFOs: named before loading
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
    cfg: MetaRMTrainConfig,
    num_threads: int | None = None,
    log_fn: Any = None,
    template: str | None = None,
) -> dict[str, Any]:
    """Train a one-logit sequence classifier with BCE and save it (safetensors) to ``out_dir`` atomically, with
    ``meta_rm.json`` (``write_info``: ``cfg.max_length`` and ``template``, what every scorer reads back).

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
        template: the GRM prompt template of the judgements it rates (recorded; ``load_meta_scorer`` checks it).

    ``examples`` may carry ``source`` ("teacher" or "grm"). With ``cfg.select_every`` > 0 and a held-out split,
    the held-out within-item AUC (``val_within_item_auc``) is measured every that many steps (and at the end) and
    the best checkpoint is the one saved (``selected_step``; the first on ties).

    Returns:
        ``train_loss`` (last 20 steps), ``val_within_item_auc`` (the headline: MetaRM@k ranks samples of one item;
        over the held-out examples of ``source`` "grm", the guided GRM's, when there are any, else all of them),
        ``val_mixed_items`` (its items with both labels), ``val_within_item_auc_all`` (every held-out example, the
        teacher's too), ``val_auc`` (global), ``val_accuracy``, ``n_train``, ``n_val``, ``n_truncated``
        (inputs longer than ``cfg.max_length``), ``positive_rate``, ``selected_step``, ``steps`` and
        ``loss_curve`` (every step's loss; a list, not a metric); launched, also ``world_size`` and ``backend``.
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
    train_ids, cut = encode(tokenizer, [e["text"] for e in train], cfg.max_length)
    val_ids, val_cut = encode(tokenizer, [e["text"] for e in val], cfg.max_length)
    if cut + val_cut:
        log.warning(
            "meta RM: %d of %d training inputs are longer than meta_rm.train.max_length=%d and were left-truncated",
            cut + val_cut, len(examples), cfg.max_length,
        )  # fmt: skip
    # the selection signal: the held-out samples of the guided GRM (``source`` "grm") when there are any, since the
    # teacher's errors are easier to read than the policy's and would pick a checkpoint for the wrong model
    guided = [i for i, e in enumerate(val) if e.get("source") == "grm"] or list(range(len(val)))
    sel_ids = [val_ids[i] for i in guided]
    sel_labels, sel_items = [val[i]["label"] for i in guided], [val[i]["id"] for i in guided]
    selecting = cfg.select_every > 0 and bool(val)
    best: tuple[float, int, dict | None] = (-1.0, 0, None)  # (within-item AUC, step, weights)
    curve: list[list[float]] = []
    rng = np.random.default_rng(seed_or_zero(cfg.seed))
    losses: list[float] = []
    net.train()
    bar = Progress(cfg.steps, "meta-rm train", unit="step", enabled=rank == 0)
    for step in range(cfg.steps):
        picked = rng.integers(0, len(train), size=cfg.batch_size)  # the same global batch on every rank
        mine = picked[rank::world]  # this rank's share
        enc = tokenizer.pad({"input_ids": [train_ids[i] for i in mine]}, return_tensors="pt").to(device)
        logits = net(**enc).logits[:, 0]
        loss = loss_fn(logits, torch.tensor([float(train[i]["label"]) for i in mine], device=device))
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
        if selecting and ((step + 1) % cfg.select_every == 0 or step + 1 == cfg.steps):
            model.eval()  # every rank scores the same held-out split with the same weights: one decision
            auc, _ = within_item_auc(_logits(model, tokenizer, sel_ids, 64, progress=False), sel_labels, sel_items)
            model.train()
            curve.append([step + 1, auc])
            if rank == 0 and log_fn is not None and not math.isnan(auc):
                log_fn({"meta_rm/val/within_item_auc": auc}, step + 1)
            if not math.isnan(auc) and auc > best[0]:
                best = (auc, step + 1, {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()})
    bar.close()
    if best[2] is not None:
        model.load_state_dict(best[2])
    model.eval()
    metrics: dict[str, Any] = {
        "train_loss": float(np.mean(losses[-20:])),
        "n_train": float(len(train)),
        "n_val": float(len(val)),
        "n_truncated": float(cut + val_cut),
        "positive_rate": pos_rate,
        "val_within_item_auc": float("nan"),
        "val_within_item_auc_all": float("nan"),
        "val_mixed_items": 0.0,
        "val_auc": float("nan"),
        "val_accuracy": float("nan"),
        "selected_step": float(best[1] if best[2] is not None else cfg.steps),
        "steps": cfg.steps,
        "loss_curve": losses,
        "selection_curve": curve,
    }
    if rank == 0:
        _save_and_score(model.to("cpu"), tokenizer, val, out_dir, cfg, metrics, template)
    if distributed:
        dist.barrier()  # the other ranks end once rank 0 has published the model
    return metrics


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
    builds (``load_meta_scorer``), then rename it into place."""
    import numpy as np

    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    write_info(tmp, cfg.max_length, template, selected_step=int(metrics["selected_step"]))
    if val:
        probs = load_meta_scorer(tmp, template=template)([e["text"] for e in val])
        ys = [e["label"] for e in val]
        ids = [e["id"] for e in val]
        guided = [i for i, e in enumerate(val) if e.get("source") == "grm"] or list(range(len(val)))
        metrics["val_within_item_auc"], mixed = within_item_auc(
            [probs[i] for i in guided], [ys[i] for i in guided], [ids[i] for i in guided]
        )
        metrics["val_mixed_items"] = float(mixed)
        metrics["val_within_item_auc_all"] = within_item_auc(probs, ys, ids)[0]
        metrics["val_auc"] = roc_auc(probs, ys) if len(set(ys)) == 2 else float("nan")
        metrics["val_accuracy"] = float(np.mean([(p > 0.5) == bool(y) for p, y in zip(probs, ys, strict=True)]))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
