"""Tiny Llama builders: loadable HF folders with safetensors."""

from __future__ import annotations

from pathlib import Path

import pytest

from grm.world import WorldConfig
from grm.world.model import ModelTinyConfig, build_tiny_classifier, build_tiny_model
from grm.world.tokenizer import build_tokenizer


@pytest.mark.slow  # builds and loads tiny models
def test_build_and_load(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    tok = build_tokenizer(WorldConfig(n_train=10, n_val=0, n_test=0), tmp_path / "tok")
    cfg = ModelTinyConfig(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64)
    lm_dir = build_tiny_model(tok, tmp_path / "lm", cfg, seed=0)
    assert (lm_dir / "model.safetensors").exists() and (lm_dir / "tokenizer.json").exists()
    lm = AutoModelForCausalLM.from_pretrained(lm_dir)
    assert lm.config.tie_word_embeddings and lm.config.hidden_size == 32
    with torch.no_grad():
        logits = lm(torch.tensor([[0, 5, 6]])).logits
    assert logits.shape[-1] == lm.config.vocab_size
    clf_dir = build_tiny_classifier(tok, tmp_path / "clf", cfg, seed=0)
    clf = AutoModelForSequenceClassification.from_pretrained(clf_dir)
    assert clf.config.num_labels == 1 and clf.config.pad_token_id is not None
    with torch.no_grad():
        assert clf(torch.tensor([[0, 5, 6]])).logits.shape == (1, 1)


def test_default_size_and_validation() -> None:
    assert ModelTinyConfig().hidden_size == 128
    with pytest.raises(ValueError, match="num_heads"):
        ModelTinyConfig(hidden_size=130, num_heads=4)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        ModelTinyConfig(max_position_embeddings=16)
