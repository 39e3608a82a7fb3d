"""The SPCT recipe as plain functions, one per pipeline stage (the Prefect tasks wrap these; no IO of their own
beyond the model folders the trainers write).

Order: base model -> rejective sampling (teacher) -> RFT (+ its ablations: ``ablation_examples``; ours: SFT on unfiltered samples) -> too-easy filter + GRPO
-> meta-RM data + training -> evaluation. Each function takes only the config sections it needs.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grm.config import MetaRMConfig, SamplingConfig
from grm.meta_rm import examples_from_judgements, mixed_item_ids
from grm.method import judging
from grm.method.voting import derive_seed
from grm.sampling.base import Sampler
from grm.sampling.spec import is_world_teacher
from grm.schemas import Item
from grm.training.rft import Trajectory, examples_from_trajectories, to_sft_examples
from grm.world.generator import WorldConfig
from grm.world.model import ModelTinyConfig

log = logging.getLogger(__name__)


def build_base_model(
    base: str, tiny: ModelTinyConfig | None, world: WorldConfig | None, out_dir: str | Path, seed: int | None
) -> Path:
    """The model RFT starts from: the embedded tiny model (tokenizer + random Llama built locally) or a user dir.

    Args:
        base: ``embedded`` or a local model folder (``model.base``).
        tiny, world, seed: the embedded model's shape, vocabulary and init seed (unused for a folder).

    Returns:
        The model folder (``out_dir/model`` for the embedded model).
    """
    if base != "embedded":
        from grm.sampling.hf import check_safetensors_dir

        return check_safetensors_dir(base)
    if tiny is None or world is None or seed is None:
        raise ValueError("the embedded base model needs model.tiny, world and a seed")
    from grm.world.model import build_tiny_model
    from grm.world.tokenizer import build_tokenizer

    out = Path(out_dir)
    tok_dir = build_tokenizer(world, out / "tokenizer")
    return build_tiny_model(tok_dir, out / "model", tiny, seed=seed)


def teacher_sampler(
    spec: str,
    served_model: str | None,
    world: WorldConfig | None,
    sampling: SamplingConfig | None,
    seed: int | None,
) -> Sampler:
    """The teacher of rejective sampling. ``world-teacher`` knows the configured world's facts (``world``, ``seed``);
    any other spec (model dir, ``vllm:PATH``, http URL + ``served_model``) runs with ``sampling``'s backend options.
    Sampled in shards on the run's executor (``grm.executors``)."""
    from grm.executors import make_sampler

    if is_world_teacher(spec):  # seeded per prompt: the shard size cannot change its samples
        return make_sampler(spec, {"world": world, "seed": seed}, SamplingConfig().shard_size)
    if sampling is None:
        raise ValueError(f"teacher {spec!r} needs the sampling section (backend options)")
    options = {
        "served_model": served_model,
        "num_threads": sampling.num_threads,
        "batch_size": sampling.batch_size,
        "chat_template": sampling.chat_template,
        "trust_remote_code": sampling.trust_remote_code,
    }
    return make_sampler(spec, options, sampling.shard_size)


def student_sampler(model_dir: str | Path, sampling: SamplingConfig) -> Sampler:
    """A sampler over a trained GRM folder (HF backend on CPU; vLLM via ``vllm:PATH`` specs elsewhere), sampled in
    shards on the run's executor (``grm.executors``)."""
    from grm.executors import make_sampler

    options = {
        "num_threads": sampling.num_threads,
        "batch_size": sampling.batch_size,
        "chat_template": sampling.chat_template,
        "trust_remote_code": sampling.trust_remote_code,
        "progress": True,  # grm.progress: a bar on a TTY, a line every 15 s otherwise (nothing for short loops)
    }
    return make_sampler(str(model_dir), options, sampling.shard_size)


def rft_mix(
    trajectories: Sequence[Trajectory], general: Sequence[dict[str, str]], ratio: float, seed: int
) -> list[dict[str, str]]:
    """Accepted trajectories mixed with ``ratio`` general-instruction examples per trajectory (drawn with
    replacement when the pool is smaller), shuffled with a seed.

    Example:
        >>> len(rft_mix([], [{"prompt": "q", "completion": "a"}], 2.0, 0))
        0
    """
    examples = to_sft_examples(trajectories)
    rng = random.Random(derive_seed("rft_mix", seed))
    n_general = round(len(examples) * ratio)
    if general and n_general:
        pool = list(general)
        picks = rng.sample(pool, n_general) if n_general <= len(pool) else [rng.choice(pool) for _ in range(n_general)]
        examples = examples + [{"prompt": g["prompt"], "completion": g["completion"]} for g in picks]
    rng.shuffle(examples)
    return examples


