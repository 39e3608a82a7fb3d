"""A programmatic noisy teacher GRM for the embedded world (implements the ``Sampler`` protocol).

It reads rendered ``compact`` prompts back (query + responses ``R1: ...`` in the order shown, optional hint line,
optional single-response variant) and writes principles, a per-response critique and ``Scores: \\boxed{...}``::

    Specific Criteria: accuracy 8 , brevity 2
    Analysis: answer Kelt ; R1 Kelt = Kelt right short R2 Morn = Kelt wrong long
    Scores: \\boxed{10, 2}

The analysis states what the judge believes is the true answer (a fact or a sum it has to know, or the reference
note when ``WorldConfig.facts_reference``), then verifies every response against it: its value copied beside the
answer (``R2 Morn = Kelt``), then right/near/wrong and the style word. Writing the two values side by side is what
lets a tiny student learn the comparison (measured: facts accuracy 45% -> 70% for the same RFT budget). A student
unsure of the answer writes different answers in different samples, so its mistakes vary between samples (what
voting averages out).

Noise (all seeded, deterministic in (seed, prompt, sample index)):

* systematic and visible in the input: a **verbosity bias** (``length_bias``: when one response is the unique
  longest, e.g. "it is Lima" or "maybe 42", the teacher believes its answer and overlooks its style) -- a student
  that imitates unfiltered samples learns it, rejective sampling removes it; a **position bias** (it adopts the
  answer of Response 1);
* systematic but invisible: a fixed share of queries (``hard_share``) it consistently gets wrong (it believes one of
  the wrong answers shown, chosen independently of the order);
* random: per-sample slips (``random_error``: it believes another answer shown) and the principle weights
  (several candidate weightings);
* in the principles: a **misread style cue** (``cue_misread``): the rare facts cue words ("terse", "wordy", ...)
  it reads as asking for the opposite style, hinted or not; its principles line then names the wrong criterion
  and, on items that state the reference in both styles, its scores pick the wrong one.

A hint line (``The best response is: Response j``) makes it follow the hint with probability ``hint_strength``
(then no bias applies); otherwise it judges as usual, so hinted samples are more accurate but not perfect.

Principles written for it (``grm.method.prompts.with_principles``: the prompt ends ``Specific Criteria: ...``) it follows
instead of writing its own: the criterion names it knows (``accuracy``, ``brevity``, ``detail``, ...) and their
weights (no cue misread, no weight noise), continuing with the analysis; text naming none of them it ignores (it
writes its own). A principles-only prompt (``grm.method.prompts.render_principles_prompt``) gets just the principles line,
written from the query as in a judgement (cue misread and weight noise included).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grm.method.prompts import PRINCIPLES_MARK
from grm.world.generator import (
    ARITH_RE,
    COMMON_CUES,
    REPEAT_RE,
    STYLE_PRINCIPLES,
    World,
    WorldConfig,
    _h,
    facts_cue,
    family_of,
    is_hedged,
    principles,
    response_value,
    style_fits,
)

if TYPE_CHECKING:
    from grm.schemas import Item

HINT_RE = re.compile(r"\nThe best response is: Response (\d+)$")
RESP_RE = re.compile(r"^R(\d+): (.*)$")


@dataclass(frozen=True)
class ParsedPrompt:
    """A compact prompt read back: the query, the responses in shown order, the hint and the template variant."""

    query: str
    responses: tuple[str, ...]
    hint: int | None  # 1-based
    single_label: bool
    principles: str | None = None  # written in the prompt (the judge continues after them)
    principles_only: bool = False  # a principles-only prompt (query, no responses)


def parse_compact_prompt(prompt: str) -> ParsedPrompt:
    """Read a ``compact`` prompt (see ``grm.method.prompts.render_prompt``) back into its parts.

    Args:
        prompt: the rendered prompt (multi-response, single-response, with or without a hint line).

    Returns:
        The parsed prompt.

    Raises:
        ValueError: the text is not a compact world prompt.
    """
    if prompt.startswith("Query: ") and prompt.endswith("\nPrinciples:") and prompt.count("\n") == 1:
        return ParsedPrompt(prompt[len("Query: ") : -len("\nPrinciples:")], (), None, False, None, True)
    prompt, sep, given = prompt.partition("\n" + PRINCIPLES_MARK + " ")  # every other line starts Query/R<i>/Judge
    principles_given = given if sep else None
    hint = None
    m = HINT_RE.search(prompt)
    if m:
        hint = int(m.group(1))
        prompt = prompt[: m.start()]
    lines = prompt.split("\n")
    if len(lines) < 3 or not lines[0].startswith("Query: "):
        raise ValueError(f"not a compact prompt (expected 'Query: ...' first): {prompt[:80]!r}")
    query = lines[0][len("Query: ") :]
    if lines[-1] == "Judge 0 or 1:":
        if len(lines) != 3 or not lines[1].startswith("Response: "):
            raise ValueError(f"bad single-response compact prompt: {prompt[:120]!r}")
        return ParsedPrompt(query, (lines[1][len("Response: ") :],), hint, True, principles_given)
    if lines[-1] != "Judge:":
        raise ValueError(f"compact prompt must end with 'Judge:' or 'Judge 0 or 1:': {prompt[-80:]!r}")
    responses = []
    for i, line in enumerate(lines[1:-1], start=1):
        rm = RESP_RE.match(line)
        if not rm or int(rm.group(1)) != i:
            raise ValueError(f"expected 'R{i}: ...', got {line!r}")
        responses.append(rm.group(2))
    return ParsedPrompt(query, tuple(responses), hint, False, principles_given)


PRINCIPLE_WORD_RE = re.compile(r"([A-Za-z]+)\s*(?:[:=(]\s*)?(\d+)?")


def read_principles(family: str, query: str, text: str) -> tuple[tuple[str, int], tuple[str, int]] | None:
    """The ``((main, weight), (second, weight))`` principles a written principles text gives for a ``family`` query:
    the family's criterion names (for facts, the first of ``brevity``/``detail`` named decides the style) with the
    weights written after them (one weight given: the other is 10 minus it; none: the family's); None when the text
    names none of them (the teacher then writes its own).

    Example:
        >>> read_principles("facts", "capital of Zorvia ? ref Lima , terse", "accuracy 6 , brevity 4")
        (('accuracy', 6), ('brevity', 4))
    """
    (n1, w1), (n2, _) = principles(family, query)
    seconds = STYLE_PRINCIPLES if family == "facts" else (n2,)
    weights: dict[str, int] = {}
    second = None
    named = False
    for word, weight in PRINCIPLE_WORD_RE.findall(text):
        name = word.lower()
        if name != n1 and name not in seconds:
            continue
        named = True
        if name in seconds and second is None:
            second = name
        if weight and name not in weights and name in (n1, second):
            weights[name] = min(10, int(weight))
    if not named:
        return None
    second = second or n2
    if n1 in weights:
        w1 = weights[n1]
    elif second in weights:
        w1 = 10 - weights[second]
    return (n1, w1), (second, 10 - w1)


def item_problem(item: Item) -> str | None:
    """Why the world teacher cannot judge ``item``, as ``field: problem``, or None when it can.

    The teacher reads ``compact`` prompts back line by line, so it judges plain-string world queries whose query and
    responses are single lines. Such rows are valid data (a newline in a response is normal in real benchmarks):
    only this backend refuses them, naming the item, before anything is sampled.
    """
    if not isinstance(item.query, str):
        return "query: a chat transcript; the world teacher judges single-line world queries (use a model instead)"
    for name, text in [("query", item.query), *((f"responses[{i}]", r) for i, r in enumerate(item.responses))]:
        if "\n" in text or "\r" in text:
            return f"{name}: holds a line break; the world teacher reads compact prompts line by line (use a model)"
    try:
        family_of(item.query)
    except ValueError:
        return f"query: {item.query[:60]!r} is not a query of the embedded world (the teacher knows only those)"
    return None


@dataclass(frozen=True)
class TeacherConfig:
    """Noise knobs of the teacher (probabilities per sample unless stated)."""

    hard_share: float = field(default=0.15, metadata={"help": "share of queries the teacher consistently gets wrong"})
    position_bias: float = field(default=0.1, metadata={"help": "prob. it adopts the answer shown in Response 1"})
    length_bias: float = field(
        default=0.7, metadata={"help": "prob. it believes the unique longest response and overlooks its style"}
    )
    random_error: float = field(
        default=0.08, metadata={"help": "prob. of a slip: it believes another answer shown (consistent critique)"}
    )
    hint_strength: float = field(default=0.5, metadata={"help": "prob. a hinted sample follows the hint"})
    cue_misread: float = field(
        default=0.95,
        metadata={
            "help": "prob. it reads a rare facts style cue ('terse', 'wordy', ...) as asking for the opposite style "
            "(its principles line then names the wrong criterion); the common cues 'brief' and 'full' it reads right"
        },
    )

    def __post_init__(self) -> None:
        for name in ("hard_share", "position_bias", "length_bias", "random_error", "hint_strength", "cue_misread"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"TeacherConfig.{name}={value!r}: must be a probability in [0, 1]")

    @classmethod
    def from_error_rate(cls, error_rate: float, hint_strength: float = 0.5) -> TeacherConfig:
        """Scale the default noise mix so that ``error_rate`` is roughly the per-sample error of the teacher."""
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate={error_rate!r}: must be in [0, 1]; e.g. 0.3")
        scale = error_rate / 0.4
        return cls(
            hard_share=min(1.0, 0.15 * scale),
            position_bias=min(1.0, 0.1 * scale),
            length_bias=min(1.0, 0.7 * scale),
            random_error=min(1.0, 0.08 * scale),
            hint_strength=hint_strength,
            cue_misread=min(1.0, 0.95 * scale),
        )


@dataclass
class _Verdict:
    value: str  # what the critique copies from the response (answer / count)
    main: float  # quality on the main principle (0..1)
    second: float  # quality on the secondary principle (0..1)


class TeacherSampler:
    """The world's noisy teacher GRM; a drop-in ``Sampler`` for ``compact`` prompts.

    Args:
        error_rate: if given, overrides ``config`` with ``TeacherConfig.from_error_rate(error_rate)``.
        seed: the teacher's own seed (which queries are "hard" for it and the per-sample noise).
        world: the world config whose fact table it knows (default ``WorldConfig()``).
        config: the noise knobs.
    """

    def __init__(
        self,
        error_rate: float | None = None,
        seed: int = 0,
        world: WorldConfig | None = None,
        config: TeacherConfig | None = None,
    ):
        self.config = (
            TeacherConfig.from_error_rate(error_rate) if error_rate is not None else config or TeacherConfig()
        )
        self.seed = seed
        self.world = World(world or WorldConfig())

    # ---- input check (called by grm.method.judging before sampling) --------------------------------------------------
    def check_items(self, items: Sequence[Item], template: str) -> None:
        """Refuse, before any sampling, items or a template this teacher cannot read, naming every item id.

        Raises:
            UserError: the template is not ``compact``.
            DataError: ``<item id>: field: problem`` for each item it cannot read.
        """
        from grm.errors import UserError
        from grm.schemas import DataError

        if template != "compact":
            raise UserError(
                f"{template!r}: the world teacher reads the compact template only",
                field="template",
                fix="pass --template compact (config: sampling.template=compact)",
            )
        errors = [f"{it.id}: {problem}" for it in items if (problem := item_problem(it)) is not None]
        if errors:
            raise DataError("world-teacher input", errors)

    # ---- Sampler protocol -------------------------------------------------------------------------------------
    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        """Judge every prompt ``n`` times (identical texts when ``temperature == 0``).

        Args:
            prompts: rendered compact prompts.
            n: samples per prompt.
            temperature: 0 = greedy (one deterministic judgement repeated), > 0 = sampled noise.
            max_new_tokens: ignored (the critique is short by construction).
            seed: the call's seed; combined with the teacher seed, the prompt and the sample index.

        Returns:
            ``n`` generated texts per prompt.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out = []
        for prompt in prompts:
            texts = []
            for j in range(n):
                key = j if temperature > 0 else "greedy"
                rng = random.Random(_h("teacher", self.seed, seed, prompt, key))
                texts.append(self.judge(prompt, rng))
            out.append(texts)
        return out

    # ---- one judgement ----------------------------------------------------------------------------------------
    def judge(self, prompt: str, rng: random.Random) -> str:
        """One critique for ``prompt`` drawn with ``rng``."""
        p = parse_compact_prompt(prompt)
        family = family_of(p.query)
        cfg = self.config
        if p.principles_only:
            (n1, w1), (n2, _) = self._own_principles(family, p.query, rng)
            w1 = min(9, max(5, w1 + rng.choice((-1, 0, 0, 1))))
            return f"\n{PRINCIPLES_MARK} {n1} {w1} , {n2} {10 - w1}"
        given = read_principles(family, p.query, p.principles) if p.principles is not None else None
        truth = self._truth(family, p.query)
        values = [self._value(family, r) for r in p.responses]
        belief = truth
        follow_hint = p.hint is not None and rng.random() < cfg.hint_strength
        biased = not follow_hint
        if follow_hint:
            assert p.hint is not None
            belief = values[p.hint - 1]
        else:
            if _h("hard", self.seed, p.query) % 10_000 < cfg.hard_share * 10_000:
                belief = self._hard_belief(family, p.query, truth, values)
            if rng.random() < cfg.position_bias:
                belief = values[0]
        # verbosity bias (visible in the input, so a student that imitates unfiltered samples learns it): when one
        # response is the unique longest, the teacher believes its answer and overlooks its style flaw
        favoured = None
        if biased and len(p.responses) > 1 and rng.random() < cfg.length_bias:
            lengths = [len(r.split(" ")) for r in p.responses]
            if lengths.count(max(lengths)) == 1:
                favoured = lengths.index(max(lengths))
                belief = values[favoured]
        # a random slip: it believes another answer shown (its critique stays consistent with that belief, so a
        # slip that happens to pick the right response carries no visible contradiction into the RFT data)
        if rng.random() < cfg.random_error:
            others = sorted(set(values) - {belief})
            if others:
                belief = others[rng.randrange(len(others))]
        # the principles: a facts cue decides the style criterion; a rare cue word it misreads as the opposite
        # style, hinted or not (a hint names the best response, not the criterion, so on an item that states the
        # reference in both styles a misread cue still scores the wrong one highest)
        (n1, w1), (n2, _) = given if given is not None else self._own_principles(family, p.query, rng)
        verdicts = [self._verdict(family, p.query, r, v, belief, n2) for r, v in zip(p.responses, values, strict=True)]
        if favoured is not None:
            verdicts[favoured].second = 1.0
        if given is None:
            w1 = min(9, max(5, w1 + rng.choice((-1, 0, 0, 1))))
        w2 = 10 - w1
        lines = [] if p.principles is not None else [f"{PRINCIPLES_MARK} {n1} {w1} , {n2} {w2}"]
        # each response is checked against the believed answer written beside its value ("R2 Morn = Kelt wrong")
        steps = []
        scores = []
        for i, v in enumerate(verdicts, start=1):
            steps.append(f"R{i} {v.value} = {belief} {self._words(family, v, n2)}")
            s = round(1 + 9 * (w1 * v.main + w2 * v.second) / 10)
            scores.append(s)
        if p.single_label:
            v = verdicts[0]
            ok = v.main == 1.0 and (family == "facts" or v.second == 1.0)
            scores = [1 if ok else 0]
        # the solved answer first (what the judge believes is true), then each response checked against it
        lines.append(f"Analysis: answer {belief} ; " + " ".join(steps))
        lines.append("Scores: \\boxed{" + ", ".join(map(str, scores)) + "}")
        return "\n" + "\n".join(lines)

    # ---- helpers ----------------------------------------------------------------------------------------------
    def _own_principles(self, family: str, query: str, rng: random.Random) -> tuple[tuple[str, int], tuple[str, int]]:
        """The principles it writes from the query; a rare facts cue it misreads as the opposite style."""
        (n1, w1), (n2, w2) = principles(family, query)
        if family == "facts":
            cue = facts_cue(query)
            if cue is not None and cue not in COMMON_CUES and rng.random() < self.config.cue_misread:
                n2 = STYLE_PRINCIPLES[1 - STYLE_PRINCIPLES.index(n2)]
        return (n1, w1), (n2, w2)

    def _truth(self, family: str, query: str) -> str:
        if family == "repeat":
            m = REPEAT_RE.match(query)
            assert m is not None
            return m.group(2)
        return self.world.solve(query)

    @staticmethod
    def _value(family: str, response: str) -> str:
        if family == "repeat":
            return str(len(response.split(" , ")))
        return response_value(family, response) or "none"

    def _hard_belief(self, family: str, query: str, truth: str, values: list[str]) -> str:
        wrong = sorted({v for v in values if v != truth})
        if wrong:
            return wrong[_h("hard-pick", self.seed, query) % len(wrong)]
        if family == "facts":
            pool = self.world.cities + self.world.languages
            return pool[_h("hard-fact", self.seed, query) % len(pool)]
        if family == "arith":
            assert ARITH_RE.match(query)
            return str(int(truth) + 1)
        return str(int(truth) + 1)

    @staticmethod
    def _verdict(family: str, query: str, response: str, value: str, belief: str, style: str) -> _Verdict:
        if family == "facts":  # a style miss scores 0 so it never ties the fitting style at any weighting
            return _Verdict(value, 1.0 if value == belief else 0.0, 1.0 if style_fits(style, response) else 0.0)
        if family == "arith":
            return _Verdict(value, 1.0 if value == belief else 0.0, 0.0 if is_hedged(response) else 1.0)
        m = REPEAT_RE.match(query)
        assert m is not None
        word = m.group(1)
        try:
            diff = abs(int(value) - int(belief))
        except ValueError:
            diff = 2
        same = all(t == word for t in response.split(" , "))
        return _Verdict(value, max(0.0, 1.0 - diff / 2), 1.0 if same else 0.0)

    @staticmethod
    def _words(family: str, v: _Verdict, style: str) -> str:
        main = "right" if v.main == 1.0 else ("near" if v.main > 0 else "wrong")
        if family == "facts":  # the style it sees: the principle's when it believes the response fits it
            short = (v.second == 1.0) == (style == "brevity")
            return f"{main} {'short' if short else 'long'}"
        if family == "arith":
            return f"{main} {'plain' if v.second == 1.0 else 'hedged'}"
        return f"{main} {'same' if v.second == 1.0 else 'mixed'}"
