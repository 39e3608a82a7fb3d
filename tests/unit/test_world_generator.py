"""The embedded world's item generator, oracle and general-instruction data."""

from __future__ import annotations

import dataclasses

import pytest

from grm.schemas import validate_record
from grm.world import FAMILIES, World, WorldConfig, general_instruction_examples, generate_world, solve
from grm.world.generator import COMMON_CUES, CUES, facts_cue, is_short, response_value

# every family and n = 1..4 switched on (the defaults switch repeat and n = 4 off for sequence length)
SMALL = WorldConfig(
    seed=3, n_train=600, n_val=100, n_test=300, family_mix=(0.4, 0.35, 0.25), n_probs=(0.1, 0.4, 0.25, 0.25)
)


@pytest.fixture(scope="module")
def world() -> dict:
    return generate_world(SMALL)


def test_sizes_ids_and_valid_records(world: dict) -> None:
    assert {k: len(v) for k, v in world.items()} == {"train": 600, "val": 100, "test": 300}
    for split, items in world.items():
        ids = [it.id for it in items]
        assert len(set(ids)) == len(ids)
        for it in items:
            assert it.id.startswith(f"world/{it.subset}/{split}/")
            assert it.source == "world" and it.subset in FAMILIES
            assert validate_record(it.to_dict()) == []
            assert 1 <= it.n <= 4


def test_every_family_and_n_occur(world: dict) -> None:
    items = world["train"]
    assert {it.subset for it in items} == set(FAMILIES)
    assert {it.n for it in items} == {1, 2, 3, 4}
    assert {it.n for it in world["test"]} == {2, 3, 4}  # test_single=False: no n = 1 items in the test split


def test_test_single_keeps_single_items_in_test() -> None:
    cfg = dataclasses.replace(SMALL, test_single=True)
    assert 1 in {it.n for it in generate_world(cfg)["test"]}


def test_defaults_are_short() -> None:
    items = generate_world(WorldConfig(n_train=300, n_val=0, n_test=100))
    assert {it.subset for it in items["train"]} == {"facts", "arith"}
    assert max(it.n for split in items.values() for it in split) == 3
    assert max(len(r.split(" ")) for it in items["train"] for r in it.responses) <= 3


def test_unique_best_and_labels(world: dict) -> None:
    w = World(SMALL)
    for it in world["train"] + world["test"]:
        if it.n == 1:
            assert it.label in (0, 1) and it.ratings is None
        else:
            assert it.ratings is not None and len(it.ratings) == it.n
            top = max(it.ratings)
            assert it.ratings.count(top) == 1 and it.ratings[it.best] == top
            if it.subset in ("facts", "arith"):  # the best response states the oracle's answer
                assert w.solve(it.query) in it.responses[it.best].split(" ")


def test_splits_share_no_query(world: dict) -> None:
    queries = {split: {it.query for it in items} for split, items in world.items()}
    assert not queries["train"] & queries["test"]
    assert not queries["train"] & queries["val"]
    assert not queries["val"] & queries["test"]


def test_deterministic_and_seed_dependent() -> None:
    a = generate_world(SMALL)
    b = generate_world(SMALL)
    c = generate_world(dataclasses.replace(SMALL, seed=4))
    assert [it.to_dict() for it in a["test"]] == [it.to_dict() for it in b["test"]]
    assert [it.to_dict() for it in a["test"]] != [it.to_dict() for it in c["test"]]


def test_oracle() -> None:
    assert solve("17 + 25 ?") == "42"
    assert solve("repeat Kelt 3 times") == "Kelt , Kelt , Kelt"
    w = World(WorldConfig())
    country = w.countries[0]
    assert solve(f"capital of {country} ?") == w.capital[country]
    assert w.capital[country] in w.cities
    with pytest.raises(ValueError, match="not a world query"):
        solve("hello")


