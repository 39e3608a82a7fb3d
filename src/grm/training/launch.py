"""Training across processes: ``launcher: torchrun`` runs SFT as ``torchrun ... -m grm.training.launch SPEC.json``.

The caller (``train_sft`` when ``cfg.launcher == "torchrun"``) writes the examples and a JSON spec into a work
folder, starts ``python -m torch.distributed.run`` (or ``accelerate launch --config_file`` when
``cfg.accelerate_config`` is set), streams the ranks' output into its own log, and reads back the metrics rank 0
wrote. A rank that raises writes its traceback to ``error_rank{r}.txt`` before exiting non-zero; the caller fails
with the exit code and the first failing rank's error. The model folder is written by rank 0 only (``train_sft``
moves it into place after every rank finished), so a failed launch leaves no model behind.

``rft.train.batch_size`` stays the global batch (sequences per optimizer step): each of the ``world`` ranks gets
``batch_size // world``, so a 2-process run sees the same examples per step as the single-process one. On a
machine without CUDA the ranks run DDP over gloo (``ACCELERATE_USE_CPU=true``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from grm.errors import UserError
from grm.pipeline_config import SFTStageConfig

logger = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
EXAMPLES_FILE = "examples.jsonl"


class LaunchError(RuntimeError):
    """A launched training failed: the exit code and the failing rank's error."""


def world_size(cfg: SFTStageConfig) -> int:
    return cfg.nproc_per_node * cfg.nnodes


