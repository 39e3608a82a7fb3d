"""Training across processes: ``launcher: torchrun`` runs a training as ``torchrun ... -m grm.training.ranks SPEC``.

Three kinds launch, each a section with the same launcher fields (``launcher``, ``nproc_per_node``, ``nnodes``,
``rdzv_endpoint``, ``accelerate_config``; ``grm.config`` checks them at load):

* ``sft`` (``rft.train``): ``grm.training.sft.train_sft`` (TRL's SFTTrainer; DDP, FSDP2, ZeRO-3 via accelerate);
* ``grpo`` (``rl``): ``grm.training.grpo.train_grpo`` (TRL's GRPOTrainer; the same);
* ``meta_rm`` (``meta_rm.train``): ``grm.training.meta_rm_train.train_meta_rm`` (a hand loop under ``torch.nn.parallel.DDP``).

The caller (the kind's function when ``cfg.launcher == "torchrun"``) calls ``run_launched``: it writes the records
(JSONL), the picklable extras (GRPO's reward functions and callbacks) and a JSON spec into a work folder, starts
``python -m torch.distributed.run`` (or ``accelerate launch --config_file`` when ``cfg.accelerate_config`` is set),
streams the ranks' output into its own log, and reads back the metrics rank 0 wrote. A rank that raises writes its
traceback to ``error_rank{r}.txt`` before exiting non-zero; the caller fails with the exit code and the first
failing rank's error. Rank 0 alone writes the model folder (atomically), so a failed launch leaves no model behind.

The step stays the global one (the same data per optimizer step as one process), split evenly over the
``world = nproc_per_node * nnodes`` ranks:

* sft: ``rft.train.batch_size`` sequences per micro-step; each rank trains on ``batch_size / world``.
* grpo: ``rl.prompts_per_step * rl.num_generations`` rollouts per step (TRL's generation batch, which must hold
  whole groups); each rank generates and scores ``prompts_per_step * num_generations / world`` of them (a group may
  straddle ranks: TRL gathers the rewards before computing the group advantages); with ``rl.general_coef > 0``
  each rank takes its rank-strided ``1 / world`` slice of the same seeded ``rl.general_batch_size`` batch.
* meta_rm: ``meta_rm.train.batch_size`` pairs per step; every rank draws the same seeded indices and takes its
  rank-strided ``1 / world`` of them; DDP averages the gradients, so a step equals one process's up to the order of
  the float sums (the logged loss is the all-reduced mean).

On a machine without CUDA the ranks run over gloo (``ACCELERATE_USE_CPU=true`` for the Trainer kinds).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import runpy
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from grm.errors import UserError

logger = logging.getLogger(__name__)

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
OBJECTS_FILE = "objects.pkl"
SECTIONS = {"sft": "rft.train", "grpo": "rl", "meta_rm": "meta_rm.train"}  # kind -> the config key it lives under
FAIL_RANK_ENV = "GRM_TEST_FAIL_RANK"  # tests: the rank that raises once the ranks started
RANK_MODULE = "grm.training.ranks"  # what each rank runs: python -m grm.training.ranks SPEC.json
WATCH_FLAG = "--end-with-parent"  # python -m grm.training.launch --end-with-parent PID MODULE ARGS...


class LaunchError(RuntimeError):
    """A launched training failed: the exit code and the failing rank's error."""


class LaunchFields(Protocol):
    """What the launcher reads from a section (``RFTTrainConfig``, ``RLConfig``, ``MetaRMTrainConfig``)."""

    launcher: str
    nproc_per_node: int
    nnodes: int
    rdzv_endpoint: str | None
    accelerate_config: str | None


def world_size(cfg: LaunchFields) -> int:
    return cfg.nproc_per_node * cfg.nnodes


