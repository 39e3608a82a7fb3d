"""Tiny Llama-style students for the embedded world: a causal LM (the GRM) and a sequence classifier (meta RM).

Both are random inits saved as normal Hugging Face folders (config + safetensors + the world tokenizer), loadable
with ``AutoModelForCausalLM`` / ``AutoModelForSequenceClassification``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grm.config import ModelTinyConfig

logger = logging.getLogger(__name__)


def _llama_config(tokenizer: Any, config: ModelTinyConfig, **extra: Any) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads or config.num_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        rope_theta=config.rope_theta,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )


def _save_atomic(model: Any, tokenizer: Any, out_dir: Path) -> Path:
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def build_tiny_model(
    tokenizer_dir: str | Path, out_dir: str | Path, config: ModelTinyConfig | None = None, seed: int = 0
) -> Path:
    """Randomly initialise a tiny ``LlamaForCausalLM`` and save it with the tokenizer (safetensors).

    Args:
        tokenizer_dir: folder written by ``grm.world.tokenizer.build_tokenizer``.
        out_dir: destination folder (written atomically).
        config: the model shape.
        seed: init seed.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaForCausalLM

    config = config or ModelTinyConfig()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(_llama_config(tokenizer, config))
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    n_params = sum(p.numel() for p in model.parameters())
    logger.info("tiny causal LM: %.2f M parameters (%s)", n_params / 1e6, asdict(config))
    return _save_atomic(model, tokenizer, Path(out_dir))


def build_tiny_classifier(
    tokenizer_dir: str | Path, out_dir: str | Path, config: ModelTinyConfig | None = None, seed: int = 0
) -> Path:
    """Randomly initialise a tiny ``LlamaForSequenceClassification`` (one logit, for the meta RM) and save it.

    Args:
        tokenizer_dir: folder written by ``grm.world.tokenizer.build_tokenizer``.
        out_dir: destination folder (written atomically).
        config: the model shape.
        seed: init seed.

    Returns:
        ``out_dir`` as a ``Path``.
    """
    import torch
    from transformers import AutoTokenizer, LlamaForSequenceClassification

    config = config or ModelTinyConfig()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = LlamaForSequenceClassification(_llama_config(tokenizer, config, num_labels=1))
    return _save_atomic(model, tokenizer, Path(out_dir))
