"""Rejective sampling for RFT (SPEC §3): sample a teacher, keep correct judgements, drop too-easy items.

Per item: ``n_rft`` un-hinted samples with fresh seeded shuffles; incorrect ones are dropped; if all are correct the
item is "too easy" and contributes nothing to RFT. One hinted sample (``The best response is: Response j``) is
kept when correct, with the hint stripped from the training prompt. Every sample is kept with its correctness
label for the meta RM. Single-response items (n = 1) use the 0/1 training template and get no hinted pass
(the hint names a best response, which a single response does not have). [choice]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from grm.config import RFTSamplingConfig, seed_or_zero
from grm.method import judging, prompts
from grm.method.correctness import is_correct
from grm.sampling.base import Sampler
from grm.schemas import Item


@dataclass(frozen=True)
class Trajectory:
    """One sampled judgement with its training prompt (hint stripped) and Eq. 10 correctness."""

    id: str  # item id
    sample: int  # sample index (-1 for the hinted sample)
    prompt: str  # the UN-hinted prompt in the order this sample saw
    completion: str  # the generated judgement
    correct: bool
    hinted: bool
    status: str  # "ok" or a parse failure reason
    order: tuple[int, ...]
    n: int

    def to_dict(self) -> dict:
        return {**asdict(self), "order": list(self.order)}

    @classmethod
    def from_dict(cls, row: dict) -> Trajectory:
        """The inverse of ``to_dict`` (a row of ``samples.jsonl`` / ``accepted.jsonl``)."""
        return cls(**{**row, "order": tuple(row["order"])})


@dataclass
class RejectiveSamplingResult:
    accepted: list[Trajectory]  # the RFT training set
    samples: list[Trajectory]  # every sample, hinted or not, correct or not (meta-RM data)
    stats: dict[str, float]


def _trajectories(
    items: Sequence[Item], results: Sequence[judging.ItemJudgement], template: str, hinted: bool
) -> list[list[Trajectory]]:
    out = []
    for item, res in zip(items, results, strict=True):
        per_item = []
        for j, s in enumerate(res.samples):
            shown = [item.responses[o] for o in s.order]
            prompt = prompts.render_prompt(item.query, shown, template=template, single_label=res.single_label)
            ok = is_correct(s.scores, best=item.best, label=item.label)
            per_item.append(
                Trajectory(item.id, -1 if hinted else j, prompt, s.text, ok, hinted, s.status, tuple(s.order), item.n)
            )
        out.append(per_item)
    return out


def select_trajectories(
    plain: Sequence[Sequence[Trajectory]], hinted: Sequence[Trajectory | None], cfg: RFTSamplingConfig
) -> RejectiveSamplingResult:
    """Apply the rejection rules to sampled trajectories (pure; the sampling happens in ``rejective_sample``).

    Args:
        plain: per item, its ``n_rft`` un-hinted trajectories.
        hinted: per item, its hinted trajectory or None (no hinted pass for this item).
        cfg: the rules.

    Returns:
        Accepted trajectories, every trajectory, and statistics: ``sample_accuracy``, ``hinted_accuracy``,
        ``keep_rate`` (accepted / sampled), ``too_easy_rate``, ``all_wrong_rate`` (items), ``hinted_share``
        (hinted among accepted), ``parse_fail_rate`` (un-hinted samples), ``n_items``, ``n_accepted``.
    """
    accepted: list[Trajectory] = []
    every: list[Trajectory] = []
    too_easy = all_wrong = 0
    for trajs, hint in zip(plain, hinted, strict=True):
        every.extend(trajs)
        n_ok = sum(t.correct for t in trajs)
        all_wrong += n_ok == 0
        easy = n_ok == len(trajs)
        too_easy += easy
        if not (easy and cfg.drop_too_easy):
            kept = [t for t in trajs if t.correct]
            accepted.extend(kept[: cfg.max_kept_per_item] if cfg.max_kept_per_item else kept)
        if hint is not None:
            every.append(hint)
            if hint.correct:  # hinted samples skip the too-easy filter (SPEC §3)
                accepted.append(hint)
    flat = [t for trajs in plain for t in trajs]
    hints = [h for h in hinted if h is not None]
    n_items = max(1, len(plain))
    n_sampled = len(flat) + len(hints)
    stats = {
        "n_items": float(len(plain)),
        "n_samples": float(n_sampled),
        "n_accepted": float(len(accepted)),
        "sample_accuracy": sum(t.correct for t in flat) / max(1, len(flat)),
        "hinted_accuracy": sum(h.correct for h in hints) / max(1, len(hints)),
        "keep_rate": len(accepted) / max(1, n_sampled),
        "too_easy_rate": too_easy / n_items,
        "all_wrong_rate": all_wrong / n_items,
        "hinted_share": sum(t.hinted for t in accepted) / max(1, len(accepted)),
        "parse_fail_rate": sum(t.status != "ok" for t in flat) / max(1, len(flat)),
    }
    return RejectiveSamplingResult(accepted, every, stats)


def rejective_sample(items: Sequence[Item], teacher: Sampler, cfg: RFTSamplingConfig) -> RejectiveSamplingResult:
    """Sample the teacher and apply the rejection rules (SPEC §3).

    Args:
        items: training items with ground truth.
        teacher: any ``Sampler`` (the embedded noisy teacher, a local model, an HTTP endpoint, vLLM).
        cfg: rejective sampling settings.
    """
    common = {"temperature": cfg.temperature, "max_new_tokens": cfg.max_new_tokens, "template": cfg.template}
    plain_res = judging.judge_items(
        items, teacher, k=cfg.n_rft, seed=seed_or_zero(cfg.seed), single_label=True, **common
    )
    plain = _trajectories(items, plain_res, cfg.template, hinted=False)
    hinted: list[Trajectory | None] = [None] * len(items)
    multi = [i for i, it in enumerate(items) if it.n >= 2]
    if cfg.hinted and multi:
        sub = [items[i] for i in multi]
        # a different seed: the hinted sample sees a fresh order, not a copy of sample 0's
        hint_res = judging.judge_items(sub, teacher, k=1, seed=seed_or_zero(cfg.seed) + 7919, hint=True, **common)
        for i, trajs in zip(multi, _trajectories(sub, hint_res, cfg.template, hinted=True), strict=True):
            hinted[i] = trajs[0]
    return select_trajectories(plain, hinted, cfg)


def to_sft_examples(trajectories: Sequence[Trajectory]) -> list[dict[str, str]]:
    """Prompt/completion pairs for TRL's SFT trainer (loss on the completion only)."""
    return [{"prompt": t.prompt, "completion": t.completion} for t in trajectories]


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
