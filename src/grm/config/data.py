"""The ``data`` section (``data.min_items``) and the embedded world's ``world`` section."""

from __future__ import annotations

from dataclasses import dataclass, field

from grm.config.fields import fail, positive, seed_field

FAMILIES = ("facts", "arith", "repeat")  # the embedded world's task families (grm.world.generator)


@dataclass(frozen=True)
class DataMinItemsConfig:
    """The fewest items each split must hold (``data.validate`` checks them before anything is published)."""

    train: int = field(default=1, metadata={"help": "fewest train items (>= 1: an empty train split trains nothing)"})
    val: int = field(default=1, metadata={"help": "fewest validation items (0 allows an empty val split)"})
    test: int = field(default=1, metadata={"help": "fewest test items (>= 1: an empty test split evaluates nothing)"})

    def __post_init__(self) -> None:
        for name in ("train", "val", "test"):
            value = getattr(self, name)
            least = 0 if name == "val" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                fail(f"data.min_items.{name}", value, f"must be an integer >= {least}")


@dataclass(frozen=True)
class DataConfig:
    """Where preference items come from and the limits every dataset is validated against."""

    source: str = field(
        default="world",
        metadata={
            "help": "'world' (the embedded synthetic world), a folder holding train.jsonl/val.jsonl/test.jsonl "
            "(+ general.jsonl when rft.general_ratio or rl.general_coef is > 0), or a landing folder of drops "
            "(subfolders with those splits, data.window picks them; docs/data.md); the held-out split's metrics are "
            "eval/world/... for the world and eval/heldout/... for any folder (never the folder's name, so a new drop "
            "keeps the gate's metric; the folder is the run's tag grm.data.source and its dataset inputs)"
        },
    )
    window: str = field(
        default="all",
        metadata={
            "help": "which drops of a landing folder data.source the run reads (docs/data.md): 'all' (every drop so "
            "far, concatenated in name order), 'last:N' (the N newest) or 'since:YYYY-MM-DD' (drops whose name "
            "starts with a date on or after it); a folder holding train/val/test.jsonl itself is one drop, read whole"
        },
    )
    data_dir: str = field(default="data", metadata={"help": "DVC-tracked folder the prepared datasets are written to"})
    max_responses: int = field(default=4, metadata={"help": "validation: 1 <= n <= max_responses"})
    max_chars: int = field(default=20000, metadata={"help": "validation: longest query/response text allowed"})
    min_items: DataMinItemsConfig = field(
        default_factory=DataMinItemsConfig,
        metadata={"help": "validation: the fewest items per split (train, val, test)"},
    )

    def __post_init__(self) -> None:
        positive("data", self, ("max_responses", "max_chars"))
        if not self.source:
            fail("data.source", self.source, "use 'world' or a folder with train/val/test JSONL files")
        # data.window's forms are grm.drops' rule: the plan step checks it (grm.plan.resolve_config)


