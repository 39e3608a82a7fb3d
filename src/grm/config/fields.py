"""Field builders and value checks the config sections share (the launcher fields of rft.train, rl, meta_rm.train)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import field
from typing import Any

LAUNCHERS = ("inprocess", "torchrun")
SCHEDULERS = ("cosine", "linear", "constant", "constant_with_warmup")


def fail(key: str, value: object, fix: str) -> None:
    raise ValueError(f"{key}={value!r}: {fix}")


def positive(section: str, obj: Any, names: Iterable[str]) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            fail(f"{section}.{name}", value, "must be an integer >= 1")


def at_least(section: str, obj: Any, names: Iterable[str], low: float = 0.0, strict: bool = False) -> None:
    """Each named number must be ``> low`` (``strict``) or ``>= low``; NaN fails both."""
    for name in names:
        value = getattr(obj, name)
        if not (value > low if strict else value >= low):
            fail(f"{section}.{name}", value, f"must be {'>' if strict else '>='} {low:g}")


def seed_or_zero(seed: int | None) -> int:
    """A section's seed as the core uses it: ``None`` (a section built outside ``PipelineConfig``) means 0."""
    return 0 if seed is None else seed


def seed_field(what: str) -> Any:
    return field(default=None, metadata={"help": f"seed of {what}; null = the run's seed"})


# ---- the launcher fields of rft.train, rl and meta_rm.train (grm.training.launch) ------------------------------
def launcher_field(split: str) -> Any:
    return field(
        default="inprocess",
        metadata={
            "help": f"one of {LAUNCHERS}: train in the stage's process, or as nproc_per_node * nnodes DDP processes "
            f"(torchrun; gloo on CPU); {split}"
        },
    )


def nproc_field() -> Any:
    return field(default=2, metadata={"help": "processes per node with launcher: torchrun"})


def nnodes_field() -> Any:
    return field(default=1, metadata={"help": "nodes with launcher: torchrun (> 1 needs rdzv_endpoint)"})


def rdzv_field() -> Any:
    return field(default=None, metadata={"help": "HOST:PORT of torchrun's c10d rendezvous for nnodes > 1"})


def accelerate_field(what: str) -> Any:
    return field(
        default=None,
        metadata={
            "help": f"launcher: torchrun through `accelerate launch --config_file` with this file instead ({what})"
        },
    )


def check_launch(section: str, cfg: Any, shares: dict[str, tuple[int, str]]) -> None:
    """The launcher rules every launchable section shares (``rft.train``, ``rl``, ``meta_rm.train``).

    Args:
        section: the config key prefix the messages name.
        cfg: the section (fields ``launcher``, ``nproc_per_node``, ``nnodes``, ``rdzv_endpoint``).
        shares: ``{key: (count, what)}``: global counts that every one of the nproc_per_node * nnodes processes
            takes an equal share of, so each must be divisible by that number with launcher: torchrun.
    """
    if cfg.launcher not in LAUNCHERS:
        fail(f"{section}.launcher", cfg.launcher, f"use one of {list(LAUNCHERS)}")
    positive(section, cfg, ("nproc_per_node", "nnodes"))
    if cfg.launcher != "torchrun":
        return
    procs = cfg.nproc_per_node * cfg.nnodes
    for key, (count, what) in shares.items():
        if count % procs:
            fail(key, count, f"{what} = {count} must be divisible by nproc_per_node * nnodes = {procs} "
                  "(it is the global batch: each process takes an equal share)")  # fmt: skip
    if cfg.nnodes > 1 and not cfg.rdzv_endpoint:
        fail(f"{section}.rdzv_endpoint", cfg.rdzv_endpoint, "nnodes > 1 needs HOST:PORT of the rendezvous")
