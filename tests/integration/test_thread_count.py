"""The torch thread count changes no result: SFT, the meta RM and sampling give bitwise the same weights and texts
on 1 and 2 threads, at the default model's shapes (hidden 128, 4 layers, MLP 384) and batch sizes.

On x86 torch builds with MKL this needs MKL's strict reproducibility mode, which every build sets when it sets
its threads (``grm.threads.strict_math``: ``MKL_CBWR=AUTO,STRICT`` unless set): without it MKL splits a large-K matmul (a weight gradient over all tokens)
over the threads on AVX-512 Xeons, and the last bits follow the thread count.

This is what lets ``runtime.parallel_stages`` run two stages on one thread each without a stage key holding the
thread count (``tasks.engine.workers``). If it fails on a machine (another CPU, another math library), runs there still
work, but a concurrent run's numbers can differ from a sequential run's in the last bits: set
``runtime.parallel_stages: 1`` there to reproduce sequential runs exactly.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from grm.config import PipelineConfig
from grm.training import meta_rm_train, rft, spct
from grm.world.generator import general_instruction_examples, generate_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # trains the default-shape tiny model three ways


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    cfg = PipelineConfig()
    tmp = tmp_path_factory.mktemp("threads")
    items = generate_world(replace(cfg.world, n_train=120, n_val=0, n_test=0))["train"]
    teacher = spct.teacher_sampler(cfg.model.teacher, None, cfg.world, None, 0)
    sampled = rft.rejective_sample(items, teacher, cfg.rft.sampling)
    general = general_instruction_examples(cfg.world, seed=0)
    model = spct.build_base_model("embedded", cfg.model.tiny, cfg.world, tmp / "base", 0)
    return {
        "cfg": cfg,
        "tmp": tmp,
        "model": model,
        "sft": spct.rft_mix(sampled.accepted, general, cfg.rft.general_ratio, 0),
        "meta": rft.examples_from_trajectories({it.id: it for it in items}, sampled.samples),
        "prompts": [t.prompt for t in sampled.samples[:48]],
        "items": items,
        "general": general,
    }


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not a[k].equal(b[k])]
    assert not differ, f"1 and 2 threads give different weights in {differ[:5]} (see the module docstring)"


def test_sft_steps_are_bitwise_equal_on_1_and_2_threads(setup: dict) -> None:
    from grm.training.sft import train_sft

    out = {}
    for n in (1, 2):
        cfg = replace(setup["cfg"].rft.train, max_steps=4, num_threads=n, logging_steps=1)
        metrics = train_sft(setup["model"], setup["sft"], setup["tmp"] / f"sft{n}", cfg)
        out[n] = (_weights(setup["tmp"] / f"sft{n}"), metrics["loss_curve"])
    assert out[1][1] == out[2][1]
    _assert_bitwise_equal(out[1][0], out[2][0])


def test_meta_rm_steps_are_bitwise_equal_on_1_and_2_threads(setup: dict) -> None:
    out = {}
    for n in (1, 2):
        cfg = replace(setup["cfg"].meta_rm.train, steps=20, val_fraction=0.0)
        meta_rm_train.train_meta_rm(setup["model"], setup["meta"], setup["tmp"] / f"meta{n}", cfg, num_threads=n)
        out[n] = _weights(setup["tmp"] / f"meta{n}")
    _assert_bitwise_equal(out[1], out[2])


def test_samples_are_equal_on_1_and_2_threads(setup: dict) -> None:
    from grm.sampling.hf import HFSampler

    texts = {}
    for n in (1, 2):
        sampler = HFSampler(setup["model"], num_threads=n, progress=False, batch_size=256)
        texts[n] = sampler.generate(setup["prompts"], 8, 0.5, 50, seed=3)
    assert texts[1] == texts[2]


def test_grpo_steps_are_bitwise_equal_on_1_and_2_threads(setup: dict) -> None:
    import random

    from grm.training.grpo import build_rl_rows, train_grpo

    cfg = replace(setup["cfg"].rl, max_steps=2, report_to="none")
    rows = build_rl_rows(setup["items"][:16], cfg.template, 0)
    out = {}
    for n in (1, 2):
        random.seed(0)
        train_grpo(setup["model"], rows, setup["tmp"] / f"rl{n}", cfg, num_threads=n, general=setup["general"])
        out[n] = _weights(setup["tmp"] / f"rl{n}")
    _assert_bitwise_equal(out[1], out[2])
