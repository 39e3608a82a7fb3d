"""Judge items with any sampler: seeded shuffles, one generation per sample, parsing, and the per-sample record.

Aggregation into verdicts (greedy, Voting@k, MetaRM@k) lives in ``grm.method.verdicts``; this module only produces the
samples, so several k can be read from one set of k_max samples (Voting@k uses the first k samples).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from grm.method import parsing, prompts, voting
from grm.sampling.base import Sampler
from grm.schemas import Item

log = logging.getLogger(__name__)


@dataclass
class SampleJudgement:
    """One sampled judgement of one item."""

    order: list[int]  # order[pos] = original index of the response shown at position pos
    text: str  # the generated text only
    scores: list[int] | None  # parsed scores mapped back to the ORIGINAL response order; None on failure
    status: str  # "ok" or a parsing failure reason
    meta_score: float | None = None  # filled by a meta RM


@dataclass
class ItemJudgement:
    """All samples of one item, plus the ground truth needed to score them."""

    id: str
    n: int
    best: int | None
    label: int | None
    single_label: bool
    samples: list[SampleJudgement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> ItemJudgement:
        samples = [SampleJudgement(**s) for s in record["samples"]]
        return cls(**{**record, "samples": samples})


@dataclass(frozen=True)
class Request:
    item_index: int
    sample_index: int
    order: tuple[int, ...]
    prompt: str


def build_requests(
    items: Sequence[Item],
    k: int,
    seed: int,
    template: str = "deepseek-grm",
    shuffle: bool = True,
    single_label: bool = False,
    hint: bool = False,
) -> list[Request]:
    """The k prompts per item, each with its own seeded response order.

    Args:
        items: items to judge.
        k: samples per item.
        seed: base seed; sample j of item i uses ``shuffle_order(n, seed, item.id, j)``.
        template: prompt template name.
        shuffle: False keeps the original order (greedy evaluation).
        single_label: render n = 1 items with the 0/1 single-response template (training data).
        hint: append ``The best response is: Response j`` (rejective sampling's hinted pass; n >= 2 only).
    """
    requests = []
    for i, item in enumerate(items):
        for j in range(k):
            order = voting.shuffle_order(item.n, seed, item.id, j) if shuffle else list(range(item.n))
            shown = [item.responses[o] for o in order]
            hint_pos = order.index(item.best) + 1 if hint and item.best is not None else None
            prompt = prompts.render_prompt(
                item.query, shown, template=template, hint=hint_pos, single_label=single_label and item.n == 1
            )
            requests.append(Request(i, j, tuple(order), prompt))
    return requests


def sample_requests(
    requests: Sequence[Request],
    sampler: Sampler,
    temperature: float,
    max_new_tokens: int,
    seed: int,
) -> list[str]:
    """Generate one text per request. Identical prompts are sent once with ``n`` = their count, so a backend
    that shares the prefill across the n samples of a prompt (HF, vLLM) prefills each distinct prompt once."""
    groups: dict[str, list[int]] = defaultdict(list)
    for idx, req in enumerate(requests):
        groups[req.prompt].append(idx)
    by_count: dict[int, list[str]] = defaultdict(list)
    for prompt, idxs in groups.items():
        by_count[len(idxs)].append(prompt)
    texts: list[str | None] = [None] * len(requests)
    for count, prompt_list in sorted(by_count.items()):
        outputs = sampler.generate(prompt_list, count, temperature, max_new_tokens, voting.derive_seed(seed, count))
        if len(outputs) != len(prompt_list):
            raise RuntimeError(f"sampler returned {len(outputs)} outputs for {len(prompt_list)} prompts")
        for prompt, outs in zip(prompt_list, outputs, strict=True):
            if len(outs) != count:
                raise RuntimeError(f"sampler returned {len(outs)} samples, {count} were asked for")
            for idx, text in zip(groups[prompt], outs, strict=True):
                texts[idx] = text
    return [t if t is not None else "" for t in texts]


def parse_sample(text: str, order: Sequence[int], single_label: bool) -> SampleJudgement:
    """Parse one generated text and map its scores back to the original response order."""
    low, high = prompts.score_range(single_label)
    result = parsing.extract_scores(text, len(order), low, high)
    if not result.ok:
        return SampleJudgement(list(order), text, None, result.error or "missing")
    return SampleJudgement(list(order), text, voting.unshuffle_scores(result.scores, order), "ok")


def judge_items(
    items: Sequence[Item],
    sampler: Sampler,
    *,
    k: int,
    temperature: float,
    max_new_tokens: int,
    seed: int,
    template: str = "deepseek-grm",
    shuffle: bool = True,
    single_label: bool = False,
    hint: bool = False,
    meta_scorer: Callable[[list[str]], list[float]] | None = None,
) -> list[ItemJudgement]:
    """Sample ``k`` judgements per item and parse them.

    Args:
        items: the items (ground truth is copied into the result for scoring).
        sampler: any ``Sampler``.
        k: samples per item (greedy: k=1, temperature=0, shuffle=False).
        temperature / max_new_tokens / seed: generation settings; the seed also fixes every shuffle.
        template: prompt template name (``deepseek-grm`` or ``compact``).
        shuffle: shuffle the response order per sample (voting); False keeps the original order.
        single_label: n = 1 items use the 0/1 single-response template (training); else 1..10.
        hint: append the best response's position (rejective sampling's hinted pass).
        meta_scorer: optional batch meta RM, ``meta-RM prompts -> scores`` (SPEC §8.3); the score of every
            parsed sample is stored on it (parse failures keep ``None`` and never take a meta-RM slot).

    Returns:
        One ``ItemJudgement`` per item, samples in sample order.
    """
    check_items = getattr(sampler, "check_items", None)
    if callable(check_items):  # a backend that cannot handle some rows refuses them here, naming the items
        check_items(items, template)
    requests = build_requests(items, k, seed, template, shuffle, single_label, hint)
    texts = sample_requests(requests, sampler, temperature, max_new_tokens, seed)
    results = [ItemJudgement(it.id, it.n, it.best, it.label, single_label and it.n == 1) for it in items]
    for req, text in zip(requests, texts, strict=True):
        res = results[req.item_index]
        results[req.item_index].samples.append(parse_sample(text, req.order, res.single_label))
    if meta_scorer is not None:
        attach_meta_scores(items, results, meta_scorer)
    return results


def meta_prompt(item: Item, sample: SampleJudgement) -> str:
    """The meta-RM input for one sample: the responses in the order that sample saw, then its text."""
    return prompts.render_meta_prompt(item.query, [item.responses[o] for o in sample.order], sample.text)


def attach_meta_scores(
    items: Sequence[Item], results: Sequence[ItemJudgement], meta_scorer: Callable[[list[str]], list[float]]
) -> None:
    """Score every parsed sample with a batch meta RM, in place."""
    todo = [(it, s) for it, res in zip(items, results, strict=True) for s in res.samples if s.scores is not None]
    scores = meta_scorer([meta_prompt(it, s) for it, s in todo]) if todo else []
    for (_, sample), score in zip(todo, scores, strict=True):
        sample.meta_score = float(score)