def rank_and_world() -> tuple[int, int]:
    """This process's ``(RANK, WORLD_SIZE)`` as torchrun / accelerate set them; ``(0, 1)`` outside a launch."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def _write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(dict(row)) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_spec(
    kind: str,
    work: Path,
    model_dir: str | Path,
    data: Mapping[str, Sequence[Mapping[str, Any]] | None],
    out_dir: str | Path,
    cfg: Any,
    use_cpu: bool,
    options: Mapping[str, Any] | None = None,
    objects: Mapping[str, Any] | None = None,
) -> Path:
    """The spec every rank reads: the kind, model, record files, output folder and the section (launcher
    ``inprocess``: each rank runs the in-process function and takes its share of the global batch itself)."""
    if kind not in SECTIONS:
        raise ValueError(f"kind {kind!r} is not launchable; use one of {sorted(SECTIONS)}")
    work.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, rows in data.items():
        if rows is not None:
            files[name] = str(work / f"{name}.jsonl")
            _write_jsonl(work / f"{name}.jsonl", rows)
    objects_path = None
    if objects:
        objects_path = work / OBJECTS_FILE
        try:
            objects_path.write_bytes(pickle.dumps(dict(objects)))
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise ValueError(
                f"{SECTIONS[kind]}.launcher=torchrun: {sorted(objects)} must be picklable to reach the launched "
                f"processes (module-level classes or functions, no lambdas or closures): {exc}"
            ) from exc
    spec = {
        "kind": kind,
        "model_dir": str(model_dir),
        "data": files,
        "out_dir": str(out_dir),
        "cfg": dataclasses.asdict(dataclasses.replace(cfg, launcher="inprocess")),
        "options": dict(options or {}),
        "objects": str(objects_path) if objects_path else None,
        "use_cpu": use_cpu,
        "result": str(work / RESULT_FILE),
    }
    path = work / SPEC_FILE
    path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    return path


def command(spec: Path, cfg: LaunchFields, python: str = sys.executable) -> list[str]:
    """The launch command line (torchrun, or accelerate with ``cfg.accelerate_config``)."""
    if cfg.accelerate_config:
        return [
            python, "-m", "accelerate.commands.launch", "--config_file", str(cfg.accelerate_config),
            "--num_processes", str(world_size(cfg)), "--num_machines", str(cfg.nnodes),
            "-m", RANK_MODULE, str(spec),
        ]  # fmt: skip
    cmd = [python, "-m", "torch.distributed.run", f"--nproc_per_node={cfg.nproc_per_node}"]
    if cfg.nnodes == 1:
        cmd.append("--standalone")
    else:  # every node runs this same command; torchrun's c10d rendezvous joins them
        cmd += [f"--nnodes={cfg.nnodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={cfg.rdzv_endpoint}"]
    return [*cmd, "-m", RANK_MODULE, str(spec)]


def ending_with_parent(cmd: Sequence[str], parent: int | None = None) -> list[str]:
    """``cmd`` (``python -m MODULE ARGS...``) run so that it gets SIGTERM when ``parent`` dies, even by SIGKILL.

    torchrun stops its ranks on SIGTERM, so a stage process that is killed (a crash test, an OOM kill, a cancelled
    flow) leaves no ranks training on (and writing into its temp folder) behind it. The module runs inside
    ``python -m grm.training.launch --end-with-parent PID``, which sets the signal (Linux ``PR_SET_PDEATHSIG``)
    after exec: a ``preexec_fn`` would do it between fork and exec, which is unsafe in a threaded parent such as a
    Prefect worker.

    >>> ending_with_parent(["py", "-m", "torch.distributed.run", "--standalone", "x"], parent=7)
    ['py', '-m', 'grm.training.launch', '--end-with-parent', '7', 'torch.distributed.run', '--standalone', 'x']
    """
    python, dash_m, module, *args = cmd
    if dash_m != "-m":
        raise ValueError(f"expected `python -m MODULE ...`, got {list(cmd)}")
    return [python, "-m", "grm.training.launch", WATCH_FLAG, str(os.getpid() if parent is None else parent), module,
            *args]  # fmt: skip


def _run_ending_with_parent(parent: int, module: str, argv: Sequence[str]) -> int:
    """Run ``python -m module argv`` in this process, which gets SIGTERM when ``parent`` dies (Linux; elsewhere the
    module just runs)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was set
            sys.stderr.write(f"{module}: the launching process {parent} is gone; not starting\n")
            return 1
    sys.argv = [module, *argv]
    runpy.run_module(module, run_name="__main__", alter_sys=True)  # its sys.exit() carries the exit code
    return 0


