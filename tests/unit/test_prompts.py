"""The prompt templates are a format contract (SPEC §8)."""

import hashlib

import pytest

from grm import prompts


def test_default_template_layout_matches_spec():
    text = prompts.render_prompt("What is 2+2?", ["4", "five"])
    assert text.startswith("You are a skilled little expert at scoring responses.")
    assert "#### Conversation Context ####\nWhat is 2+2?\n#### Responses to be Scored ####\n" in text
    assert "[The Begin of Response 1]\n4\n[The End of Response 1]\n[The Begin of Response 2]\nfive\n" in text
    assert text.endswith("e.g., \\boxed{x, x} if there exists 2 responeses>.")  # the paper's typo is kept
    assert "Output with three lines\nSpecific Criteria:" in text


def test_default_template_is_byte_stable():
    # Guards the format contract: any edit to the paper's template changes this digest.
    text = prompts.render_prompt("Q", ["A", "B"])
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == _DIGEST


_DIGEST = "1499f02e2d433bf3"  # recorded from the template checked byte for byte against SPEC.md below


def test_spec_template_text_is_reproduced_byte_for_byte():
    spec = pytest.importorskip("pathlib").Path(__file__).parents[3] / "shared" / "SPEC.md"
    if not spec.exists():
        pytest.skip(f"{spec} not found (../shared is not beside the repo)")
    block = spec.read_text().split("### 8.1 Default")[1].split("```")[1].strip("\n")
    head, _, _ = block.partition("{conversation}")
    rendered = prompts.render_prompt("CONV", ["R1", "R2"])
    assert rendered.startswith(head)
    tail = block.split("... (one block per response)\n")[1]
    assert rendered.endswith(tail)


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
