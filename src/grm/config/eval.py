"""The ``eval`` section: the held-out evaluation and the real benchmarks beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

from grm.config.fields import fail, seed_field

# the top-tie rules of grm.method.verdicts.TIE_POLICIES (a test checks the two agree)
TiePolicy = Literal["random", "strict", "half"]
# the requestable ways MetaRM@k uses meta scores (grm.method.verdicts.META_VOTES less 'fallback', which eval.meta_min_auc picks)
MetaVote = Literal["top", "weighted"]


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation protocol: greedy, Voting@k and MetaRM@k read from one set of k_max samples per item."""

    ks: tuple[int, ...] = field(
        default=(1, 2, 4, 8),
        metadata={"help": "k values for Voting@k / MetaRM@k; 16 is configurable and doubles the sampling cost"},
    )
    temperature: float = field(default=0.5, metadata={"help": "sampling temperature for voting (paper: 0.5)"})
    k_meta: int | None = field(
        default=None, metadata={"help": "samples the meta RM keeps, <= max(ks); None = k // 2 (paper)"}
    )
    meta_vote: MetaVote = field(
        default="top",
        metadata={
            "help": "how MetaRM@k uses the meta scores: 'top' keeps the k_meta best-rated samples and votes over them "
            "(paper); 'weighted' lets every parsed sample vote with its scores times its meta score, so a meta RM "
            "that cannot rank an item's samples gives Voting@k back instead of Voting@k_meta (docs/meta-rm.md)"
        },
    )
    meta_min_auc: float | None = field(
        default=None,
        metadata={
            "help": "fall back to plain voting when the meta RM's held-out within-item AUC "
            "(meta_rm/train/val_within_item_auc, stored in its meta_rm.json) is below this (or not recorded): "
            "MetaRM@k is then Voting@k, marked fell_back=1 in every MetaRM@k cell and logged; null never falls back"
        },
    )
    tie_policy: TiePolicy = field(
        default="random", metadata={"help": f"top-tie handling, one of {get_args(TiePolicy)} (paper: random)"}
    )
    seed: int | None = seed_field("the evaluation's shuffles, samples and tie-breaks")
    hygiene: bool = field(default=True, metadata={"help": "greedy position-flip check (one more greedy pass)"})
    seed_agreement: bool = field(
        default=False,
        metadata={"help": "run-to-run agreement of Voting@k_max with seed + 1 (doubles the sampling cost)"},
    )
    limit: int | None = field(default=None, metadata={"help": "evaluate only the first N test items (None: all)"})
    benchmarks: tuple[str, ...] = field(
        default=("rewardbench", "realmistake"),
        metadata={
            "help": "registered real benchmarks (grm eval names) each trained GRM (rft, rl; MetaRM@k with the meta "
            "RM) is evaluated on besides the held-out split, as stages bench.{benchmark}.{model} with grm eval's "
            "code; metrics eval/{benchmark}/{model}/... (usable as registry.gate_metric). Default: the two of the "
            "paper's four (RewardBench, PPE, RMB, ReaLMistake) shipped in the repository (PPE is hub only; RMB has no "
            "licence to redistribute: list rmb with eval.benchdata at a copy holding it). On the embedded tiny model (128 positions, world vocabulary) the "
            "items are cut to fit the context (counted): a protocol check, not a quality measure. [] turns it off"
        },
    )
    benchmark_limit: int | None = field(
        default=10,
        metadata={
            "help": "items per benchmark, spread over its subsets (None: all). 10: enough for the CPU default to show "
            "the path works (a protocol check); measured on a default-shape model at load ~6 on 2 cores, 20 items "
            "took 1-100 s per benchmark and model (rows x generated tokens), so 10 keeps the added time near a "
            "minute (configs/gpu-recipe.yaml: all)"
        },
    )
    benchdata: str | None = field(
        default=None,
        metadata={
            "help": "folder holding the local benchmark copies (relative to the project folder); null: the copy "
            "shipped in the repository (benchdata/*.tar.gz: rewardbench, realmistake, judgebench, rm-bench, gsm8k; "
            "unpacked once into $GRM_CACHE_DIR or ~/.cache/grm; docs/benchdata.md). Each benchmark's own subfolder "
            "is keyed by content, and a missing one fails at load when eval.benchmarks lists it"
        },
    )

    @property
    def k_max(self) -> int:
        return max(self.ks)

    def __post_init__(self) -> None:
        if not self.ks or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in self.ks):
            fail("eval.ks", self.ks, "give one or more integers k >= 1, e.g. [1, 2, 4, 8]")
        if self.temperature < 0:
            fail("eval.temperature", self.temperature, "must be >= 0")
        if self.k_meta is not None and not 1 <= self.k_meta <= self.k_max:
            fail(
                "eval.k_meta",
                self.k_meta,
                f"must be in [1, max(eval.ks)={self.k_max}] (the meta RM keeps k_meta of the k samples; more than "
                "k_max is plain voting), or null for k // 2",
            )
        if self.meta_vote not in get_args(MetaVote):
            fail("eval.meta_vote", self.meta_vote, "use 'top' (paper) or 'weighted'")
        if self.meta_min_auc is not None and not 0 <= self.meta_min_auc <= 1:
            fail("eval.meta_min_auc", self.meta_min_auc, "must be in [0, 1] (an AUC), or null never to fall back")
        for name in ("limit", "benchmark_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                fail(f"eval.{name}", value, "must be >= 1, or null for every item")