def test_general_instruction_examples_cover_the_world() -> None:
    cfg = dataclasses.replace(SMALL, general_cap=0)
    ex = general_instruction_examples(cfg)
    w = World(cfg)
    assert len(ex) == sum(len(w.all_queries(f)) for f in FAMILIES)
    assert len(general_instruction_examples(SMALL)) <= SMALL.general_cap * len(FAMILIES)
    for e in ex[:200]:
        query = e["prompt"].removeprefix("Query: ").removesuffix("\nAnswer:")
        assert e["completion"] == " " + w.solve(query)
    capped = general_instruction_examples(SMALL, families=("arith",), max_per_family=10)
    assert len(capped) == 10


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_train": -1}, "n_train"),
        ({"n_entities": 2}, "n_entities"),
        ({"num_min": 50, "num_max": 40}, "num_min"),
        ({"family_mix": (1.0, 0.0)}, "family_mix"),
        ({"n_probs": (0.0, 0.0, 0.0, 0.0)}, "n_probs"),
        ({"repeat_max": 20}, "repeat_max"),
    ],
)
def test_config_validation_names_the_field(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        WorldConfig(**kwargs)


def test_every_config_field_has_help() -> None:
    for f in dataclasses.fields(WorldConfig):
        assert f.metadata.get("help"), f.name


def test_facts_reference_and_knowledge_variants() -> None:
    cfg = dataclasses.replace(SMALL, facts_reference=True)
    w = World(cfg)
    country = w.countries[0]
    assert solve(f"capital of {country} ? ref {w.cities[3]}", cfg) == w.cities[3]
    queries = w.all_queries("facts")
    assert len(queries) == len(w.countries) * (len(w.cities) + len(w.languages))
    assert all(" ? ref " in q for q in queries)
    # the knowledge variant: one query per (country, relation), answered from the fact table
    knowledge = World(dataclasses.replace(SMALL, facts_reference=False))
    assert knowledge.all_queries("facts") == [f"{r} of {c} ?" for c in w.countries for r in ("capital", "language")]
    assert knowledge.solve(f"capital of {country} ?") == knowledge.capital[country]


def test_families_that_are_off_bring_no_general_examples() -> None:
    ex = general_instruction_examples(dataclasses.replace(SMALL, family_mix=(0.5, 0.5, 0.0)))
    assert ex and not any("repeat" in e["prompt"] for e in ex)


def test_style_cues_decide_the_best_facts_response() -> None:
    cfg = dataclasses.replace(SMALL, n_train=2000, family_mix=(1.0, 0.0, 0.0))
    items = generate_world(cfg)
    facts = [it for split in items.values() for it in split if it.n >= 2]
    pairs = 0
    for it in facts:
        cue = facts_cue(it.query)
        assert cue in CUES
        best = it.responses[it.best]
        assert is_short(best) == (CUES[cue][0] == "brevity"), (it.query, best)
        truth = response_value("facts", best)
        same = [r for r in it.responses if response_value("facts", r) == truth]
        assert len(same) <= 2
        if len(same) == 2:  # the pair: the truth in the other style, rated below the best and above every wrong one
            pairs += 1
            other = it.ratings[it.responses.index(next(r for r in same if r != best))]
            wrong = [r for i, r in enumerate(it.ratings) if it.responses[i] not in same]
            assert max(wrong, default=0.0) < other < it.ratings[it.best]
    assert abs(pairs / len(facts) - cfg.cue_pair_share) < 0.05
    # every cue form occurs in train and in test (the skill transfers); the queries themselves do not
    for split in ("train", "test"):
        assert {facts_cue(it.query) for it in items[split]} == set(CUES)
    frequency = sum(facts_cue(it.query) in COMMON_CUES for it in items["train"]) / len(items["train"])
    assert abs(frequency - sum(CUES[c][1] for c in COMMON_CUES)) < 0.05


def test_cues_can_be_switched_off() -> None:
    items = generate_world(dataclasses.replace(SMALL, facts_cues=False))["train"]
    facts = [it for it in items if it.subset == "facts"]
    assert facts and all(facts_cue(it.query) is None for it in facts)
    with pytest.raises(ValueError, match="cue_pair_share"):
        WorldConfig(cue_pair_share=1.5)
