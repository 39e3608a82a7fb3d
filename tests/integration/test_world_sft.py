"""SFT (TRL SFTTrainer) on the world's tiny model: a few steps, finite loss, changed weights, atomic output."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from grm.training.sft import RFTTrainConfig, train_sft
from grm.world import WorldConfig, general_instruction_examples
from grm.world.model import ModelTinyConfig, build_tiny_model
from grm.world.tokenizer import build_tokenizer


@pytest.mark.slow  # builds and trains a tiny model
def test_three_sft_steps(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    from safetensors.torch import load_file

    monkeypatch.setenv("GRM_PROGRESS_INTERVAL_S", "0")  # a progress line on every step (stderr is not a TTY here)
    caplog.set_level(logging.INFO, logger="grm.progress")

    cfg = WorldConfig(n_train=10, n_val=0, n_test=0)
    tok = build_tokenizer(cfg, tmp_path / "tok")
    base = build_tiny_model(
        tok, tmp_path / "base", ModelTinyConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    )
    examples = general_instruction_examples(cfg, max_per_family=8)
    metrics = train_sft(base, examples, tmp_path / "sft", RFTTrainConfig(max_steps=3, batch_size=4, logging_steps=1))
    assert metrics["steps"] == 3 and math.isfinite(metrics["train_loss"]) and math.isfinite(metrics["last_loss"])
    before = load_file(base / "model.safetensors")
    after = load_file(tmp_path / "sft" / "model.safetensors")
    assert any(not before[k].equal(after[k]) for k in before)
    assert (tmp_path / "sft" / "tokenizer.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sft")]  # no temp folder left behind
    lines = [r.getMessage() for r in caplog.records if r.name == "grm.progress"]
    assert lines[0].startswith("sft train: 1/3 step (33%)") and "ETA" in lines[0] and "; loss " in lines[1]
    assert lines[-1].startswith("sft train: 3/3 step in ")
    assert "{'loss'" not in "".join(capfd.readouterr())  # the Trainer's log dicts went to stdout
    assert not [str(w.message) for w in recwarn if issubclass(w.category, FutureWarning)]  # no deprecated args


def test_rejects_bad_examples(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no examples"):
        train_sft(tmp_path, [], tmp_path / "x", RFTTrainConfig())
    with pytest.raises(ValueError, match="learning_rate"):
        RFTTrainConfig(learning_rate=0)


@pytest.mark.slow  # builds and trains a tiny model
def test_length_groups_give_the_padded_batch_gradient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of short and long rows run as length groups (fewer padded tokens) and train to the same weights."""
    from safetensors.torch import load_file

    import grm.training.sft as sft

    cfg = WorldConfig(n_train=10, n_val=0, n_test=0)
    tok = build_tokenizer(cfg, tmp_path / "tok")
    base = build_tiny_model(
        tok, tmp_path / "base", ModelTinyConfig(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)
    )
    short = general_instruction_examples(cfg, max_per_family=8)
    long = [{"prompt": e["prompt"], "completion": " ".join([e["completion"]] * 30)} for e in short[:6]]
    examples = [x for pair in zip(short, long, strict=False) for x in pair] + short[len(long) :]
    splits = []
    real_split = sft.split_batch
    monkeypatch.setattr(sft, "split_batch", lambda inputs, groups: splits.append(groups) or real_split(inputs, groups))
    weights = {}
    for groups in (1, 3):
        step_cfg = RFTTrainConfig(max_steps=3, batch_size=8, logging_steps=1, length_groups=groups)
        losses = train_sft(base, examples, tmp_path / f"sft{groups}", step_cfg)
        weights[groups] = (load_file(tmp_path / f"sft{groups}" / "model.safetensors"), losses["train_loss"])
    assert splits and all(len(g) >= 2 for g in splits)  # the grouped run did split its mixed batches
    assert weights[3][1] == pytest.approx(weights[1][1], rel=1e-5)
    for name, tensor in weights[1][0].items():
        assert tensor.allclose(weights[3][0][name], atol=1e-5), name
