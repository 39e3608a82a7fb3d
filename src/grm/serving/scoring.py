"""Reward scoring for the server, without any web framework: jobs, work units, sampling across jobs, verdicts.

A **job** is one request's items with its settings. It is cut into **units**: one distinct GRM prompt and how many
samples it needs (the k samples of an n = 1 item share one prompt, so they share one prefill; n >= 2 samples each
have their own shuffled order). The engine runs units of several jobs in one sampler call when their call key
``(temperature, max_new_tokens, call seed, count)`` is equal, which is exactly how ``grm.method.judging.sample_requests``
calls the sampler for one job alone: on a backend whose output depends only on (seed, prompt, sample index) (the
world teacher, vLLM with per-request seeds) a job's result does not depend on what it was batched with.

Scores: ``votes`` = the summed parsed scores of the voting samples (all parsed ones for Voting@k, the top ``k_meta``
by meta-RM score for MetaRM@k), ``scores`` = ``votes / n_voted`` (the mean, on the 1..10 scale), ``best`` = the
argmax with a seeded tie-break. A sample that fails to parse votes for nothing and is counted in
``parse_failures``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from grm.method import judging, prompts, voting
from grm.method.judging import SampleJudgement
from grm.sampling.base import Sampler
from grm.schemas import Item

MetaScorer = Callable[[list[str]], list[float]]
CallKey = tuple[float, int, int, int]  # temperature, max_new_tokens, call seed, samples per prompt


@dataclass(frozen=True)
class ScoreSettings:
    """The resolved generation and voting settings of one request."""

    k: int
    k_meta: int | None  # None: Voting@k; an int: MetaRM@k keeping that many samples
    temperature: float
    seed: int
    max_new_tokens: int
    return_samples: bool = False
    principle_mode: str = "default"  # "default" or "query_only" (principles generated once per query)

    @property
    def method(self) -> str:
        return "voting" if self.k_meta is None else "metarm"


def item_key(query: Any, responses: Sequence[str]) -> str:
    """A content id for an item: its shuffles depend on the content, not on a caller's id (same input, same
    shuffles)."""
    blob = json.dumps([query, list(responses)], ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def make_item(query: Any, responses: Sequence[str]) -> Item:
    """An unlabelled ``Item`` for judging (``best``/``label`` are placeholders: serving never grades)."""
    q = tuple({"role": m["role"], "content": m["content"]} for m in query) if isinstance(query, list) else query
    many = len(responses) > 1
    return Item(item_key(query, responses), q, tuple(responses), best=0 if many else None, label=None if many else 0)


@dataclass
class Unit:
    """One distinct prompt of a job and the request indices its ``count`` samples fill."""

    job: Job
    key: CallKey
    prompt: str
    slots: list[int]

    @property
    def count(self) -> int:
        return len(self.slots)


@dataclass(eq=False)
class Job:
    """One request's items, its settings, its units and (once sampled) its texts."""

    items: list[Item]
    ids: list[str | None]
    settings: ScoreSettings
    template: str
    requests: list[judging.Request] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    next_unit: int = 0
    cancelled: bool = False
    principles: list[str | None] | None = None  # per item: written into its prompts (``prompts.with_principles``)

    def __post_init__(self) -> None:
        s = self.settings
        self.requests = judging.build_requests(self.items, s.k, s.seed, self.template, shuffle=True)
        if self.principles is not None:
            given = self.principles
            self.requests = [
                r
                if given[r.item_index] is None
                else replace(r, prompt=prompts.with_principles(r.prompt, given[r.item_index]))
                for r in self.requests
            ]
        self.texts = [None] * len(self.requests)
        groups: dict[str, list[int]] = defaultdict(list)
        for idx, req in enumerate(self.requests):
            groups[req.prompt].append(idx)
        for prompt, slots in groups.items():
            count = len(slots)
            key = (s.temperature, s.max_new_tokens, voting.derive_seed(s.seed, count), count)
            self.units.append(Unit(self, key, prompt, slots))

    @property
    def samples(self) -> int:
        """Generations this job needs in all."""
        return len(self.requests)

    @property
    def remaining_samples(self) -> int:
        return sum(u.count for u in self.units[self.next_unit :])

    @property
    def done_sampling(self) -> bool:
        return self.next_unit >= len(self.units) and all(t is not None for t in self.texts)


def sample_units(sampler: Sampler, units: Sequence[Unit]) -> None:
    """Generate every unit's samples, one sampler call per call key, and store the texts on their jobs.

    Raises:
        RuntimeError: the sampler returned a wrong shape.
    """
    by_key: dict[CallKey, list[Unit]] = defaultdict(list)
    for unit in units:
        by_key[unit.key].append(unit)
    for (temperature, max_new_tokens, call_seed, count), group in sorted(by_key.items(), key=lambda kv: kv[0][3]):
        outputs = sampler.generate([u.prompt for u in group], count, temperature, max_new_tokens, call_seed)
        if len(outputs) != len(group) or any(len(o) != count for o in outputs):
            raise RuntimeError(f"sampler returned a wrong shape for {len(group)} prompts x n={count}")
        for unit, outs in zip(group, outputs, strict=True):
            for slot, text in zip(unit.slots, outs, strict=True):
                unit.job.texts[slot] = text


