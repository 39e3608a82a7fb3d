"""The canonical JSONL item: every bad row is reported as file:line: field: problem, and nothing loads."""

import json

import pytest

from grm.schemas import DataError, Item, read_items, write_items


def _write(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = [
    {"id": "a", "query": "2+2?", "responses": ["4", "5"], "best": 0},
    {"id": "b", "query": [{"role": "user", "content": "hi"}], "responses": ["hello"], "label": 1},
    {"id": "c", "query": "q", "responses": ["x", "y", "z"], "best": 2, "ratings": [1, 2, 3], "subset": "s"},
]


def test_read_items_loads_valid_rows_and_round_trips(tmp_path):
    path = _write(tmp_path / "ok.jsonl", GOOD)
    items = read_items(path)
    assert [it.id for it in items] == ["a", "b", "c"]
    assert items[1].query == ({"role": "user", "content": "hi"},) and items[1].n == 1
    out = write_items(tmp_path / "out.jsonl", items)
    assert read_items(out) == items


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"query": "q", "responses": ["a", "b"], "best": 0}, "id"),  # missing id
        ({"id": "x", "query": "", "responses": ["a", "b"], "best": 0}, "query"),  # empty query
        ({"id": "x", "query": "q", "responses": [], "best": 0}, "responses"),  # no responses
        ({"id": "x", "query": "q", "responses": ["a", " "], "best": 0}, "responses[1]"),  # blank response
        ({"id": "x", "query": "q", "responses": ["a", "b"], "best": 2}, "best"),  # out of range
        ({"id": "x", "query": "q", "responses": ["a", "b"]}, "best"),  # missing label for n >= 2
        ({"id": "x", "query": "q", "responses": ["a"], "label": 2}, "label"),  # not 0/1
        ({"id": "x", "query": "q", "responses": ["a"], "best": 0}, "best"),  # best on a single response
        ({"id": "x", "query": "q", "responses": ["a", "b"], "best": 0, "ratings": [3, 3]}, "ratings"),  # tied
        ({"id": "x", "query": "q", "responses": ["a", "b"], "best": 0, "ratings": [1, 3]}, "ratings"),  # inconsistent
        ({"id": "x", "query": [{"role": "assistant", "content": "a"}], "responses": ["a"], "label": 1}, "query"),
        ({"id": "x", "query": "q", "responses": ["a"], "label": 1, "chosen": "a"}, "chosen"),  # unknown field
    ],
)
def test_bad_row_is_reported_with_file_line_and_field(tmp_path, row, field):
    path = _write(tmp_path / "bad.jsonl", [GOOD[0], row])
    with pytest.raises(DataError) as info:
        read_items(path)
    assert any(e.startswith(f"{path}:2: {field}:") for e in info.value.errors), info.value.errors


def test_every_bad_row_is_reported_and_nothing_loads(tmp_path):
    rows = [GOOD[0], "{not json", {"id": "a", "query": "q", "responses": ["x"], "label": 1}, GOOD[1], {"id": ""}]
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as info:
        read_items(path)
    errors = info.value.errors
    assert any(e.startswith(f"{path}:2: <json>:") for e in errors)
    assert any(e.startswith(f"{path}:3: id: duplicate 'a'") for e in errors)
    assert any(e.startswith(f"{path}:5: id:") for e in errors)
    assert "nothing was loaded" in str(info.value)


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="grm world"):
        read_items(tmp_path / "nope.jsonl")


def test_write_items_is_atomic_and_leaves_no_temp_files(tmp_path):
    items = [Item.from_dict(r) for r in GOOD]
    write_items(tmp_path / "x.jsonl", items)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.jsonl"]
