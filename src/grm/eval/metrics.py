"""Aggregate metrics over verdicts: accuracy with a bootstrap interval, parse-failure and tie rates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from grm.method.verdicts import Verdict


def bootstrap_ci(
    values: Sequence[float], seed: int = 0, n_boot: int = 1000, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (95% by default).

    Example:
        >>> lo, hi = bootstrap_ci([1, 0, 1, 1, 0, 1, 1, 1], seed=0)
        >>> 0.0 <= lo <= 0.75 <= hi <= 1.0
        True
    """
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, arr.size, size=(n_boot, arr.size))].mean(axis=1)
    return (float(np.quantile(means, alpha / 2)), float(np.quantile(means, 1 - alpha / 2)))


def paired_gap(
    a: Sequence[float], b: Sequence[float], seed: int = 0, n_boot: int = 2000, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Mean of ``a - b`` over the same items with a paired percentile-bootstrap interval: ``(gap, low, high)``.

    Pairing removes the between-item variance, so the interval of a gap is narrower than the two accuracy
    intervals suggest (the right test for "A beats B on this test set").

    Example:
        >>> gap, lo, hi = paired_gap([1, 1, 1, 0] * 50, [1, 0, 1, 0] * 50, seed=0)
        >>> round(gap, 2), lo > 0
        (0.25, True)
    """
    if len(a) != len(b):
        raise ValueError(f"paired_gap needs the same items on both sides, got {len(a)} and {len(b)} values")
    x = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if x.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    low, high = bootstrap_ci(x, seed=seed, n_boot=n_boot, alpha=alpha)  # resampling items resamples the pairs
    return (float(x.mean()), low, high)


def summarize(verdicts: Sequence[Verdict], seed: int = 0) -> dict[str, float]:
    """Metrics of one (model, method, k) cell.

    Returns keys: ``accuracy``, ``accuracy_ci_low``, ``accuracy_ci_high``, ``parse_fail_rate`` (failed samples /
    samples), ``item_fail_rate`` (items where every sample failed), ``tie_rate`` (items with a tied top), ``n_items``.
    """
    if not verdicts:
        raise ValueError("summarize needs at least one verdict")
    credits = [v.credit for v in verdicts]
    lo, hi = bootstrap_ci(credits, seed=seed)
    samples = sum(v.n_used for v in verdicts)
    return {
        "accuracy": float(np.mean(credits)),
        "accuracy_ci_low": lo,
        "accuracy_ci_high": hi,
        "parse_fail_rate": sum(v.n_failed for v in verdicts) / samples if samples else 0.0,
        "item_fail_rate": float(np.mean([v.totals is None for v in verdicts])),
        "tie_rate": float(np.mean([v.tied for v in verdicts])),
        "n_items": float(len(verdicts)),
    }
