"""SFT (TRL SFTTrainer) on the world's tiny model: a few steps, finite loss, changed weights, atomic output."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from grm.training.sft import SFTStageConfig, train_sft
from grm.world import WorldConfig, general_instruction_examples
from grm.world.model import TinyModelConfig, build_tiny_model
from grm.world.tokenizer import build_tokenizer


def test_three_sft_steps(tmp_path: Path) -> None:
    from safetensors.torch import load_file

    cfg = WorldConfig(n_train=10, n_val=0, n_test=0)
    tok = build_tokenizer(cfg, tmp_path / "tok")
    base = build_tiny_model(
        tok, tmp_path / "base", TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    )
    examples = general_instruction_examples(cfg, max_per_family=8)
    metrics = train_sft(base, examples, tmp_path / "sft", SFTStageConfig(max_steps=3, batch_size=4, logging_steps=1))
    assert metrics["steps"] == 3 and math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["last_loss"])
    before = load_file(base / "model.safetensors")
    after = load_file(tmp_path / "sft" / "model.safetensors")
    assert any(not before[k].equal(after[k]) for k in before)
    assert (tmp_path / "sft" / "tokenizer.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sft")]  # no temp folder left behind


def test_rejects_bad_examples(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no examples"):
        train_sft(tmp_path, [], tmp_path / "x", SFTStageConfig())
    with pytest.raises(ValueError, match="learning_rate"):
        SFTStageConfig(learning_rate=0)
