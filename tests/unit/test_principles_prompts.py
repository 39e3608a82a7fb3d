"""Principles written into the judgement prompt and principles from the query alone (``grm.method.prompts``), and how the
world teacher reads them (issue 27, item 4)."""

from __future__ import annotations

import random

from grm.method.parsing import extract_scores
from grm.method.prompts import extract_principles, render_principles_prompt, render_prompt, with_principles
from grm.world.teacher import TeacherSampler, parse_compact_prompt, read_principles

QUERY = "capital of Zorvia ? ref Lima , terse"


def test_given_principles_end_the_prompt_and_the_teacher_continues_with_the_analysis():
    prompt = with_principles(
        render_prompt(QUERY, ["Lima", "it is Lima"], template="compact"), "accuracy 6 , brevity 4"
    )
    assert prompt.endswith("Judge:\nSpecific Criteria: accuracy 6 , brevity 4")
    parsed = parse_compact_prompt(prompt)
    assert parsed.responses == ("Lima", "it is Lima") and parsed.principles == "accuracy 6 , brevity 4"
    text = TeacherSampler().judge(prompt, random.Random(0))
    assert text.startswith("\nAnalysis:") and "Specific Criteria" not in text
    assert extract_scores(text, 2).ok


def test_principles_prompt_has_the_query_and_no_responses():
    compact = render_principles_prompt(QUERY, template="compact")
    assert compact == f"Query: {QUERY}\nPrinciples:" and parse_compact_prompt(compact).principles_only
    paper = render_principles_prompt([{"role": "user", "content": "Why is the sky blue?"}])
    assert "User: Why is the sky blue?" in paper and "Response 1" not in paper
    assert paper.endswith("the weights of each criteria>.")
    text = TeacherSampler().judge(compact, random.Random(0))
    assert text.startswith("\nSpecific Criteria: accuracy") and extract_principles(text) == text.split(": ", 1)[1]


def test_extract_principles():
    assert extract_principles("Specific Criteria: a 6 , b 4\nAnalysis: x\nScores: \\boxed{1}") == "a 6 , b 4"
    assert extract_principles("  clarity first\n\nmore") == "clarity first"
    assert extract_principles("Specific Criteria:   \nAnalysis: x") is None


def test_teacher_reads_known_criteria_and_weights_only():
    assert read_principles("facts", QUERY, "accuracy 6 , brevity 4") == (("accuracy", 6), ("brevity", 4))
    assert read_principles("facts", QUERY, "Detail matters; accuracy: 9") == (("accuracy", 9), ("detail", 1))
    assert read_principles("facts", QUERY, "brevity 3") == (("accuracy", 7), ("brevity", 3))
    assert read_principles("arith", "17 + 25 ?", "correctness") == (("correctness", 7), ("format", 3))
    assert read_principles("facts", QUERY, "be kind and helpful") is None
