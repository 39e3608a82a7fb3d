"""The two entry points of every evaluation (CLI, pipeline, studies): a GRM sampled, or a scalar RM's scores.

Both take the items, what judges them, and one ``EvalSpec``; the benchmark's protocol (``spec.resolved_protocol``)
is looked up in ``grm.eval.protocols.PROTOCOLS``. Metric names: ``report.metrics()``
(``eval/{benchmark}/{model}/{method}_k{k}/{metric}``, ``grm.eval.metric_key``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grm.eval.metric_key import METARM
from grm.eval.protocols import get_protocol
from grm.eval.protocols.base import MetaScorer
from grm.eval.spec import EvalReport, EvalSpec, check_items
from grm.sampling.base import Sampler
from grm.schemas import Item


def evaluate(
    items: Sequence[Item], sampler: Sampler, spec: EvalSpec, meta_scorer: MetaScorer | None = None
) -> EvalReport:
    """Evaluate a sampler-backed GRM on ``items`` (one benchmark) under the benchmark's protocol.

    Args:
        items: canonical items of one benchmark.
        sampler: any ``Sampler``.
        spec: every setting (``EvalSpec``).
        meta_scorer: batch meta RM (meta-RM prompts -> scores); needed by method ``metarm``.

    Returns:
        The report; ``report.metrics()`` gives the flat metric names.
    """
    check_items(items, spec.benchmark)
    if METARM in spec.methods and meta_scorer is None:
        raise ValueError("method 'metarm' needs a meta RM: pass meta_scorer (CLI: --meta-rm DIR)")
    return get_protocol(spec.resolved_protocol()).evaluate(items, sampler, spec, meta_scorer)


def evaluate_scores(
    items: Sequence[Item], scores: Mapping[str, Sequence[float]], spec: EvalSpec, source: str = "<scores>"
) -> EvalReport:
    """Score a scalar RM's precomputed scores with the same verdict and benchmark scoring code (cell ``scalar_k1``).

    Args:
        items: the benchmark items; each id must have a score list of length ``item.n``.
        scores: id -> scores in the item's response order (extra ids are ignored: one file can cover many
            benchmarks).
        spec: the settings read here: benchmark, model_name, seed, tie_policy, scorer, protocol, single_threshold
            (a single response is predicted correct when its score is above it; ROC-AUC is threshold-free).
        source: name of the scores file, for errors.

    Returns:
        The report.
    """
    return get_protocol(spec.resolved_protocol()).score(items, scores, spec, source)
