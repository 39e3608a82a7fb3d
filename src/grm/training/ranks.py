"""One rank of a launched training (``torchrun ... -m grm.training.ranks SPEC``): read the spec ``grm.training.launch``
wrote, run the kind's trainer on this rank's share, rank 0 writes the metrics.

Apart from ``grm.training.launch`` because the trainers (``grm.training.sft``, ``grm.training.grpo``,
``grm.meta_rm``) import ``launch.run_launched``: the entry that imports them sits above both, so no import runs back.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grm.errors import UserError
from grm.training.launch import FAIL_RANK_ENV, rank_and_world, read_jsonl

Entry = Callable[[dict[str, Any], dict[str, list[dict[str, Any]]], dict[str, Any], int, int], dict[str, Any]]


def _rank_sft(spec: dict[str, Any], data: dict[str, Any], objects: dict[str, Any], rank: int, world: int) -> dict:
    from grm.config import RFTTrainConfig
    from grm.training.sft import train_sft

    cfg = RFTTrainConfig(**spec["cfg"])
    cfg = dataclasses.replace(cfg, batch_size=cfg.batch_size // world)  # this rank's share of the global batch
    return train_sft(spec["model_dir"], data["examples"], spec["out_dir"], cfg)


def _rank_grpo(spec: dict[str, Any], data: dict[str, Any], objects: dict[str, Any], rank: int, world: int) -> dict:
    from grm.config import RLConfig
    from grm.training.grpo import train_grpo

    return train_grpo(
        spec["model_dir"], data["rows"], spec["out_dir"], RLConfig(**spec["cfg"]),
        num_threads=spec["options"].get("num_threads"), general=data.get("general"), rank=rank, world_size=world,
        **objects,
    )  # fmt: skip


def _rank_meta_rm(spec: dict[str, Any], data: dict[str, Any], objects: dict[str, Any], rank: int, world: int) -> dict:
    import torch
    import torch.distributed as dist

    from grm.config import MetaRMTrainConfig
    from grm.training.meta_rm_train import train_meta_rm

    if os.environ.get("ACCELERATE_USE_FSDP") == "true" or os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true":
        raise UserError(
            "meta_rm.train.accelerate_config: asks for FSDP or DeepSpeed, but the meta RM is a hand-written loop "
            "under torch DDP; use configs/accelerate/ddp.yaml or leave accelerate_config null (torchrun)"
        )
    if world > 1 and not dist.is_initialized():  # the Trainer kinds let accelerate do this
        backend = "gloo" if spec["use_cpu"] else "nccl"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return train_meta_rm(
        spec["model_dir"], data["examples"], spec["out_dir"], MetaRMTrainConfig(**spec["cfg"]),
        num_threads=spec["options"].get("num_threads"), template=spec["options"].get("template"),
    )  # fmt: skip


ENTRIES: dict[str, Entry] = {"sft": _rank_sft, "grpo": _rank_grpo, "meta_rm": _rank_meta_rm}


def main(argv: Sequence[str] | None = None) -> int:
    """One rank: read the spec, train, rank 0 writes the metrics; a failure writes ``error_rank{r}.txt``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: torchrun ... -m grm.training.ranks SPEC.json\n")
        return 2
    spec_path = Path(args[0])
    rank, world = rank_and_world()
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        entry = ENTRIES.get(spec.get("kind"))
        if entry is None:
            raise ValueError(f"{spec_path}: kind {spec.get('kind')!r} is not launchable ({sorted(ENTRIES)})")
        data = {name: read_jsonl(path) for name, path in spec["data"].items()}
        objects = pickle.loads(Path(spec["objects"]).read_bytes()) if spec.get("objects") else {}
        fail_rank = os.environ.get(FAIL_RANK_ENV)
        if fail_rank is not None and int(fail_rank) == rank:
            raise RuntimeError(f"injected failure on rank {rank} ({FAIL_RANK_ENV})")
        metrics = entry(spec, data, objects, rank, world)
        metrics["world_size"] = world
        import torch.distributed as dist

        initialized = dist.is_available() and dist.is_initialized()
        if rank == 0:
            metrics["backend"] = dist.get_backend() if initialized else "none"
            Path(spec["result"]).write_text(json.dumps(metrics), encoding="utf-8")
    except BaseException:
        (spec_path.parent / f"error_rank{rank}.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise
    if initialized:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
