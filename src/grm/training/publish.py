"""Publishing a trained Hugging Face model folder atomically, once, from rank 0 (SFT and GRPO share it)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def publish_trained(trainer: Any, tokenizer: Any, tmp: Path, out_dir: Path) -> None:
    """Save ``trainer``'s model and ``tokenizer`` under ``tmp/model`` and rename it to ``out_dir``.

    Every rank calls it (FSDP / ZeRO-3 gather the weights in ``save_model``); only the main process writes and
    moves the folder, so a launched run publishes one model; the others wait for it. The pickled
    ``training_args.bin`` is dropped (the weights are safetensors).
    """
    final = tmp / "model"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
        (final / "training_args.bin").unlink(missing_ok=True)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        final.rename(out_dir)
    trainer.accelerator.wait_for_everyone()