def write_spec(
    work: Path, model_dir: str | Path, examples: Sequence[dict[str, str]], out_dir: str | Path, cfg: SFTStageConfig
) -> Path:
    """The spec every rank reads: the model, the examples file, the output folder and the per-rank SFT config."""
    work.mkdir(parents=True, exist_ok=True)
    with (work / EXAMPLES_FILE).open("w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps({"prompt": ex["prompt"], "completion": ex["completion"]}) + "\n")
    per_rank = dataclasses.replace(cfg, launcher="inprocess", batch_size=cfg.batch_size // world_size(cfg))
    spec = {
        "kind": "sft",
        "model_dir": str(model_dir),
        "examples": str(work / EXAMPLES_FILE),
        "out_dir": str(out_dir),
        "cfg": dataclasses.asdict(per_rank),
        "result": str(work / RESULT_FILE),
    }
    path = work / SPEC_FILE
    path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path


def command(spec: Path, cfg: SFTStageConfig, python: str = sys.executable) -> list[str]:
    """The launch command line (torchrun, or accelerate with ``cfg.accelerate_config``)."""
    if cfg.accelerate_config:
        return [
            python, "-m", "accelerate.commands.launch", "--config_file", str(cfg.accelerate_config),
            "--num_processes", str(world_size(cfg)), "--num_machines", str(cfg.nnodes),
            "-m", "grm.training.launch", str(spec),
        ]  # fmt: skip
    cmd = [python, "-m", "torch.distributed.run", f"--nproc_per_node={cfg.nproc_per_node}"]
    if cfg.nnodes == 1:
        cmd.append("--standalone")
    else:  # every node runs this same command; torchrun's c10d rendezvous joins them
        cmd += [f"--nnodes={cfg.nnodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={cfg.rdzv_endpoint}"]
    return [*cmd, "-m", "grm.training.launch", str(spec)]


def launch_env(cfg: SFTStageConfig, use_cpu: bool) -> dict[str, str]:
    """The ranks' environment: this process's, the import path of this checkout, and CPU DDP over gloo."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # the folder holding the grm package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(cfg.num_threads))
    env["PYTHONUNBUFFERED"] = "1"
    if use_cpu:
        env["ACCELERATE_USE_CPU"] = "true"  # the Trainer's accelerator then initialises gloo, not NCCL
    return env


def rank_errors(work: Path) -> list[tuple[int, str]]:
    """``(rank, traceback)`` of every rank that wrote an error, lowest rank first."""
    found = []
    for path in work.glob("error_rank*.txt"):
        found.append((int(path.stem.removeprefix("error_rank")), path.read_text(encoding="utf-8")))
    return sorted(found)


def run_launched(
    model_dir: str | Path,
    examples: Sequence[dict[str, str]],
    out_dir: str | Path,
    cfg: SFTStageConfig,
    work: Path,
    use_cpu: bool,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Launch SFT over ``world_size(cfg)`` processes and return rank 0's metrics.

    Raises:
        LaunchError: the launcher exited non-zero (message: exit code, failing rank, its last traceback lines).
    """
    if cfg.batch_size % world_size(cfg):
        raise UserError(
            f"rft.train.batch_size={cfg.batch_size}: must be divisible by nproc_per_node * nnodes = {world_size(cfg)}"
        )
    if use_cpu and cfg.accelerate_config:  # measured: `accelerate launch --cpu --num_processes 2` runs 1 process
        raise UserError(
            f"rft.train.accelerate_config={cfg.accelerate_config!r}: accelerate starts a single process on CPU (it "
            "needs MPI for more); leave accelerate_config null on CPU (torchrun runs DDP over gloo) or use GPUs"
        )
    spec = write_spec(work, model_dir, examples, out_dir, cfg)
    cmd = command(spec, cfg)
    echo = echo or (lambda line: logger.info("%s", line))
    logger.info("launching %d-process training: %s", world_size(cfg), " ".join(cmd))
    tail: list[str] = []
    with subprocess.Popen(
        cmd, env=launch_env(cfg, use_cpu), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # stream the ranks' log as it comes
            line = line.rstrip("\n")
            echo(line)
            tail = (tail + [line])[-40:]
        rc = proc.wait()
    if rc != 0:
        errors = rank_errors(work)
        if errors:
            rank, text = errors[0]
            last = "\n".join(text.strip().splitlines()[-12:])
            raise LaunchError(f"training launch exited with {rc}; rank {rank} failed:\n{last}")
        raise LaunchError(
            f"training launch exited with {rc} (no rank wrote an error); last output:\n" + "\n".join(tail)
        )
    result = work / RESULT_FILE
    if not result.exists():
        raise LaunchError(f"training launch exited 0 but rank 0 wrote no {result}")
    return json.loads(result.read_text(encoding="utf-8"))


def _sft_config(data: dict[str, Any]) -> SFTStageConfig:
    return SFTStageConfig(**data)


def main(argv: Sequence[str] | None = None) -> int:
    """One rank: read the spec, train, rank 0 writes the metrics; a failure writes ``error_rank{r}.txt``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        sys.stderr.write("usage: torchrun ... -m grm.training.launch SPEC.json\n")
        return 2
    spec_path = Path(args[0])
    rank = int(os.environ.get("RANK", "0"))
    try:
        spec = json.loads(spec_path.read_text(encoding="utf-8"))
        if spec.get("kind") != "sft":
            raise ValueError(f"{spec_path}: kind {spec.get('kind')!r} is not launchable (sft)")
        from grm.training.sft import train_sft

        with open(spec["examples"], encoding="utf-8") as fh:
            examples = [json.loads(line) for line in fh if line.strip()]
        fail_rank = os.environ.get("GRM_TEST_FAIL_RANK")  # tests: make one rank crash mid-training
        if fail_rank is not None and int(fail_rank) == rank:
            raise RuntimeError(f"injected failure on rank {rank} (GRM_TEST_FAIL_RANK)")
        metrics = train_sft(spec["model_dir"], examples, spec["out_dir"], _sft_config(spec["cfg"]))
        metrics["world_size"] = int(os.environ.get("WORLD_SIZE", "1"))
        if rank == 0:
            import torch.distributed as dist

            metrics["backend"] = dist.get_backend() if dist.is_available() and dist.is_initialized() else "none"
            Path(spec["result"]).write_text(json.dumps(metrics), encoding="utf-8")
    except BaseException:
        (spec_path.parent / f"error_rank{rank}.txt").write_text(traceback.format_exc(), encoding="utf-8")
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
