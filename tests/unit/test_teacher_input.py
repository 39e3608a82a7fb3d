"""The world teacher refuses, before sampling and naming the item, rows it cannot read back from a prompt."""

from __future__ import annotations

import pytest

from grm.errors import UserError
from grm.method import judging
from grm.schemas import DataError, Item
from grm.world.teacher import TeacherSampler, item_problem

OK = Item(id="w/1", query="2 + 3 ?", responses=("5", "it is 6"), best=0)


def test_a_world_item_is_fine():
    assert item_problem(OK) is None


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        (Item(id="a", query="2 + 3 ?", responses=("5", "it is\n6"), best=0), "responses[1]: holds a line"),
        (Item(id="a", query="2 + 3 ?\r", responses=("5", "6"), best=0), "query: holds a line break"),
        (Item(id="a", query=({"role": "user", "content": "2 + 3 ?"},), responses=("5",), label=1),
         "query: a chat transcript"),
        (Item(id="a", query="Write a poem", responses=("5", "6"), best=0), "not a query of the embedded world"),
    ],
)  # fmt: skip
def test_rows_the_teacher_cannot_read(item, fragment):
    assert fragment in (item_problem(item) or "")


def test_judge_items_refuses_before_sampling_naming_every_item():
    teacher = TeacherSampler()
    calls = []
    teacher.generate = lambda *a, **k: calls.append(a) or []  # type: ignore[method-assign]
    bad = [OK, Item(id="w/9", query="1 + 1 ?", responses=("2\n", "3"), best=0)]
    with pytest.raises(DataError) as info:
        judging.judge_items(bad, teacher, k=2, temperature=0.5, max_new_tokens=8, seed=0, template="compact")
    assert info.value.errors == ["w/9: responses[0]: holds a line break; the world teacher reads compact prompts "
                                 "line by line (use a model)"]  # fmt: skip
    assert calls == []
    with pytest.raises(UserError, match="compact template only"):
        judging.judge_items([OK], teacher, k=1, temperature=0.0, max_new_tokens=8, seed=0, template="deepseek-grm")


def test_a_judged_world_item_still_works():
    res = judging.judge_items([OK], TeacherSampler(), k=2, temperature=0.5, max_new_tokens=8, seed=0,
                              template="compact")  # fmt: skip
    assert all(s.status == "ok" for s in res[0].samples)
