"""The embedded synthetic world: seeded, verifiable preference items for three task families.

Families (their principles differ, so a judge must pick the right criteria per query):

* ``facts``  -- "capital of Zorvia ? ref Lima , terse" / "language of Zorvia ? ref Kelt , full". The query carries a
  reference note (any value of the relation's pool, so no table can be memorised) and, with ``facts_cues``, a
  **style cue** that decides the secondary principle: a brevity cue ("brief", or the rarer "terse", "concise",
  "curt") makes the bare value best, a detail cue ("full", or the rarer "verbose", "wordy", "elaborate") makes
  "it is Lima" best. Principle *accuracy* (dominant: the stated value matches the reference) plus the cue's
  *brevity* or *detail*. On a share of items (``cue_pair_share``) the reference is stated twice, in both styles, so
  only a judge that reads the cue right picks the best one; on the others the cue changes the scores but not the
  pick. The cue words are shared by every query (a judging skill that transfers from train to test queries), and the
  rare forms are where the teacher misreads them (``TeacherConfig.cue_misread``). ``facts_reference=False`` drops
  the note: the answer is then world knowledge (the fact table, known from the general-instruction mix), a harder
  variant.
* ``arith``  -- "17 + 25 ?". Principle *correctness* plus *format*: a plain answer beats a hedged one
  ("maybe 42"). The best response is correct **and** plain. Test sums are never judged in training: the student
  knows them only from the general-instruction mix, so its judgements there stay uncertain (room, and errors that
  vary between samples).
* ``repeat`` -- "repeat Kelt 3 times". Principle *count* plus *fidelity* (the same word, copied exactly). The best
  response has the right word the right number of times. Off by default (``family_mix``): long responses.

Items have n in {1, 2, 3, 4} responses (defaults: n <= 3, short response forms, because CPU step time grows with
the longest sequence of a batch): n >= 2 items carry ground-truth ``ratings`` with a unique maximum (``best``),
n == 1 items a 0/1 ``label`` (1 iff the response is the ideal one). The TEST split holds n >= 2 items only unless
``test_single`` (evaluation accuracy is pairwise/listwise). Queries are partitioned between train/val/test, so no
query text is shared across splits. ``general_instruction_examples`` gives the world's "general instruction" data
(query -> the correct answer): the knowledge a base model would bring.

Names (countries, cities, languages) and numbers are fixed lists that depend only on the counts in
``WorldConfig``; the seed decides the fact table, the splits and the items.
"""

from __future__ import annotations

import hashlib
import random
import re
from functools import cached_property

from grm.config import FAMILIES, WorldConfig, seed_or_zero
from grm.schemas import Item

SPLITS = ("train", "val", "test")
RELATIONS = ("capital", "language")

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "tr", "st")
_NUCLEI = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "l", "s", "th", "x", "m")

# principle name -> canonical weight; the teacher samples alternative weightings per judgement
PRINCIPLES: dict[str, tuple[tuple[str, int], tuple[str, int]]] = {
    "facts": (("accuracy", 8), ("brevity", 2)),
    "arith": (("correctness", 7), ("format", 3)),
    "repeat": (("count", 7), ("fidelity", 3)),
}

# the facts style cue: word -> (the secondary principle it asks for, its frequency among facts items). "brief" and
# "full" are the common forms; the other six are rare synonyms (the teacher misreads them, TeacherConfig.cue_misread)
CUES: dict[str, tuple[str, float]] = {
    "brief": ("brevity", 0.25),
    "full": ("detail", 0.25),
    "terse": ("brevity", 0.09),
    "concise": ("brevity", 0.08),
    "curt": ("brevity", 0.08),
    "verbose": ("detail", 0.09),
    "wordy": ("detail", 0.08),
    "elaborate": ("detail", 0.08),
}
COMMON_CUES = ("brief", "full")
STYLE_PRINCIPLES = ("brevity", "detail")

