"""The SPCT recipe as plain functions, one per pipeline stage (the Prefect tasks wrap these; no IO of their own
beyond the model folders the trainers write).

Order: base model -> rejective sampling (teacher) -> RFT (+ the unfiltered-SFT ablation) -> too-easy filter + GRPO
-> meta-RM data + training -> evaluation. Each function takes only the config sections it needs.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grm import judging
from grm.meta_rm import examples_from_judgements, examples_from_trajectories, mixed_item_ids
from grm.pipeline_config import MetaStageConfig, SamplingConfig
from grm.rft import Trajectory, to_sft_examples
from grm.sampling.base import Sampler
from grm.schemas import Item
from grm.voting import derive_seed
from grm.world.generator import WorldConfig
from grm.world.model import TinyModelConfig

log = logging.getLogger(__name__)


def build_base_model(
    base: str, tiny: TinyModelConfig | None, world: WorldConfig | None, out_dir: str | Path, seed: int | None
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


def is_world_teacher(spec: str) -> bool:
    """``world-teacher`` or ``world-teacher:ERROR_RATE``."""
    spec = spec.strip()
    return spec == "world-teacher" or spec.startswith("world-teacher:")


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
    """The ablation's training set ("RFT w/o rejective sampling"): ``count`` un-hinted teacher samples drawn
    regardless of correctness, so it has the same size (and training budget) as the accepted set."""
    plain = [t for t in samples if not t.hinted]
    rng = random.Random(derive_seed("unfiltered", seed))
    if count <= len(plain):
        return rng.sample(plain, count)
    return plain + [rng.choice(plain) for _ in range(count - len(plain))]


def meta_rm_examples(
    items: Sequence[Item],
    rft_samples: Sequence[Trajectory],
    grm: Sampler,
    cfg: MetaStageConfig,
    template: str,
    max_new_tokens: int,
    seed: int,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Meta-RM data: the RFT-stage non-hinted teacher samples plus ``cfg.grm_samples`` samples of the trained GRM
    on ``cfg.grm_items`` train items (at the voting temperature, single-response items with the 0/1 template).

    With ``cfg.mixed_only`` only the items whose judgements have both labels are kept (sample accuracies are
    reported before that filter, counts after it).

    Returns:
        The examples and counts (``from_teacher``, ``from_grm``, ``grm_sample_accuracy``).
    """
    by_id = {it.id: it for it in items}
    teacher_ex = examples_from_trajectories(by_id, rft_samples)
    subset = list(items)[: cfg.grm_items]
    judgements = judging.judge_items(
        subset,
        grm,
        k=cfg.grm_samples,
        temperature=cfg.temperature,
        max_new_tokens=max_new_tokens,
        seed=seed + 31337,
        template=template,
        single_label=True,  # n = 1 items use the 0/1 training template, as in RFT and RL
    )
    grm_ex = examples_from_judgements(subset, judgements)
    stats = {
        "grm_sample_accuracy": sum(e["label"] for e in grm_ex) / max(1, len(grm_ex)),
        "teacher_sample_accuracy": sum(e["label"] for e in teacher_ex) / max(1, len(teacher_ex)),
    }
    if cfg.mixed_only:  # an item counts as mixed over all its judgements, the teacher's and the GRM's
        keep = mixed_item_ids(teacher_ex + grm_ex)
        teacher_ex = [e for e in teacher_ex if e["id"] in keep]
        grm_ex = [e for e in grm_ex if e["id"] in keep]
    stats |= {"from_teacher": float(len(teacher_ex)), "from_grm": float(len(grm_ex))}
    return teacher_ex + grm_ex, stats
