"""The metric names an evaluation will log, derived from its ``EvalSpec`` alone (no items, no sampler).

The pipeline's plan step checks a gate metric against these before any compute. Only the names that hold whatever
the items are: the benchmark scorer's own names (per subset, per section, ROC-AUC per task) depend on the items and
are left out; for the held-out split (an unregistered benchmark: plain ``accuracy``, no subsets) that is all of
them. A test compares these with the names of real evaluations over a grid of settings.
"""

from __future__ import annotations

from grm.eval.metric_key import FELL_BACK, GREEDY, GREEDY_SWAP, METARM, VOTING, Cell, MetricKey
from grm.eval.protocols import get_protocol
from grm.eval.protocols.base import SWAP_NAMES
from grm.eval.spec import EvalSpec


def expected_cells(spec: EvalSpec) -> dict[str, tuple[str, ...]]:
    """Cell name -> the metric names it holds whatever the items, for a GRM evaluation under ``spec``.

    Example:
        >>> sorted(expected_cells(EvalSpec("world", "rl", ks=(1, 4), hygiene=False)))
        ['greedy_k1', 'voting_k1', 'voting_k4']
    """
    protocol = get_protocol(spec.resolved_protocol())
    out: dict[str, tuple[str, ...]] = {}
    for cell in protocol.cells(spec):
        names = protocol.cell_names
        if cell == Cell(GREEDY, 1) and spec.hygiene:
            names += protocol.hygiene_names
        elif cell.method == GREEDY_SWAP:
            names = SWAP_NAMES
        elif cell == Cell(VOTING, spec.k_max) and spec.runs_seed_agreement and protocol.seed_agreement:
            names += ("seed_agreement",)
        elif cell.method == METARM and spec.meta_vote == "fallback":
            names += (FELL_BACK,)
        out[str(cell)] = names
    return out


def expected_metrics(spec: EvalSpec) -> set[str]:
    """The flat metric names (``eval/{benchmark}/{model}/{cell}/{name}``) a GRM evaluation under ``spec`` logs,
    whatever the items; the same names ``evaluate(...).metrics()`` gives on items without subsets under the plain
    ``accuracy`` scorer (the held-out split).

    Example:
        >>> sorted(expected_metrics(EvalSpec("world", "rl", ks=(1,), hygiene=False)))[:2]
        ['eval/world/rl/greedy_k1/accuracy', 'eval/world/rl/greedy_k1/accuracy_ci_high']
    """
    return {
        str(MetricKey.of(spec.benchmark, spec.model_name, cell, name))
        for cell, names in expected_cells(spec).items()
        for name in names
    }