# "capital of Zorvia ?" (world knowledge) or, with ``WorldConfig.facts_reference``, "capital of Zorvia ? ref Lima";
# with ``WorldConfig.facts_cues`` a style cue follows: "capital of Zorvia ? ref Lima , terse"
FACTS_RE = re.compile(r"^(capital|language) of ([A-Z][a-z]+) \?(?: ref ([A-Z][a-z]+))?(?: , ([a-z]+))?$")
ARITH_RE = re.compile(r"^(\d+) \+ (\d+) \?$")
REPEAT_RE = re.compile(r"^repeat ([A-Z][a-z]+) (\d+) times$")

# response surface forms
# short on purpose: sequence length is what a CPU step costs (brevity: a bare value is "short")
FACTS_FORMS = ("{v}", "it is {v}")
ARITH_PLAIN = ("{v}",)
ARITH_HEDGED = ("maybe {v}",)


def _h(*parts: object) -> int:
    """A stable 64-bit hash (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "little")


def make_names(count: int, salt: str) -> list[str]:
    """``count`` distinct capitalised pseudo-words, deterministic in (count, salt).

    Args:
        count: how many names.
        salt: separates name lists (countries vs cities vs languages) so they never overlap.

    Returns:
        The names, e.g. ``["Zorvia", ...]``.
    """
    names: list[str] = []
    seen: set[str] = set()
    i = 0
    while len(names) < count:
        h = _h("name", salt, i)
        i += 1
        syl = 2 + (h % 2)
        parts = []
        for k in range(syl):
            hk = _h(h, k)
            parts.append(
                _ONSETS[hk % len(_ONSETS)]
                + _NUCLEI[(hk >> 8) % len(_NUCLEI)]
                + (_CODAS[(hk >> 16) % len(_CODAS)] if k == syl - 1 else "")
            )
        name = "".join(parts).capitalize()
        if name not in seen and len(name) <= 9:
            seen.add(name)
            names.append(name)
    return names


class World:
    """The fact table and query pools of one ``WorldConfig`` (the ground-truth oracle lives here)."""

    def __init__(self, config: WorldConfig):
        self.config = config
        self.seed = seed_or_zero(config.seed)
        rng = random.Random(_h("facts", self.seed))
        self.countries = make_names(config.n_entities, "country")
        pool = set(self.countries)
        cities = [c for c in make_names(config.n_entities * 2, "city") if c not in pool][: config.n_entities]
        pool |= set(cities)
        languages = [c for c in make_names(config.n_languages * 3, "lang") if c not in pool][: config.n_languages]
        self.cities = cities
        self.languages = languages
        shuffled = cities[:]
        rng.shuffle(shuffled)
        self.capital = dict(zip(self.countries, shuffled, strict=True))
        self.language = {c: rng.choice(languages) for c in self.countries}

    # ---- vocabulary -------------------------------------------------------------------------------------------
    @cached_property
    def words(self) -> list[str]:
        """Every name and number the world can print (for the tokenizer)."""
        top = max(2 * self.config.num_max, 10)
        return self.countries + self.cities + self.languages + [str(i) for i in range(top + 1)]

    def _fact(self, relation: str, country: str) -> str:
        return self.capital[country] if relation == "capital" else self.language[country]

    # ---- oracle -----------------------------------------------------------------------------------------------
    def solve(self, query: str) -> str:
        """The ground-truth answer text of a world query (the general-instruction completion without newline)."""
        m = FACTS_RE.match(query)
        if m:
            return m.group(3) or self._fact(m.group(1), m.group(2))
        m = ARITH_RE.match(query)
        if m:
            return str(int(m.group(1)) + int(m.group(2)))
        m = REPEAT_RE.match(query)
        if m:
            return " , ".join([m.group(1)] * int(m.group(2)))
        raise ValueError(f"not a world query: {query!r}")

    # ---- queries ----------------------------------------------------------------------------------------------
    def all_queries(self, family: str) -> list[str]:
        """Every query of a family, in a fixed order."""
        c = self.config
        if family == "facts":
            if c.facts_reference:  # every (country, relation, reference): the note, not a table, is the truth
                return [
                    f"{rel} of {x} ? ref {v}"
                    for x in self.countries
                    for rel in RELATIONS
                    for v in (self.cities if rel == "capital" else self.languages)
                ]
            return [f"{rel} of {x} ?" for x in self.countries for rel in RELATIONS]
        if family == "arith":
            rng = range(c.num_min, c.num_max + 1)
            return [f"{a} + {b} ?" for a in rng for b in rng]
        if family == "repeat":
            return [f"repeat {w} {k} times" for w in self.cities for k in range(2, c.repeat_max + 1)]
        raise ValueError(f"unknown family {family!r}; families are {FAMILIES}")

    def split_queries(self) -> dict[str, dict[str, list[str]]]:
        """family -> split -> its queries: a seeded partition in proportion to the split sizes (disjoint)."""
        c = self.config
        sizes = [c.n_train, c.n_val, c.n_test]
        total = sum(sizes)
        out: dict[str, dict[str, list[str]]] = {}
        for family in FAMILIES:
            queries = self.all_queries(family)
            random.Random(_h("split", self.seed, family)).shuffle(queries)
            cuts, acc = [], 0
            for s in sizes:
                acc += s
                cuts.append(round(len(queries) * acc / total))
            parts, start = {}, 0
            for split, end in zip(SPLITS, cuts, strict=True):
                parts[split] = queries[start:end]
                start = end
            out[family] = parts
        return out


# ---- responses ----------------------------------------------------------------------------------------------


def facts_cue(query: str) -> str | None:
    """The style cue word of a facts query (``"terse"``), or None when it has none."""
    m = FACTS_RE.match(query)
    if m is None:
        raise ValueError(f"not a facts query: {query!r}")
    cue = m.group(4)
    if cue is not None and cue not in CUES:
        raise ValueError(f"facts query {query!r}: unknown style cue {cue!r}; cues are {sorted(CUES)}")
    return cue


def facts_style(query: str) -> str:
    """The secondary principle a facts query asks for: ``"brevity"`` or ``"detail"`` (no cue: brevity)."""
    cue = facts_cue(query)
    return "brevity" if cue is None else CUES[cue][0]


def style_fits(style: str, response: str) -> bool:
    """Whether a facts response has the style a principle asks for (brevity: the bare value; detail: a sentence)."""
    return is_short(response) == (style == "brevity")


def principles(family: str, query: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """The canonical (name, weight) principles of a query: the family's, with a facts cue's style as the second."""
    (n1, w1), (n2, w2) = PRINCIPLES[family]
    if family == "facts":
        n2 = facts_style(query)
    return (n1, w1), (n2, w2)


def _quality(family: str, query: str, response: str, world: World) -> tuple[float, float]:
    """(main, secondary) principle qualities in [0, 1] of one response; the ideal response scores (1, 1)."""
    truth = world.solve(query)
    if family == "facts":
        value = response_value(family, response)
        return (1.0 if value == truth else 0.0, 1.0 if style_fits(facts_style(query), response) else 0.5)
    if family == "arith":
        value = response_value(family, response)
        return (1.0 if value == truth else 0.0, 0.0 if is_hedged(response) else 1.0)
    m = REPEAT_RE.match(query)
    assert m is not None
    word, k = m.group(1), int(m.group(2))
    toks = [t for t in response.split(" , ")]
    count_q = max(0.0, 1.0 - abs(len(toks) - k) / 2)
    return (count_q, 1.0 if all(t == word for t in toks) else 0.0)


def response_value(family: str, response: str) -> str:
    """The answer a facts/arith response states (its last name or number); ``""`` when none."""
    tokens = [t for t in response.split(" ") if t[:1].isalnum() and (t[0].isupper() or t[0].isdigit())]
    return tokens[-1] if tokens else ""


def is_hedged(response: str) -> bool:
    """Whether an arith response hedges ("maybe 42")."""
    return response.startswith("maybe ")


def is_short(response: str) -> bool:
    """Whether a facts response is the bare value (the *brevity* principle)."""
    return " " not in response


def family_of(query: str) -> str:
    """The family of a world query; raises ``ValueError`` for other text."""
    if FACTS_RE.match(query):
        return "facts"
    if ARITH_RE.match(query):
        return "arith"
    if REPEAT_RE.match(query):
        return "repeat"
    raise ValueError(f"not a world query: {query!r}")


def rating(family: str, quality: tuple[float, float]) -> float:
    """Ground-truth 1..10 rating from principle qualities with the family's canonical weights."""
    (_, w1), (_, w2) = PRINCIPLES[family]
    return round(1 + 9 * (w1 * quality[0] + w2 * quality[1]) / (w1 + w2), 2)