def launch_env(num_threads: int, use_cpu: bool) -> dict[str, str]:
    """The ranks' environment: this process's, the import path of this checkout, and CPU DDP over gloo."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])  # the folder holding the grm package
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", str(num_threads))
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
    kind: str,
    model_dir: str | Path,
    data: Mapping[str, Sequence[Mapping[str, Any]] | None],
    out_dir: str | Path,
    cfg: Any,
    work: Path,
    use_cpu: bool,
    *,
    num_threads: int = 1,
    options: Mapping[str, Any] | None = None,
    objects: Mapping[str, Any] | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Launch a ``kind`` training over ``world_size(cfg)`` processes and return rank 0's metrics.

    Args:
        kind: ``sft``, ``grpo`` or ``meta_rm`` (``ENTRIES``).
        model_dir: the model every rank starts from.
        data: named record lists (``examples``; GRPO: ``rows`` and ``general``), written as JSONL.
        out_dir: the model folder rank 0 writes.
        cfg: the section; its launcher fields say how to launch (already checked at load).
        work: a private folder for the spec, the records and the ranks' results and errors.
        use_cpu: gloo on CPU (else NCCL on the GPUs).
        num_threads: ``OMP_NUM_THREADS`` of each rank (unless set already).
        options: JSON-able keyword arguments of the kind's function.
        objects: picklable keyword arguments (GRPO's ``reward_funcs``, ``callbacks``).
        echo: where each line of the ranks' output goes (default: this module's logger at INFO).

    Raises:
        UserError: an accelerate config on CPU (accelerate starts a single process there).
        LaunchError: the launcher exited non-zero (message: exit code, failing rank, its last traceback lines).
    """
    section = SECTIONS.get(kind, kind)
    if use_cpu and cfg.accelerate_config:  # measured: `accelerate launch --cpu --num_processes 2` runs 1 process
        raise UserError(
            f"{section}.accelerate_config={cfg.accelerate_config!r}: accelerate starts a single process on CPU (it "
            "needs MPI for more); leave accelerate_config null on CPU (torchrun runs DDP over gloo) or use GPUs"
        )
    spec = write_spec(kind, work, model_dir, data, out_dir, cfg, use_cpu, options, objects)
    cmd = command(spec, cfg)
    echo = echo or (lambda line: logger.info("%s", line))
    logger.info("launching %d-process %s training: %s", world_size(cfg), section, " ".join(cmd))
    tail: list[str] = []
    with subprocess.Popen(
        ending_with_parent(cmd), env=launch_env(num_threads, use_cpu), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        try:
            for line in proc.stdout:  # stream the ranks' log as it comes
                line = line.rstrip("\n")
                echo(line)
                tail = (tail + [line])[-40:]
            rc = proc.wait()
        except BaseException:  # interrupted or cancelled here: stop the ranks too (torchrun ends them on SIGTERM)
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    if rc != 0:
        errors = rank_errors(work)
        if errors:
            rank, text = errors[0]
            last = "\n".join(text.strip().splitlines()[-12:])
            raise LaunchError(f"{section} training launch exited with {rc}; rank {rank} failed:\n{last}")
        raise LaunchError(
            f"{section} training launch exited with {rc} (no rank wrote an error); last output:\n" + "\n".join(tail)
        )
    result = work / RESULT_FILE
    if not result.exists():
        raise LaunchError(f"{section} training launch exited 0 but rank 0 wrote no {result}")
    return json.loads(result.read_text(encoding="utf-8"))


def main(argv: Sequence[str] | None = None) -> int:
    """``--end-with-parent PID MODULE ARGS...``: run the launcher MODULE ending with PID (``ending_with_parent``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [WATCH_FLAG] and len(args) >= 3:
        return _run_ending_with_parent(int(args[1]), args[2], args[3:])
    sys.stderr.write(f"usage: python -m grm.training.launch {WATCH_FLAG} PID MODULE ARGS...\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
