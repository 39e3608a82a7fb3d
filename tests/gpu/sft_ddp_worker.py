"""One rank of ``torchrun --nproc_per_node=N tests/gpu/sft_ddp_worker.py MODEL_DIR OUT_DIR``: a few SFT steps of
``grm.training.sft.train_sft`` under DDP (the Trainer reads RANK/WORLD_SIZE from torchrun), then a JSON report per
rank (``OUT_DIR/rank{r}.json``) for the test to check."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(model_dir: str, out_dir: str) -> None:
    import torch

    from grm.training.sft import RFTTrainConfig, train_sft

    rank = int(os.environ["RANK"])
    examples = [{"prompt": f"the query {i % 7} is", "completion": " good" if i % 2 else " bad"} for i in range(64)]
    cfg = RFTTrainConfig(max_steps=3, batch_size=4, logging_steps=1, max_length=32, num_threads=1)
    metrics = train_sft(model_dir, examples, Path(out_dir) / "model", cfg)
    report = {
        "rank": rank,
        "world_size": int(os.environ["WORLD_SIZE"]),
        "device": str(torch.cuda.current_device()),
        "distributed": torch.distributed.is_available() and torch.distributed.is_initialized(),
        "steps": metrics["steps"],
        "train_loss": metrics["train_loss"],
    }
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
