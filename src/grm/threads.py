"""Torch CPU threads: the one call stage code uses to set them, under an optional process-wide cap.

A stage asks for its configured thread count (``rft.train.num_threads``, ``sampling.num_threads``). When the
pipeline runs independent stages at once (``runtime.parallel_stages``), each build runs in its own process with a
cap, so two concurrent stages share the cores instead of oversubscribing them (``tasks.engine.workers``). The thread count
never changes a result: on the tested CPUs (an AMD EPYC, an AVX-512 Xeon) the matmul, attention and reduction
kernels give bitwise the same numbers on 1 and 2 threads (``tests/integration/test_thread_count.py`` checks SFT,
sampling, the meta RM and GRPO), the Xeon with MKL's strict reproducibility mode that ``strict_math`` sets.

``strict_math`` sets ``MKL_CBWR=AUTO,STRICT`` (unless the environment sets ``MKL_CBWR``), MKL's strict conditional
numerical reproducibility, where a build starts: every ``set_torch_threads`` call, the ``grm`` CLI and a pipeline
run (``tasks.engine.runtime.pipeline_run``, before the fork server that builds fork from starts), so a build's processes
have it before torch runs a kernel. Without it MKL splits the reduction of a large-K matmul (a weight gradient
summed over every token of a batch) across threads on AVX-512 Xeons, so 1 and 2 threads give different last bits,
and a stage's result would follow the thread count the parallel-stage schedule gave it (``tasks.engine.workers``). With
it, measured on a 2-core AVX-512 Xeon, RFT, meta-RM and GRPO steps give bitwise the same weights on 1 and 2 threads
at a cost of 3-5% per training step (``bench/train_speed.py`` side by side). Non-MKL builds ignore the variable.

Example:
    >>> set_cap(1)
    >>> cap()
    1
    >>> set_cap(None)
"""

from __future__ import annotations

import os

STRICT_MKL = "AUTO,STRICT"
_cap: int | None = None


def set_cap(n: int | None) -> None:
    """Cap every later ``set_torch_threads`` call of this process at ``n`` threads (None: no cap)."""
    global _cap
    if n is not None and n < 1:
        raise ValueError(f"thread cap {n}: must be >= 1 or None")
    _cap = n


def cap() -> int | None:
    """The current cap (None: none)."""
    return _cap


def strict_math() -> None:
    """Set ``MKL_CBWR=AUTO,STRICT`` for this process and its children, unless the environment chose a mode."""
    os.environ.setdefault("MKL_CBWR", STRICT_MKL)


def set_torch_threads(n: int) -> int:
    """``torch.set_num_threads(min(n, cap))`` in MKL's strict mode (``strict_math``); returns the count applied."""
    strict_math()
    import torch

    applied = n if _cap is None else min(n, _cap)
    torch.set_num_threads(applied)
    return applied
