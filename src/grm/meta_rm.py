"""Meta RM (SPEC §6): a scalar classifier that rates sampled GRM judgements: its data, and its batch scorer for
voting (the training is ``grm.training.meta_rm_train``).

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grm.method import prompts
from grm.method.judging import ItemJudgement
from grm.model_files import check_model_dir, load_pretrained
from grm.progress import Progress
from grm.schemas import Item
from grm.threads import set_torch_threads

log = logging.getLogger(__name__)

INFO_FILE = "meta_rm.json"  # beside the weights: what scoring must reproduce of training
LEGACY_MAX_LENGTH = 192  # meta_rm.train.max_length's default before the length was stored with the model


def examples_from_judgements(
    items: Sequence[Item], judgements: Sequence[ItemJudgement], keep_parse_failures: bool = False
) -> list[dict[str, Any]]:
    """Meta-RM pairs from the trained GRM's own samples (so the meta RM sees the policy it will guide); parse
    failures (``scores is None``) are left out unless ``keep_parse_failures`` (see ``grm.training.rft.examples_from_trajectories``)."""
    from grm.method.correctness import is_correct

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


def meta_tokenizer(model_dir: str | Path) -> Any:
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
        self.tokenizer = meta_tokenizer(model_dir)
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
        return batch_logits(self.model, self.tokenizer, ids, self.batch_size)

    def __call__(self, texts: list[str]) -> list[float]:
        return [1.0 / (1.0 + math.exp(-x)) for x in self.logits(texts)]


def batch_logits(model: Any, tokenizer: Any, ids: Sequence[list[int]], batch_size: int, progress: bool = True) -> list:
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