def unfiltered_trajectories(samples: Sequence[Trajectory], count: int, seed: int) -> list[Trajectory]:
    """Ours, not the paper's ablation ("SFT on unfiltered teacher samples", ``rft.sft_unfiltered``): ``count``
    un-hinted teacher samples drawn regardless of correctness, so it has the size (and budget) of the accepted set."""
    plain = [t for t in samples if not t.hinted]
    rng = random.Random(derive_seed("unfiltered", seed))
    if count <= len(plain):
        return rng.sample(plain, count)
    return plain + [rng.choice(plain) for _ in range(count - len(plain))]


_ANALYSIS = re.compile(r"(?m)^[ \t]*Analysis:")
_CRITERIA = re.compile(r"(?m)^[ \t]*Specific Criteria:")


def strip_principles(completion: str) -> str:
    """The critique without its principles: the ``Specific Criteria: ...`` part (up to ``Analysis:``) removed.

    Both output formats write the principles first (``compact``: one line; ``deepseek-grm``: a paragraph that may
    span lines), then ``Analysis:`` and ``Scores:``. A completion without a principles part is returned unchanged;
    one whose principles are not followed by an ``Analysis:`` line loses the principles line only.

    Example:
        >>> strip_principles("\\nSpecific Criteria: accuracy 8 , brevity 2\\nAnalysis: ok\\nScores: \\\\boxed{9, 2}")
        '\\nAnalysis: ok\\nScores: \\\\boxed{9, 2}'
    """
    start = _CRITERIA.search(completion)
    if start is None:
        return completion
    end = _ANALYSIS.search(completion, start.end())
    if end is None:
        newline = completion.find("\n", start.end())
        return completion[: start.start()] + ("" if newline < 0 else completion[newline + 1 :])
    return completion[: start.start()] + completion[end.start() :].lstrip(" \t")


def ablation_trajectories(ablation: str, accepted: Sequence[Trajectory]) -> list[Trajectory]:
    """The judgement trajectories an RFT ablation (``grm.ablations.ABLATIONS``) trains on, from the accepted set.

    ``no_hinted``: the accepted un-hinted samples only; ``no_nonhinted``: the accepted hinted samples only;
    ``no_general``: all of them (the general data is what it drops, ``ablation_general_ratio``); ``no_principles``:
    all of them with the principles cut from the completion (the prompt is unchanged: every model is evaluated on
    the same prompts, and the paper's ablation removes principle *generation*, i.e. the output part);
    ``general_only``: none (the paper's "RFT w/o rejective sampling": general-instruction data only).
    """
    from dataclasses import replace

    from grm.ablations import ABLATIONS

    if ablation not in ABLATIONS:
        raise ValueError(f"unknown RFT ablation {ablation!r}; use one of {sorted(ABLATIONS)}")
    if ablation == "no_hinted":
        return [t for t in accepted if not t.hinted]
    if ablation == "no_nonhinted":
        return [t for t in accepted if t.hinted]
    if ablation == "no_principles":
        return [replace(t, completion=strip_principles(t.completion)) for t in accepted]
    if ablation == "general_only":
        return []
    return list(accepted)


def ablation_examples(
    ablation: str,
    accepted: Sequence[Trajectory],
    general: Sequence[dict[str, str]],
    ratio: float,
    seed: int,
) -> list[dict[str, str]]:
    """The SFT examples of an RFT ablation: its trajectories (``ablation_trajectories``) mixed like RFT's, except
    ``no_general`` (no general data) and ``general_only`` (as many general examples as the full RFT mix has
    examples, so the data size matches; the step budget is the same either way).

    Example:
        >>> len(ablation_examples("general_only", [], [{"prompt": "q", "completion": "a"}], 1.0, 0))
        0
    """
    chosen = ablation_trajectories(ablation, accepted)
    if ablation == "no_general":
        return rft_mix(chosen, [], 0.0, seed)
    if ablation == "general_only":
        if not general:
            raise ValueError("rft.ablations has general_only but there is no general-instruction data")
        n_full = round(len(accepted) * (1 + ratio))
        rng = random.Random(derive_seed("general_only", seed))
        pool = list(general)
        picks = rng.sample(pool, n_full) if n_full <= len(pool) else [rng.choice(pool) for _ in range(n_full)]
        return [{"prompt": g["prompt"], "completion": g["completion"]} for g in picks]
    return rft_mix(chosen, general, ratio, seed)