def _candidates(family: str, query: str, world: World, rng: random.Random) -> tuple[str, list[str], str | None]:
    """(the ideal response, distinct non-ideal responses, a response every n >= 2 item must show or None)."""
    c = world.config
    truth = world.solve(query)
    if family == "facts":
        m = FACTS_RE.match(query)
        assert m is not None
        rel = m.group(1)
        pool = world.cities if rel == "capital" else world.languages
        if m.group(4) is None:
            best = rng.choice(FACTS_FORMS).format(v=truth, rel=rel)
            pinned = None
        else:  # the cue decides the ideal style; on a share of items the other style states the truth too
            brevity = facts_style(query) == "brevity"
            best = FACTS_FORMS[0 if brevity else 1].format(v=truth)
            pair = FACTS_FORMS[1 if brevity else 0].format(v=truth)
            pinned = pair if rng.random() < c.cue_pair_share else None
        wrong = rng.sample([v for v in pool if v != truth], 3)
        others = [rng.choice(FACTS_FORMS).format(v=v, rel=rel) for v in wrong]
        return best, others, pinned
    if family == "arith":
        value = int(truth)
        best = rng.choice(ARITH_PLAIN).format(v=value)
        offsets = rng.sample([-10, -2, -1, 1, 2, 10], 3)
        wrong = [str(max(0, value + o)) for o in offsets]
        others = [rng.choice(ARITH_HEDGED).format(v=value)]
        for w in wrong:
            if w == truth:
                continue
            form = ARITH_HEDGED if rng.random() < 0.3 else ARITH_PLAIN
            others.append(rng.choice(form).format(v=w))
        return best, others, None
    m = REPEAT_RE.match(query)
    assert m is not None
    word, k = m.group(1), int(m.group(2))
    best = " , ".join([word] * k)
    others: list[str] = []
    counts = [x for x in range(1, c.repeat_max + 2) if x != k]
    for x in rng.sample(counts, min(2, len(counts))):
        others.append(" , ".join([word] * x))
    other_word = rng.choice([w for w in world.cities if w != word])
    toks = [word] * k
    toks[rng.randrange(k)] = other_word
    others.append(" , ".join(toks))
    return best, others, None