def split_judgement(text: str) -> tuple[str | None, str]:
    """(principles, critique) of a GRM output: the text before ``Analysis:`` (``Specific Criteria:`` stripped)
    and the text from ``Analysis:`` up to ``Scores:``; without the markers, no principles and the whole text."""
    head, sep, rest = text.partition("Analysis:")
    if not sep:
        return None, text.strip()
    principles = head.strip()
    if principles.startswith("Specific Criteria:"):
        principles = principles[len("Specific Criteria:") :].strip()
    critique = rest.rpartition("Scores:")[0] if "Scores:" in rest else rest
    return principles or None, critique.strip()


def parse_job(job: Job) -> list[list[SampleJudgement]]:
    """Parse every sample of a sampled job; samples per item in sample order (scores in original order)."""
    per_item: list[list[SampleJudgement]] = [[] for _ in job.items]
    for req, text in zip(job.requests, job.texts, strict=True):
        per_item[req.item_index].append(judging.parse_sample(text or "", req.order, single_label=False))
    return per_item


def attach_meta(jobs: Sequence[Job], parsed: Sequence[list[list[SampleJudgement]]], meta: MetaScorer) -> None:
    """One meta-RM call over every parsed sample of the MetaRM@k jobs among ``jobs`` (in place)."""
    todo = []
    for job, per_item in zip(jobs, parsed, strict=True):
        if job.settings.k_meta is None:
            continue
        for item, samples in zip(job.items, per_item, strict=True):
            todo += [(item, s) for s in samples if s.scores is not None]
    if not todo:
        return
    scores = meta([judging.meta_prompt(item, s) for item, s in todo])
    for (_, sample), score in zip(todo, scores, strict=True):
        sample.meta_score = float(score)


def item_result(
    item: Item,
    item_id: str | None,
    samples: Sequence[SampleJudgement],
    settings: ScoreSettings,
    principles: str | None = None,
) -> dict[str, Any]:
    """The ``/v1/score`` result of one item (see the module doc for the meaning of each field); ``principles``:
    the text written into its prompts (caller's or generated from the query), reported with its source."""
    scores_in = [s.scores for s in samples]
    if settings.k_meta is not None:
        voters = voting.meta_voters(scores_in, [s.meta_score for s in samples], settings.k_meta)
    else:
        voters = [i for i, sc in enumerate(scores_in) if sc is not None]
    totals = voting.vote_sum([scores_in[i] for i in voters], item.n)
    failures = Counter(s.status for s in samples if s.scores is None)
    out: dict[str, Any] = {
        "id": item_id,
        "n": item.n,
        "scores": None if totals is None else [t / len(voters) for t in totals],
        "votes": totals,
        "best": None,
        "tied": False,
        "k": settings.k,
        "k_meta": settings.k_meta,
        "method": settings.method,
        "n_parsed": sum(1 for s in scores_in if s is not None),
        "n_voted": len(voters),
        "parse_failures": {"count": sum(failures.values()), "reasons": dict(sorted(failures.items()))},
    }
    if principles is not None or settings.principle_mode != "default":
        source = "query" if settings.principle_mode == "query_only" else "caller"
        out["principles"] = {"text": principles, "source": source if principles is not None else "model"}
    if totals is not None and item.n > 1:
        pick = voting.pick_best(totals, settings.seed, item.id)
        out["best"], out["tied"] = pick.index, pick.tied
    elif totals is not None:
        out["best"] = 0
    if settings.return_samples:
        voted = set(voters)
        rows = []
        for j, s in enumerate(samples):
            written, critique = split_judgement(s.text)
            rows.append(
                {
                    "shown_order": s.order,
                    "text": s.text,
                    "principles": written if principles is None else principles,
                    "critique": critique,
                    "scores": s.scores,
                    "status": s.status,
                    "meta_score": s.meta_score,
                    "voted": j in voted,
                }
            )
        out["samples"] = rows
    return out


def finish_jobs(jobs: Sequence[Job], meta: MetaScorer | None) -> list[list[dict[str, Any]]]:
    """Parse, meta-score (one call for all jobs) and aggregate sampled jobs into their item results."""
    parsed = [parse_job(job) for job in jobs]
    if meta is not None:
        attach_meta(jobs, parsed, meta)
    return [
        [
            item_result(item, item_id, samples, job.settings, given)
            for item, item_id, samples, given in zip(
                job.items, job.ids, per_item, job.principles or [None] * len(job.items), strict=True
            )
        ]
        for job, per_item in zip(jobs, parsed, strict=True)
    ]


def score_alone(
    sampler: Sampler, items: list[Item], ids: list[str | None], settings: ScoreSettings, template: str, meta=None
) -> list[dict[str, Any]]:
    """Score one job with no batching (the reference the batched engine must match)."""
    job = Job(items, ids, settings, template)
    sample_units(sampler, job.units)
    return finish_jobs([job], meta)[0]


def normalized(score: float | None) -> float | None:
    """A mean score on 1..10 mapped to [0, 1] (None stays None)."""
    low, high = prompts.score_range(False)
    return None if score is None else (score - low) / (high - low)