@dataclass(frozen=True)
class WorldConfig:
    """Everything that defines one embedded world. Same config -> byte-identical items."""

    seed: int | None = seed_field("the fact table, the query splits and the items")
    n_train: int = field(default=4000, metadata={"help": "number of train items"})
    n_val: int = field(default=200, metadata={"help": "number of validation items"})
    n_test: int = field(
        default=1000,
        metadata={"help": "number of test items (each has n >= 2 unless test_single); 1000 gives +-3 points at 95%"},
    )
    n_entities: int = field(
        default=60, metadata={"help": "countries in the fact table (each has a unique capital and a language)"}
    )
    n_languages: int = field(default=12, metadata={"help": "languages shared between countries"})
    num_min: int = field(default=2, metadata={"help": "smallest addend of the arith family"})
    num_max: int = field(
        default=26,
        metadata={
            "help": "largest addend of the arith family. 2..26 (625 sums, all in the general-instruction data): the "
            "student half-knows the test sums after 800 RFT steps. With 2..20 (361 sums) 800 steps solved seed 0 at "
            "93.9% (no room) and 500 steps left seed 2 at 61.4% (docs/results.md)"
        },
    )
    repeat_max: int = field(default=4, metadata={"help": "largest repeat count of the repeat family (min is 2)"})
    family_mix: tuple[float, float, float] = field(
        default=(0.5, 0.5, 0.0),
        metadata={
            "help": "sampling weights of (facts, arith, repeat); must sum to > 0. arith's test sums are where the "
            "student stays unsure; facts carries the style cues (the rare ones are where RFT is weak and RL gains). "
            "repeat is off: its responses are long (CPU step time grows with the longest sequence)"
        },
    )
    n_probs: tuple[float, float, float, float] = field(
        default=(0.1, 0.55, 0.35, 0.0),
        metadata={"help": "probabilities of n = 1, 2, 3, 4 responses per item (n = 4 off by default: length)"},
    )
    facts_reference: bool = field(
        default=True,
        metadata={
            "help": "facts queries carry a reference note ('capital of Zorvia ? ref Lima'): the judge copies the "
            "answer from the query. False = the answer is world knowledge from the general-instruction mix (test "
            "capitals then appear only as wrong answers in training, and the tiny student learns that token prior "
            "instead of the comparison: below chance in 600 steps)"
        },
    )
    facts_cues: bool = field(
        default=True,
        metadata={
            "help": "facts queries end in a style cue ('capital of Zorvia ? ref Lima , terse') that decides whether "
            "the bare value or 'it is Lima' is best: two common cue words and six rare synonyms the world teacher "
            "misreads (TeacherConfig.cue_misread), a judging skill shared by train and test queries (docs/results.md, 'The embedded world')"
        },
    )
    cue_pair_share: float = field(
        default=0.7,
        metadata={
            "help": "share of cued facts items (n >= 2) that state the reference in both styles, so only the cue "
            "decides the best response; on the others a misread cue changes the scores but not the pick"
        },
    )
    general_cap: int = field(
        default=700, metadata={"help": "most general-instruction examples per family (a seeded subset; 0 = all)"}
    )
    test_single: bool = field(
        default=False,
        metadata={
            "help": "keep n = 1 items in the TEST split (default off: pairwise/listwise accuracy is measured on "
            "n >= 2 items; single responses are trained on with the 0/1 template, but evaluation scores them 1..10 "
            "against a midpoint, which the world's students never see). train/val keep n = 1 items either way"
        },
    )

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"world.{name}={value!r}: must be an integer >= 0; e.g. {name}=1000")
        if self.n_entities < 8:
            raise ValueError(f"world.n_entities={self.n_entities}: need >= 8 countries; raise it")
        if not 4 <= self.n_languages <= self.n_entities:
            raise ValueError(f"world.n_languages={self.n_languages}: must be in [4, n_entities={self.n_entities}]")
        if not 0 <= self.num_min < self.num_max:
            raise ValueError(f"world.num_min={self.num_min}, num_max={self.num_max}: need 0 <= num_min < num_max")
        if self.num_max - self.num_min < 3:
            raise ValueError(f"world.num_max={self.num_max}: the addend range must span >= 4 numbers")
        if not 3 <= self.repeat_max <= 9:
            raise ValueError(f"world.repeat_max={self.repeat_max}: must be in [3, 9]")
        if len(self.family_mix) != len(FAMILIES) or any(w < 0 for w in self.family_mix) or sum(self.family_mix) <= 0:
            raise ValueError(
                f"world.family_mix={self.family_mix!r}: need {len(FAMILIES)} non-negative weights for "
                f"{FAMILIES} with a positive sum, e.g. (0.4, 0.35, 0.25)"
            )
        if len(self.n_probs) != 4 or any(p < 0 for p in self.n_probs) or sum(self.n_probs) <= 0:
            raise ValueError(
                f"world.n_probs={self.n_probs!r}: need 4 non-negative weights for n = 1..4 with a positive "
                "sum, e.g. (0.1, 0.4, 0.25, 0.25)"
            )
        if not 0.0 <= self.cue_pair_share <= 1.0:
            raise ValueError(f"world.cue_pair_share={self.cue_pair_share!r}: must be a probability in [0, 1]")
        if self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("world: n_train + n_val + n_test is 0; ask for at least one item")

    @property
    def max_n(self) -> int:
        """The most responses an item of this world can have."""
        return max(n for n, p in enumerate(self.n_probs, start=1) if p > 0)
