"""The prompt templates are a format contract (SPEC §8)."""

from pathlib import Path

import pytest

from grm.method import prompts


def test_default_template_layout_matches_spec():
    text = prompts.render_prompt("What is 2+2?", ["4", "five"])
    assert text.startswith("You are a skilled little expert at scoring responses.")
    assert "#### Conversation Context ####\nWhat is 2+2?\n#### Responses to be Scored ####\n" in text
    assert "[The Begin of Response 1]\n4\n[The End of Response 1]\n[The Begin of Response 2]\nfive\n" in text
    assert text.endswith("e.g., \\boxed{x, x} if there exists 2 responeses>.")  # the paper's typo is kept
    assert "Output with three lines\nSpecific Criteria:" in text


# The paper's templates, copied byte for byte from SPEC.md §8.1 / §8.2 (the fenced blocks, plus a final newline).
# Copies, not a read of ../shared at test time, so the pin also holds in a clone without ../shared; the drift test
# below fails if a copy and SPEC.md ever disagree.
FIXTURES = Path(__file__).parents[1] / "fixtures"
SPEC = Path(__file__).parents[3] / "shared" / "SPEC.md"
SPEC_BLOCKS = {"spec_8_1_default.txt": "### 8.1 Default", "spec_8_2_single.txt": "### 8.2 Single-response"}


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8").removesuffix("\n")


def _default_expected(conversation: str, r1: str, r2: str) -> str:
    """§8.1 with its slots filled for two responses (the '... (one block per response)' line is the spec's
    note that the blocks repeat, not text)."""
    text = _fixture("spec_8_1_default.txt")
    assert text.count("{response 1}") == 1 and text.count("... (one block per response)\n") == 1
    return (
        text.replace("{conversation}", conversation)
        .replace("{response 1}", r1)
        .replace("{response 2}", r2)
        .replace("... (one block per response)\n", "")
    )


def test_default_template_equals_the_spec_text_byte_for_byte():
    assert prompts.render_prompt("CONV\nline 2", ["R1", "R2"]) == _default_expected("CONV\nline 2", "R1", "R2")


def test_hinted_template_is_the_spec_text_plus_the_hint_line():
    rendered = prompts.render_prompt("CONV", ["R1", "R2"], hint=2)
    assert rendered == _default_expected("CONV", "R1", "R2") + "\nThe best response is: Response 2"


def test_single_response_template_equals_the_spec_text_byte_for_byte():
    expected = _fixture("spec_8_2_single.txt")
    assert expected.count("{conversation context & query}") == 1 and expected.count("{the response}") == 1
    expected = expected.replace("{conversation context & query}", "CONV").replace("{the response}", "RESP")
    assert prompts.render_prompt("CONV", ["RESP"], single_label=True) == expected


@pytest.mark.parametrize("name", sorted(SPEC_BLOCKS))
def test_fixture_copies_equal_the_spec_blocks(name):
    if not SPEC.exists():
        pytest.skip(f"{SPEC} not found (../shared is not beside the repo); the fixture copies still pin the text")
    block = SPEC.read_text(encoding="utf-8").split(SPEC_BLOCKS[name], 1)[1].split("```\n", 1)[1].split("\n```")[0]
    assert _fixture(name) == block


def test_hint_line_is_appended_and_validated():
    text = prompts.render_prompt("q", ["a", "b"], hint=2)
    assert text.endswith("\nThe best response is: Response 2")
    with pytest.raises(ValueError, match="hint"):
        prompts.render_prompt("q", ["a", "b"], hint=3)


def test_single_response_template():
    text = prompts.render_prompt("q", ["a"], single_label=True)
    assert "The score is 0 or 1, with 1 indicating that the response is correct." in text
    assert "[The Begin of Response]\na\n[The End of Response]" in text
    assert "2. Clarity:" in text and "3. Accuracy:" in text and "Usefulness" not in text
    assert text.endswith("e.g., \\boxed{x}>.")
    with pytest.raises(ValueError, match="exactly 1"):
        prompts.render_prompt("q", ["a", "b"], single_label=True)


def test_chat_query_renders_turns_and_meta_template():
    query = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "q"},
    ]
    assert prompts.render_conversation(query) == "User: hi\nAssistant: yo\nUser: q"
    meta = prompts.render_meta_prompt("q", ["a", "b"], "Scores: \\boxed{1, 2}")
    assert meta.startswith("Prompt: Please score the responses.\n#### Conversation Context ####\nq\n")
    assert meta.endswith("[The End of Response 2]\n\nResponse: Scores: \\boxed{1, 2}")


def test_unknown_template_lists_available():
    with pytest.raises(ValueError, match="Available: deepseek-grm, compact"):
        prompts.render_prompt("q", ["a"], template="nope")
