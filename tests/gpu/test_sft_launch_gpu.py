"""``rft.train.launcher: torchrun`` with the accelerate configs on 2 GPUs: DDP, FSDP2 and DeepSpeed ZeRO-3 launches
of a few SFT steps train, rank 0 saves one loadable safetensors model, and the loss curves agree with DDP's."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from pathlib import Path

import pytest

from grm.config import RFTTrainConfig

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = [{"prompt": f"the query {i % 7} is", "completion": " good" if i % 2 else " bad"} for i in range(64)]
CFG = RFTTrainConfig(max_steps=3, batch_size=8, logging_steps=1, max_length=32, num_threads=1, length_groups=1,
                     warmup_ratio=0.0, launcher="torchrun", nproc_per_node=2)  # fmt: skip


@pytest.mark.parametrize("config", ["ddp.yaml", "fsdp2.yaml", "deepspeed_zero3.yaml"])
def test_accelerate_launch_trains_and_saves(config: str, tiny_model_dir: Path, tmp_path: Path, two_gpus: None) -> None:
    if config.startswith("deepspeed") and importlib.util.find_spec("deepspeed") is None:
        pytest.skip("deepspeed is not installed (pip install deepspeed on the GPU machine)")
    from transformers import AutoModelForCausalLM

    from grm.training.sft import train_sft

    cfg = dataclasses.replace(CFG, accelerate_config=str(REPO / "configs" / "accelerate" / config))
    metrics = train_sft(tiny_model_dir, EXAMPLES, tmp_path / "model", cfg)
    assert metrics["world_size"] == 2 and metrics["backend"] == "nccl" and metrics["steps"] == 3
    assert all(math.isfinite(x) for x in metrics["loss_curve"])
    AutoModelForCausalLM.from_pretrained(tmp_path / "model", use_safetensors=True)  # one gathered, loadable model
    if config != "ddp.yaml":  # sharding changes the memory layout, not the maths
        ddp = train_sft(tiny_model_dir, EXAMPLES, tmp_path / "ddp", dataclasses.replace(cfg, accelerate_config=str(
            REPO / "configs" / "accelerate" / "ddp.yaml")))  # fmt: skip
        assert metrics["loss_curve"] == pytest.approx(ddp["loss_curve"], rel=1e-3)
