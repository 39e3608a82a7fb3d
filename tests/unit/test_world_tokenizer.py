"""The world tokenizer: exact round trip on every text the world produces; loadable as an HF tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from grm.method.prompts import render_prompt
from grm.method.voting import shuffle_order
from grm.world import TeacherSampler, WorldConfig, general_instruction_examples, generate_world
from grm.world.tokenizer import build_tokenizer, pretokenize

CFG = WorldConfig(seed=2, n_train=400, n_val=0, n_test=0)


@pytest.fixture(scope="module")
def tok(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    path = build_tokenizer(CFG, tmp_path_factory.mktemp("tok") / "tokenizer")
    return AutoTokenizer.from_pretrained(path)


def _world_texts() -> list[str]:
    teacher = TeacherSampler(seed=0, world=CFG)
    texts = []
    for it in generate_world(CFG)["train"]:
        order = shuffle_order(it.n, 0, it.id, 0)
        shown = [it.responses[i] for i in order]
        single = it.n == 1
        prompt = render_prompt(it.query, shown, template="compact", single_label=single)
        texts += [prompt, teacher.generate([prompt], 1, 1.0, 64, 0)[0][0]]
        if not single:
            texts.append(render_prompt(it.query, shown, template="compact", hint=1))
    texts += [e["prompt"] + e["completion"] for e in general_instruction_examples(CFG)]
    return texts


def test_pretokenize_concatenates_back() -> None:
    text = "Scores: \\boxed{8, 3}\nAnalysis: R1 42 right ."
    assert "".join(pretokenize(text)) == text


def test_exact_round_trip_without_unknowns(tok) -> None:
    for text in _world_texts() + ["Scores: \\boxed{8, 3}", "R1\n\nR2  right", "[[10, 1]]"]:
        ids = tok.encode(text, add_special_tokens=False)
        assert tok.unk_token_id not in ids, text
        assert tok.decode(ids) == text


def test_special_tokens_and_bos(tok, tmp_path: Path) -> None:
    assert {tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token} == {"<s>", "</s>", "<pad>", "<unk>"}
    ids = tok("17 + 25 ?")["input_ids"]
    assert ids[0] == tok.bos_token_id
    ids = tok("Scores: \\boxed{9}" + tok.eos_token)["input_ids"]
    assert ids[-1] == tok.eos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == "Scores: \\boxed{9}"


def test_numbers_and_names_are_single_tokens(tok) -> None:
    for word in (" 42", " 80", "Query", " Kelt" if " Kelt" in tok.get_vocab() else " right"):
        assert len(tok.encode(word, add_special_tokens=False)) == 1


def test_short_sequences(tok) -> None:
    lengths = [len(tok.encode(t, add_special_tokens=False)) for t in _world_texts()]
    assert max(lengths) < 70  # CPU step time grows with the longest sequence of a batch


def test_meta_rm_input_has_no_unknown_tokens(tok) -> None:
    from grm.method.prompts import render_meta_prompt
    from grm.world import World

    world = World(CFG)
    city, other = world.cities[:2]
    query = f"capital of {world.countries[0]} ? ref {city}"
    text = render_meta_prompt(query, [city, f"it is {other}"], "\nScores: \\boxed{9, 2}")
    assert tok.unk_token_id not in tok(text)["input_ids"]
