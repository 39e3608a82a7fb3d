"""A 2-GPU DDP launch of a few SFT steps through torchrun (the multi-GPU path of ``grm.training.sft``)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_torchrun_two_gpus_trains_and_rank0_saves(tiny_model_dir: Path, tmp_path: Path, two_gpus: None) -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "tests" / "gpu" / "sft_ddp_worker.py"), str(tiny_model_dir), str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert all(r["distributed"] for r in reports), "the Trainer did not initialise torch.distributed"
    assert {r["device"] for r in reports} == {"0", "1"}  # one GPU per rank
    assert [r["steps"] for r in reports] == [3, 3]
    assert all(math.isfinite(r["train_loss"]) for r in reports)
    assert (tmp_path / "model" / "model.safetensors").exists() and (tmp_path / "model" / "tokenizer.json").exists()
