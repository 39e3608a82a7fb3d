"""``EvalSpec``: every setting of one evaluation, frozen and passed whole; ``EvalReport``: what it produced.

The settings are stated once, here; the CLI (``grm eval``), the pipeline's ``eval.*`` / ``bench.*`` stages and
the studies build one spec and hand it to ``grm.eval.run.evaluate`` (a GRM) or ``evaluate_scores`` (a scalar RM's
scores). ``resolved()`` fills what the benchmark's registration decides (protocol, scorer, tie rule).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from grm.benchmarks import registry
from grm.eval.metric_key import METARM, VOTING, MetricKey
from grm.method.verdicts import META_VOTES, TIE_POLICIES

GREEDY_ORDERS = ("shuffled", "original")
OFFICIAL = "official"
STANDARD = "standard"


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation's settings (SPEC §5, §7).

    Attributes:
        benchmark: benchmark name (registered names pick their official protocol, scorer and tie rule).
        model_name: name used in metric names.
        ks: sample counts for Voting@k / MetaRM@k; all read from one set of ``max(ks)`` samples (kept sorted, unique).
        methods: ``voting`` and/or ``metarm`` (``metarm`` needs a meta scorer); greedy is always run.
        k_meta: samples kept by the meta RM (default k // 2).
        meta_vote: how MetaRM@k uses the meta scores (``grm.method.verdicts.META_VOTES``: ``top`` keeps ``k_meta``,
            ``weighted``, ``fallback`` = Voting@k, marked by ``fell_back`` = 1 in every MetaRM@k cell); the
            standard protocol only (another protocol with MetaRM@k and not ``top`` is refused).
        temperature: sampling temperature of the voting samples (paper: 0.5).
        max_new_tokens: generation budget per judgement.
        seed: seeds shuffles, sampling and tie breaks; the same seed gives the same report.
        template: prompt template.
        tie_policy: ``random`` | ``strict`` | ``half`` | ``official`` (the benchmark's own rule).
        scorer: override the benchmark's scorer (``grm.benchmarks.scoring.SCORERS``); None = the registered one.
        greedy_order: ``shuffled`` (seeded per item) or ``original`` (stored order).
        hygiene: also run the reversed-order greedy pass (and, unless ``seed_agreement`` is False, the second-seed
            voting pass).
        seed_agreement: run the second-seed voting pass (doubles the sampling cost); None = follow ``hygiene``.
        protocol: override the benchmark's protocol (``grm.eval.protocols.PROTOCOLS``); None = the registered one.
            The two-game protocol ignores ``tie_policy``, ``greedy_order``, ``hygiene`` and ``seed_agreement``.
        single_threshold: scalar scores only: a single response is predicted correct when its score is above this.
    """

    benchmark: str
    model_name: str
    ks: tuple[int, ...] = (1, 8)
    methods: tuple[str, ...] = (VOTING,)
    k_meta: int | None = None
    meta_vote: str = "top"
    temperature: float = 0.5
    max_new_tokens: int = 512
    seed: int = 0
    template: str = "deepseek-grm"
    tie_policy: str = "random"
    scorer: str | None = None
    greedy_order: str = "shuffled"
    hygiene: bool = True
    seed_agreement: bool | None = None
    protocol: str | None = None
    single_threshold: float = 0.0

    def __post_init__(self) -> None:
        ks = tuple(sorted({int(k) for k in self.ks}))
        if not ks or ks[0] < 1:
            raise ValueError(f"ks must be positive integers, got {list(ks) or list(self.ks)}")
        object.__setattr__(self, "ks", ks)
        object.__setattr__(self, "methods", tuple(self.methods))
        unknown = set(self.methods) - {VOTING, METARM}
        if unknown:
            raise ValueError(f"Unknown method(s) {sorted(unknown)}. Available: {VOTING}, {METARM}")
        if self.greedy_order not in GREEDY_ORDERS:
            raise ValueError(f"Unknown greedy_order {self.greedy_order!r}. Available: {', '.join(GREEDY_ORDERS)}")
        if self.tie_policy != OFFICIAL and self.tie_policy not in TIE_POLICIES:
            raise ValueError(
                f"Unknown tie_policy {self.tie_policy!r}. Available: {', '.join(TIE_POLICIES + (OFFICIAL,))}"
            )
        if self.meta_vote not in META_VOTES:
            raise ValueError(f"Unknown meta_vote {self.meta_vote!r}. Available: {', '.join(META_VOTES)}")
        if self.meta_vote != "top" and METARM in self.methods and self.resolved_protocol() != STANDARD:
            raise ValueError(
                f"meta_vote {self.meta_vote!r}: the {self.resolved_protocol()} protocol keeps the top-k_meta filter "
                "only; use meta_vote 'top' (or no MetaRM@k)"
            )

    @property
    def k_max(self) -> int:
        return self.ks[-1]

    @property
    def runs_seed_agreement(self) -> bool:
        """Whether the second-seed voting pass runs (``seed_agreement``, else ``hygiene``) and there is voting."""
        return (self.hygiene if self.seed_agreement is None else self.seed_agreement) and VOTING in self.methods

    def replace(self, **changes: Any) -> EvalSpec:
        return dataclasses.replace(self, **changes)

    def resolved_protocol(self) -> str:
        """``protocol`` if given, else the registered benchmark's (``BenchmarkSpec.protocol``), else ``standard``."""
        return resolve_protocol(self.benchmark, self.protocol)

    def resolved_scorer(self) -> str:
        """``scorer`` if given, else the registered benchmark's, else plain ``accuracy``."""
        return resolve_scorer(self.benchmark, self.scorer)

    def resolved_tie_policy(self) -> tuple[str, str | None]:
        """(policy to apply, the benchmark's official policy or None for unregistered benchmarks)."""
        return resolve_tie_policy(self.tie_policy, self.benchmark)