def meta_rm_examples(
    items: Sequence[Item],
    rft_samples: Sequence[Trajectory],
    grm: Sampler,
    cfg: MetaRMConfig,
    template: str,
    max_new_tokens: int,
    seed: int,
    grm_pool: Sequence[Item] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Meta-RM data: the RFT-stage non-hinted teacher samples (``cfg.teacher``) plus ``cfg.grm_samples`` samples
    of the guided GRM on the first ``cfg.grm_items`` items of ``grm_pool`` (default ``items``, the train split; the
    stage passes the val split for ``cfg.grm_split='val'``) at the voting temperature, single-response items with
    the 0/1 template (``guided_samples``); assembled by ``assemble_meta_examples``.

    Returns:
        The examples and counts (``from_teacher``, ``from_grm``, ``grm_sample_accuracy``,
        ``teacher_sample_accuracy``, ``parse_failures_dropped``).
    """
    subset = list(grm_pool if grm_pool is not None else items)[: cfg.grm_items]
    judgements = guided_samples(subset, grm, cfg, template, max_new_tokens, seed)
    return assemble_meta_examples(items, rft_samples, subset, judgements, cfg)


def guided_samples(
    subset: Sequence[Item], grm: Sampler, cfg: MetaRMConfig, template: str, max_new_tokens: int, seed: int
) -> list[judging.ItemJudgement]:
    """``cfg.grm_samples`` judgements of the guided GRM per item of ``subset`` (meta-RM data, seed ``seed + 31337``)."""
    return judging.judge_items(
        subset,
        grm,
        k=cfg.grm_samples,
        temperature=cfg.temperature,
        max_new_tokens=max_new_tokens,
        seed=seed + 31337,
        template=template,
        single_label=True,  # n = 1 items use the 0/1 training template, as in RFT and RL
    )


def assemble_meta_examples(
    items: Sequence[Item],
    rft_samples: Sequence[Trajectory],
    subset: Sequence[Item],
    judgements: Sequence[judging.ItemJudgement],
    cfg: MetaRMConfig,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """The teacher's RFT-stage samples of ``items`` (``cfg.teacher``) and the guided GRM's ``judgements`` of
    ``subset`` as meta-RM examples. Parse failures are dropped unless ``cfg.keep_parse_failures``; with
    ``cfg.mixed_only`` only the items whose judgements have both labels are kept (sample accuracies are reported
    before both filters, counts after them)."""
    by_id = {it.id: it for it in items}
    keep_fail = cfg.keep_parse_failures
    teacher_all = examples_from_trajectories(by_id, rft_samples, keep_parse_failures=True) if cfg.teacher else []
    grm_all = examples_from_judgements(subset, judgements, keep_parse_failures=True)
    stats = {
        "grm_sample_accuracy": sum(e["label"] for e in grm_all) / max(1, len(grm_all)),
        "teacher_sample_accuracy": sum(e["label"] for e in teacher_all) / max(1, len(teacher_all)),
    }
    teacher_ex = examples_from_trajectories(by_id, rft_samples, keep_parse_failures=keep_fail) if cfg.teacher else []
    grm_ex = examples_from_judgements(subset, judgements, keep_parse_failures=keep_fail)
    stats["parse_failures_dropped"] = float(len(teacher_all) + len(grm_all) - len(teacher_ex) - len(grm_ex))
    if cfg.mixed_only:  # an item counts as mixed over all its judgements, the teacher's and the GRM's
        keep = mixed_item_ids(teacher_ex + grm_ex)
        teacher_ex = [e for e in teacher_ex if e["id"] in keep]
        grm_ex = [e for e in grm_ex if e["id"] in keep]
    stats |= {"from_teacher": float(len(teacher_ex)), "from_grm": float(len(grm_ex))}
    return teacher_ex + grm_ex, stats
