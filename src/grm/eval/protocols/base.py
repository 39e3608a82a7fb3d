"""What a registered evaluation protocol is: how it runs a GRM, how it scores a scalar RM, which cells it fills."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from grm.eval.metric_key import GREEDY, GREEDY_SWAP, SCALAR, Cell
from grm.eval.spec import EvalReport, EvalSpec
from grm.sampling.base import Sampler
from grm.schemas import Item

# grm.eval.metrics.summarize: the names of every cell of the standard protocol
SUMMARY_NAMES = (
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "parse_fail_rate", "item_fail_rate", "tie_rate", "n_items",
)  # fmt: skip
SWAP_NAMES = ("accuracy", "accuracy_ci_low", "accuracy_ci_high", "parse_fail_rate", "tie_rate", "n_items")
MetaScorer = Callable[[list[str]], list[float]]
RunGRM = Callable[[Sequence[Item], Sampler, EvalSpec, "MetaScorer | None"], EvalReport]
ScoreScalar = Callable[[Sequence[Item], Mapping[str, Sequence[float]], EvalSpec, str], EvalReport]


@dataclass(frozen=True)
class EvalProtocol:
    """One evaluation protocol, registered by ``name`` in ``grm.eval.protocols.PROTOCOLS``.

    Attributes:
        name: the ``BenchmarkSpec.protocol`` / ``EvalSpec.protocol`` value that picks it.
        evaluate: ``(items, sampler, spec, meta_scorer) -> EvalReport`` for a sampler-backed GRM.
        score: ``(items, scores, spec, source) -> EvalReport`` for a scalar RM's scores (cell ``scalar_k1``).
        swap_cell: whether a GRM evaluation also fills ``greedy_swap_k1`` (when ``spec.hygiene``).
        description: one line for listings and errors.
        cell_names: the metric names every cell of a GRM evaluation holds whatever the items (the scorer's own
            names, which depend on the items' subsets or sections, are not among them).
        hygiene_names: the names ``greedy_k1`` adds with ``spec.hygiene`` (two-response items or more).
        seed_agreement: whether ``voting_k{k_max}`` gets ``seed_agreement`` when ``spec.runs_seed_agreement``.
    """

    name: str
    evaluate: RunGRM
    score: ScoreScalar
    swap_cell: bool
    description: str
    cell_names: tuple[str, ...] = SUMMARY_NAMES
    hygiene_names: tuple[str, ...] = ("position_flip_rate", "position_n_decided")
    seed_agreement: bool = True

    def cells(self, spec: EvalSpec) -> list[Cell]:
        """The cells a GRM evaluation under ``spec`` fills, in table order (``spec.methods`` as given)."""
        out = [Cell(GREEDY, 1)]
        if self.swap_cell and spec.hygiene:
            out.append(Cell(GREEDY_SWAP, 1))
        out += [Cell(m, k) for m in spec.methods for k in spec.ks]
        return sorted(out, key=Cell.sort_key)


SCALAR_CELL = Cell(SCALAR, 1)