def resolve_tie_policy(tie_policy: str, benchmark: str) -> tuple[str, str | None]:
    """(policy to apply, the benchmark's official policy or None for unregistered benchmarks)."""
    try:
        official: str | None = registry.get_benchmark(benchmark).official_tie_policy
    except KeyError:
        official = None
    if tie_policy == OFFICIAL:
        return official or "strict", official
    if tie_policy not in TIE_POLICIES:
        raise ValueError(f"Unknown tie_policy {tie_policy!r}. Available: {', '.join(TIE_POLICIES + (OFFICIAL,))}")
    return tie_policy, official


def resolve_scorer(benchmark: str, scorer: str | None) -> str:
    """The registered benchmark's scorer, ``scorer`` if given, else plain ``accuracy``."""
    if scorer is not None:
        return scorer
    try:
        return registry.get_benchmark(benchmark).scorer
    except KeyError:
        return "accuracy"


def resolve_protocol(benchmark: str, protocol: str | None) -> str:
    """``protocol`` if given, else the registered benchmark's (``BenchmarkSpec.protocol``), else ``standard``."""
    if protocol is not None:
        if protocol not in registry.PROTOCOLS:
            raise ValueError(f"Unknown protocol {protocol!r}. Available: {', '.join(registry.PROTOCOLS)}")
        return protocol
    try:
        return registry.get_benchmark(benchmark).protocol
    except KeyError:
        return STANDARD


@dataclass
class EvalReport:
    """Everything one (benchmark, model) evaluation produced."""

    benchmark: str
    model_name: str
    tie_policy: str  # the policy actually applied
    official_tie_policy: str | None
    settings: dict[str, Any]
    cells: dict[str, dict[str, float]]  # "greedy_k1" / "voting_k8" / "scalar_k1" -> metric -> value
    n_items: int
    per_item: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, float | None]:
        """Flat ``eval/{benchmark}/{model}/{cell}/{metric}`` -> value (NaN becomes None)."""
        return {
            str(MetricKey.of(self.benchmark, self.model_name, cell, name)): (
                None if isinstance(v, float) and math.isnan(v) else v
            )
            for cell, values in self.cells.items()
            for name, v in values.items()
        }


def check_items(items: Sequence[Any], benchmark: str) -> None:
    if not items:
        raise ValueError(f"{benchmark}: no items to evaluate")
