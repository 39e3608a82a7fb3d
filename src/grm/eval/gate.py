"""The registry gate's decision, pure: which alias a new GRM version gets, and why.

A held-out gate metric is decided on the **same items**: the champion is evaluated on the challenger's test split
with the same protocol, and the new version is promoted only when the lower end of the paired 95% bootstrap
interval of (challenger - champion) per-item credit clears ``registry.margin`` (``paired_gate_gap``, the paired
bootstrap of ``grm.eval.report.results``/``eval.compare``). A raw score on one split against a stored score on another says
nothing: an easy split makes any model look better. A benchmark gate metric is paired the same way over the
benchmark items both versions evaluated. Without a measured champion (``promote`` called directly), the old rule
stays: the new value must beat the champion's stored one by more than the margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grm.eval.metric_key import MetricKey
from grm.eval.metrics import paired_gap

CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class PairedGap:
    """Challenger - champion on the same items: mean per-item credit gap with its paired 95% bootstrap interval."""

    gap: float
    ci_low: float
    ci_high: float
    n_items: int


def parse_gate_metric(metric: str) -> MetricKey | None:
    """Split ``eval/{benchmark}/{model}/{cell}/{name}`` (one value of a cell: no ``/`` in ``name``); None for any
    other shape.

    Example:
        >>> parse_gate_metric("eval/world/rl/voting_k8/accuracy")
        MetricKey(benchmark='world', model='rl', cell='voting_k8', name='accuracy')
    """
    return MetricKey.parse(metric, nested=False)


def paired_gate_gap(
    challenger_rows: Sequence[Mapping[str, Any]], champion_rows: Sequence[Mapping[str, Any]], cell: str, seed: int = 0
) -> PairedGap:
    """The paired gap of ``cell``'s per-item credit, challenger - champion (rows: an eval report's ``per_item``).

    Raises:
        ValueError: the two reports cover other items, or a report lacks the cell's credit (the message says which).

    Example:
        >>> rows = lambda credits: [{"id": str(i), "credit": {"voting_k4": c}} for i, c in enumerate(credits)]
        >>> g = paired_gate_gap(rows([1, 1, 1, 0] * 50), rows([1, 0, 1, 0] * 50), "voting_k4")
        >>> round(g.gap, 2), g.ci_low > 0, g.n_items
        (0.25, True, 200)
    """
    ids_a, ids_b = [r["id"] for r in challenger_rows], [r["id"] for r in champion_rows]
    if ids_a != ids_b:
        raise ValueError(
            f"the challenger's and the champion's evaluations cover other items ({len(ids_a)} vs {len(ids_b)} items,"
            " or another order): they must be evaluated on the same test split with the same eval.limit"
        )
    try:
        a = [float(r["credit"][cell]) for r in challenger_rows]
        b = [float(r["credit"][cell]) for r in champion_rows]
    except KeyError as exc:
        raise ValueError(f"an evaluation report has no per-item credit of cell {cell!r} ({exc})") from exc
    gap, low, high = paired_gap(a, b, seed=seed)
    return PairedGap(gap, low, high, len(a))


def decide_alias(
    new_value: float,
    champion_value: float | None,
    margin: float,
    champion_version: str | None = None,
    metric: str = "",
    paired: PairedGap | None = None,
) -> tuple[str, str]:
    """Which alias a new GRM version gets, and why.

    Args:
        new_value: the new version's gate metric (on its own test split).
        champion_value: the champion's value of the metric on the same items (``paired`` given) or, without a
            measured champion, its stored value; None when it has none.
        margin: ``registry.margin``.
        champion_version: None when there is no champion (the new version becomes champion).
        metric: the gate metric's name (for the reason).
        paired: the paired gap challenger - champion on the same items; when given, the version is promoted only if
            its interval's lower end is above ``margin`` (a gap inside the noise keeps the champion).

    Example:
        >>> decide_alias(0.9, 0.2, 0.0, "1", paired=PairedGap(-0.05, -0.12, 0.02, 40))[0]  # higher raw, worse paired
        'challenger'
        >>> decide_alias(0.5, 0.4, 0.0, "1", paired=PairedGap(0.1, 0.03, 0.17, 40))[0]
        'champion'
        >>> decide_alias(0.71, 0.70, 0.02, "1")[0], decide_alias(0.73, 0.70, 0.02, "1")[0]  # stored values
        ('challenger', 'champion')
        >>> decide_alias(0.5, None, 0)[0]
        'champion'
    """
    what = metric or "the gate metric"
    if champion_version is None:
        return CHAMPION, f"no champion yet: the new version becomes champion ({new_value:.4f})"
    if paired is not None:
        interval = f"{paired.gap:+.4f}, 95% paired interval [{paired.ci_low:+.4f}, {paired.ci_high:+.4f}]"
        where = f"on the same {paired.n_items} test items"
        if math.isnan(paired.ci_low):
            return CHALLENGER, f"no paired gap {where} (no items): champion v{champion_version} stays"
        if paired.ci_low > margin:
            return CHAMPION, (
                f"beats champion v{champion_version} {where}: gap {interval}, whose lower end is above the margin "
                f"{margin}"
            )
        return CHALLENGER, (
            f"does not beat champion v{champion_version} {where}: gap {interval}, whose lower end is not above the "
            f"margin {margin}"
        )
    if champion_value is None or math.isnan(champion_value):
        return CHALLENGER, (
            f"champion v{champion_version} has no value of {what}: it stays champion (nothing to compare); evaluate "
            "it on this metric or move the alias by hand"
        )
    if math.isnan(new_value):
        return CHALLENGER, f"the new value of {what} is NaN: champion v{champion_version} stays"
    if new_value - champion_value > margin:
        return (
            CHAMPION,
            f"{new_value:.4f} beats champion v{champion_version}'s {champion_value:.4f} by more than {margin}",
        )
    return CHALLENGER, (
        f"{new_value:.4f} does not beat champion v{champion_version}'s {champion_value:.4f} by more than {margin}"
    )


@dataclass(frozen=True)
class Comparison:
    """What the flow measured about the champion before the gate (``tasks.champion``).

    ``champion_version``: the version evaluated, "" when there was no champion to evaluate (the gate checks the
    alias still points there: a champion another run registered meanwhile was not measured on these items, so the
    new version stays challenger); ``paired``: the paired
    gap on the gate cell (None for a metric without per-item credit); ``champion_value``: the champion's value of
    the gate metric on this run's test split; ``test_md5``: that split's DVC md5.
    """

    champion_version: str
    paired: PairedGap | None
    champion_value: float | None
    test_md5: str | None
