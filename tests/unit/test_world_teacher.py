"""The world's noisy teacher: parses compact prompts back, writes parseable critiques, noise as designed."""

from __future__ import annotations

import pytest

from grm.method.correctness import is_correct
from grm.method.parsing import extract_scores
from grm.method.prompts import render_prompt
from grm.method.voting import shuffle_order
from grm.sampling.base import Sampler
from grm.world import TeacherConfig, TeacherSampler, WorldConfig, generate_world, parse_compact_prompt
from grm.world.generator import COMMON_CUES, World, facts_cue, facts_style, response_value

CFG = WorldConfig(seed=1, n_train=900, n_val=0, n_test=0)


@pytest.fixture(scope="module")
def items() -> list:
    return generate_world(CFG)["train"]


def _accuracy(teacher: TeacherSampler, items: list, hint: bool, samples: int = 2) -> float:
    ok = total = 0
    for it in items:
        if it.n == 1:
            continue
        for s in range(samples):
            order = shuffle_order(it.n, 0, it.id, s)
            shown = [it.responses[i] for i in order]
            best = order.index(it.best)
            prompt = render_prompt(it.query, shown, template="compact", hint=best + 1 if hint else None)
            text = teacher.generate([prompt], 1, 1.0, 64, s)[0][0]
            ok += is_correct(extract_scores(text, it.n).scores, best=best)
            total += 1
    return ok / total


def test_parse_compact_prompt_round_trip() -> None:
    p = render_prompt("17 + 25 ?", ["42", "maybe 41"], template="compact", hint=2)
    assert p == "Query: 17 + 25 ?\nR1: 42\nR2: maybe 41\nJudge:\nThe best response is: Response 2"
    parsed = parse_compact_prompt(p)
    assert parsed.query == "17 + 25 ?"
    assert parsed.responses == ("42", "maybe 41")
    assert parsed.hint == 2 and not parsed.single_label
    single = parse_compact_prompt(render_prompt("17 + 25 ?", ["42"], template="compact", single_label=True))
    assert single.single_label and single.responses == ("42",) and single.hint is None
    with pytest.raises(ValueError, match="compact"):
        parse_compact_prompt("You are a skilled little expert")


def test_is_a_sampler_and_output_format(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG)
    assert isinstance(teacher, Sampler)
    it = next(i for i in items if i.n == 3)
    prompt = render_prompt(it.query, list(it.responses), template="compact")
    texts = teacher.generate([prompt, prompt], 4, 1.0, 64, seed=7)
    assert len(texts) == 2 and all(len(row) == 4 for row in texts)
    assert texts[0] == texts[1]  # same (seed, prompt, index) -> same text
    lines = texts[0][0].strip("\n").split("\n")
    assert lines[0].startswith("Specific Criteria: ")
    # the solved answer, then every response checked against it
    assert lines[1].startswith("Analysis: answer ") and " ; R1 " in lines[1] and " R3 " in lines[1]
    assert lines[2].startswith("Scores: \\boxed{")
    assert extract_scores(texts[0][0], 3).ok
    greedy = teacher.generate([prompt], 3, 0.0, 64, seed=7)[0]
    assert len(set(greedy)) == 1


def test_single_label_variant(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 0, 0, 0, 0))
    for it in [i for i in items if i.n == 1][:30]:
        prompt = render_prompt(it.query, list(it.responses), template="compact", single_label=True)
        text = teacher.generate([prompt], 1, 1.0, 64, 0)[0][0]
        assert extract_scores(text, 1, 0, 1).scores == (it.label,)


def test_noise_free_teacher_is_perfect(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 0, 0, 0, 0))
    assert _accuracy(teacher, items[:300], hint=False, samples=1) == 1.0


def test_answer_line_states_the_truth_without_noise(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 0, 0, 0, 0))
    world = World(CFG)
    for it in [i for i in items if i.n >= 2 and i.subset in ("facts", "arith")][:50]:
        text = teacher.generate([render_prompt(it.query, list(it.responses), template="compact")], 1, 1.0, 64, 0)
        truth = world.solve(it.query)
        assert f"Analysis: answer {truth} ;" in text[0][0]
        # every response's value is written beside the answer, then the verdict of that comparison
        for i, response in enumerate(it.responses, start=1):
            value = response_value(it.subset, response)
            verdict = "right" if value == truth else "wrong"
            assert f"R{i} {value} = {truth} {verdict} " in text[0][0], (response, text[0][0])


