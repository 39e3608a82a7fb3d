"""Benchmark items fitted into a model's context: cut to fit or refused, always counted."""

import pytest

from grm.context_fit import fit_items
from grm.method.prompts import render_prompt
from grm.schemas import Item


def words(text: str) -> int:
    return len(text.split())


ITEMS = [
    Item(id="short", query="q", responses=("a", "b"), best=0),
    Item(id="long", query="one two three four five six", responses=("r " * 30, "s " * 5), best=1),
    Item(id="chat", query=({"role": "user", "content": "hello there friend"},), responses=("x y z",), label=1),
]


def test_items_over_the_budget_are_cut_to_the_longest_fit_and_counted():
    budget = words(render_prompt("q", ["a", "b"], template="compact")) + 6
    fit = fit_items(ITEMS, words, budget, "compact")
    assert [it.id for it in fit.items] == ["short", "long", "chat"] and fit.truncated == ["long"]
    cut = fit.items[1]
    assert words(render_prompt(cut.query, cut.responses, template="compact")) <= budget
    longer = [" ".join(t.split()[: len(cut.responses[0].split()) + 1]) for t in ("r " * 30, "s " * 5)]
    assert words(render_prompt("one two three four five six", longer, template="compact")) > budget  # the most
    assert cut.best == 1 and cut.id == "long" and fit.items[0] is ITEMS[0]
    assert fit.counts() == {"n_fit": 3.0, "n_truncated": 1.0, "n_refused": 0.0, "prompt_budget": float(budget)}


def test_an_item_that_does_not_fit_even_cut_to_one_word_is_refused():
    fit = fit_items(ITEMS, words, budget=4, template="compact")
    assert fit.items == [] and fit.refused == ["short", "long", "chat"]
    assert fit.counts()["n_refused"] == 3


def test_no_budget_keeps_every_item_untouched():
    fit = fit_items(ITEMS, words, None, "deepseek-grm")
    assert fit.items == ITEMS and fit.counts()["prompt_budget"] == -1


@pytest.mark.parametrize("template", ["compact", "deepseek-grm"])
def test_a_cut_chat_query_becomes_plain_text_that_fits(template):
    base = words(render_prompt("hello", ["x"], template=template))
    fit = fit_items([ITEMS[2]], words, base + 1, template)
    assert fit.truncated == ["chat"] and isinstance(fit.items[0].query, str) and fit.items[0].label == 1