def _make_item(world: World, family: str, split: str, index: int, query: str, n: int, rng: random.Random) -> Item:
    best_resp, others, pinned = _candidates(family, query, world, rng)
    uniq = list(dict.fromkeys(o for o in others if o not in (best_resp, pinned)))
    rng.shuffle(uniq)
    if pinned is not None and n >= 2:  # a single-response item shows one of the plainly wrong answers instead
        uniq.insert(0, pinned)
    if n == 1:
        resp = best_resp if rng.random() < 0.5 else uniq[0]
        label = 1 if resp == best_resp else 0
        return Item(
            id=f"world/{family}/{split}/{index}",
            query=query,
            responses=(resp,),
            label=label,
            source="world",
            subset=family,
        )
    chosen = [best_resp] + uniq[: n - 1]
    rng.shuffle(chosen)
    ratings = tuple(rating(family, _quality(family, query, r, world)) for r in chosen)
    best = chosen.index(best_resp)
    if sorted(ratings)[-1] == sorted(ratings)[-2] or ratings[best] != max(ratings):
        raise AssertionError(f"world bug: non-unique best for {query!r}: {chosen} {ratings}")
    return Item(
        id=f"world/{family}/{split}/{index}",
        query=query,
        responses=tuple(chosen),
        best=best,
        ratings=ratings,
        source="world",
        subset=family,
    )


