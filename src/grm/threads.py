"""Torch CPU threads: the one call stage code uses to set them, under an optional process-wide cap.

A stage asks for its configured thread count (``rft.train.num_threads``, ``sampling.num_threads``). When the
pipeline runs independent stages at once (``runtime.parallel_stages``), each build runs in its own process with a
cap, so two concurrent stages share the cores instead of oversubscribing them (``tasks.workers``). The thread count
never changes a result: on the tested CPUs (an AMD EPYC, an AVX-512 Xeon) the matmul, attention and reduction
kernels give bitwise the same numbers on 1 and 2 threads (``tests/integration/test_thread_count.py`` checks SFT,
sampling, the meta RM and GRPO), the Xeon with MKL's strict reproducibility mode that ``import grm`` sets
(``MKL_CBWR=AUTO,STRICT``; see ``grm/__init__.py``).

Example:
    >>> set_cap(1)
    >>> cap()
    1
    >>> set_cap(None)
"""

from __future__ import annotations

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


def set_torch_threads(n: int) -> int:
    """``torch.set_num_threads(min(n, cap))``; returns the count applied."""
    import torch

    applied = n if _cap is None else min(n, _cap)
    torch.set_num_threads(applied)
    return applied