def test_default_teacher_is_noisy_and_hints_help(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG)
    plain = _accuracy(teacher, items, hint=False)
    hinted = _accuracy(teacher, items, hint=True, samples=1)
    assert 0.42 < plain < 0.65  # the rare style cues it misreads cost most pair items (README)
    assert plain + 0.05 < hinted < 0.97


def test_length_bias_believes_the_unique_longest(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 1.0, 0, 0, 0))
    checked = 0
    for it in [i for i in items if i.n >= 2 and i.subset == "arith"][:60]:
        lengths = [len(r.split(" ")) for r in it.responses]
        if lengths.count(max(lengths)) != 1:
            continue
        prompt = render_prompt(it.query, list(it.responses), template="compact")
        scores = extract_scores(teacher.generate([prompt], 1, 1.0, 64, 0)[0][0], it.n).scores
        assert scores[lengths.index(max(lengths))] == max(scores)
        checked += 1
    assert checked > 10


def test_hard_queries_are_consistently_wrong(items: list) -> None:
    teacher = TeacherSampler(
        seed=0,
        world=CFG,
        config=TeacherConfig(
            hard_share=1.0, position_bias=0, length_bias=0, random_error=0, hint_strength=0, cue_misread=0
        ),
    )
    shown = [i for i in items if i.subset == "arith" or (i.subset == "facts" and not _is_pair(i))]
    # a pair item states the truth twice and no wrong value to believe: the cue alone decides there
    wrong = 1 - _accuracy(teacher, shown[:200], hint=False, samples=3)
    assert wrong > 0.85  # n = 2 arith items with only "maybe <truth>" beside the truth stay right


def test_position_bias_prefers_response_one(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 1.0, 0, 0, 0, 0))
    first = total = 0
    two_values = [
        i for i in items if i.n == 2 and i.subset == "facts" and len(set(map(response_value_facts, i.responses))) == 2
    ]
    for it in two_values[:100]:  # a pair item states one value twice: the style cue decides there
        prompt = render_prompt(it.query, list(it.responses), template="compact")
        scores = extract_scores(teacher.generate([prompt], 1, 1.0, 64, 0)[0][0], 2).scores
        first += scores[0] > scores[1]
        total += 1
    assert first == total


def response_value_facts(response: str) -> str:
    return response_value("facts", response)


def _is_pair(item) -> bool:  # noqa: ANN001
    """A facts item that states one value twice (the reference in both styles)."""
    values = [response_value("facts", r) for r in item.responses]
    return len(set(values)) < len(values)


def _cue_items(items: list, common: bool, pair: bool) -> list:
    return [
        it
        for it in items
        if it.subset == "facts"
        and it.n >= 2
        and (facts_cue(it.query) in COMMON_CUES) == common
        and _is_pair(it) == pair
    ]


def _principle(text: str) -> str:
    return text.split("\n")[1].split(" , ")[1].split(" ")[0]


def test_common_cues_are_read_right_and_rare_ones_misread(items: list) -> None:
    teacher = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 0, 0, 0, cue_misread=0.9))
    for common, low, high in ((True, 1.0, 1.0), (False, 0.03, 0.2)):
        fits = []
        for it in _cue_items(items, common, pair=False)[:80]:
            prompt = render_prompt(it.query, list(it.responses), template="compact")
            for text in teacher.generate([prompt], 4, 1.0, 64, 0)[0]:
                fits.append(_principle(text) == facts_style(it.query))
        assert low <= sum(fits) / len(fits) <= high, (common, sum(fits) / len(fits))


def test_a_misread_cue_loses_pair_items_only(items: list) -> None:
    always = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 0, 0, 0, cue_misread=1.0))
    assert _accuracy(always, _cue_items(items, False, pair=True), hint=False) == 0.0
    assert _accuracy(always, _cue_items(items, False, pair=False), hint=False) == 1.0
    assert _accuracy(always, _cue_items(items, True, pair=True), hint=False) == 1.0
    # a hint names the best response, not the criterion: a misread cue still loses the pair items
    hinted = TeacherSampler(seed=0, world=CFG, config=TeacherConfig(0, 0, 0, 0, 1.0, cue_misread=1.0))
    assert _accuracy(hinted, _cue_items(items, False, pair=True), hint=True) == 0.0
    assert _accuracy(hinted, _cue_items(items, False, pair=False), hint=True) == 1.0


def test_error_rate_knob() -> None:
    assert TeacherConfig.from_error_rate(0.0) == TeacherConfig(0, 0, 0, 0, 0.5, 0)
    with pytest.raises(ValueError, match="error_rate"):
        TeacherConfig.from_error_rate(1.5)
    with pytest.raises(ValueError, match="hard_share"):
        TeacherConfig(hard_share=2.0)