def generate_world(config: WorldConfig) -> dict[str, list[Item]]:
    """Generate the train/val/test items of one world.

    Args:
        config: the world's definition; the same config always yields the same items.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}`` with ids ``world/{family}/{split}/{i}``.
    """
    world = World(config)
    pools = world.split_queries()
    sizes = {"train": config.n_train, "val": config.n_val, "test": config.n_test}
    out: dict[str, list[Item]] = {}
    for split in SPLITS:
        rng = random.Random(_h("items", world.seed, split))
        counters = dict.fromkeys(FAMILIES, 0)
        cursors = {f: rng.sample(pools[f][split], len(pools[f][split])) for f in FAMILIES}
        items: list[Item] = []
        weights = [w if pools[f][split] else 0.0 for f, w in zip(FAMILIES, config.family_mix, strict=True)]
        if sizes[split] and sum(weights) == 0:
            raise ValueError(f"split {split!r} has no queries; raise n_entities/num_max or the split size")
        n_weights = list(config.n_probs)
        if split == "test" and not config.test_single:
            n_weights[0] = 0.0
            if sum(n_weights) == 0:
                raise ValueError("WorldConfig.n_probs: only n = 1 has weight but test_single is off")
        for _ in range(sizes[split]):
            family = rng.choices(FAMILIES, weights=weights)[0]
            queue = cursors[family]
            if not queue:  # cycle through the split's queries again, re-shuffled
                queue.extend(rng.sample(pools[family][split], len(pools[family][split])))
            query = queue.pop()
            if family == "facts" and config.facts_cues:  # the cue form is drawn per item: shared across splits
                query = f"{query} , {rng.choices(list(CUES), weights=[w for _, w in CUES.values()])[0]}"
            n = rng.choices((1, 2, 3, 4), weights=n_weights)[0]
            items.append(_make_item(world, family, split, counters[family], query, n, rng))
            counters[family] += 1
        out[split] = items
    return out


def solve(query: str, config: WorldConfig | None = None) -> str:
    """Ground-truth answer of a world query (the oracle).

    Args:
        query: a world query such as ``"17 + 25 ?"``.
        config: the world (fact tables depend on its seed); default ``WorldConfig()``.

    Returns:
        The answer text, e.g. ``"42"``.
    """
    return World(config or WorldConfig()).solve(query)


GENERAL_PROMPT = "Query: {query}\nAnswer:"


def general_instruction_examples(
    config: WorldConfig, families: tuple[str, ...] = FAMILIES, max_per_family: int | None = None, seed: int = 0
) -> list[dict[str, str]]:
    """The world's general-instruction data: a query and its correct answer (the model solving the task).

    It covers every query of the world (the knowledge a base model brings), so facts that the judging splits
    never state can still be learnt.

    Args:
        config: the world.
        families: which families to include (a family with weight 0 in ``config.family_mix`` is always left out).
        max_per_family: cap per family (a seeded subset); ``None`` = all queries.
        seed: seed of the subset and the final order.

    Returns:
        ``[{"prompt": "Query: ...\\nAnswer:", "completion": " <answer>"}, ...]``.
    """
    world = World(config)
    rng = random.Random(_h("general", world.seed, seed))
    if max_per_family is None and config.general_cap > 0:
        max_per_family = config.general_cap
    out: list[dict[str, str]] = []
    for family in families:
        if config.family_mix[FAMILIES.index(family)] == 0:
            continue  # a family switched off in the mix brings no general examples either
        queries = world.all_queries(family)
        if max_per_family is not None and len(queries) > max_per_family:
            queries = rng.sample(queries, max_per_family)
        for q in queries:
            out.append({"prompt": GENERAL_PROMPT.format(query=q), "completion": " " + world.solve(q)})
    rng.shuffle(out)
    return out
