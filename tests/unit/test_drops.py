"""Landing folders of drops (``grm.drops``): the window rule, arrival order, and every layout that is refused."""

from __future__ import annotations

import datetime as dt
import json
import zlib
from pathlib import Path

import pytest

from grm.drops import arrival_key, drop_date, parse_window, read_selection, select_drops
from grm.errors import UserError
from grm.schemas import DataError


def row(item_id: str, query: str | None = None) -> str:
    """A valid world row; its arithmetic query is derived from the id (distinct ids: distinct queries)."""
    a, b = divmod(zlib.crc32(item_id.encode()) % 1_000_000, 1000)
    query = query or f"{a} + {b} ?"
    return json.dumps({"id": item_id, "query": query, "responses": [str(a + b), "it is 6"], "best": 0}) + "\n"


def drop(root: Path, name: str, n: int = 2, **text: str) -> Path:
    """A drop ``name`` with ``n`` rows per split, ids ``{name}/{split}/{i}`` (``text`` replaces a split's file)."""
    folder = root / name
    folder.mkdir(parents=True)
    for split in ("train", "val", "test"):
        content = text.get(split, "".join(row(f"{name}/{split}/{i}") for i in range(n)))
        if content is not None:
            (folder / f"{split}.jsonl").write_text(content, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("text", "kind", "n", "since"),
    [("all", "all", 0, None), ("last:3", "last", 3, None), ("since:2026-12-01", "since", 0, dt.date(2026, 12, 1))],
)
def test_window_forms_parse(text: str, kind: str, n: int, since: dt.date | None) -> None:
    w = parse_window(text)
    assert (w.kind, w.n, w.since) == (kind, n, since)


@pytest.mark.parametrize("text", ["last:0", "last:x", "since:2026-13-01", "since:", "newest", ""])
def test_a_bad_window_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"data\.window=.*'all', 'last:N' \(N >= 1\) or 'since:YYYY-MM-DD'"):
        parse_window(text)


def test_the_config_refuses_a_bad_window_at_load() -> None:
    from grm.plan import load_pipeline

    with pytest.raises(ValueError, match="data.window='last:0'"):
        load_pipeline([], ["data.window=last:0"])
    assert load_pipeline([], ["data.window=since:2026-12-01"]).data.window == "since:2026-12-01"


def test_drop_names_sort_by_arrival_with_numbers_compared_as_numbers() -> None:
    names = ["v10", "v2", "2026-w9", "2026-w10", "2026-12-07", "2026-11-30"]
    assert sorted(names, key=arrival_key) == ["2026-11-30", "2026-12-07", "2026-w9", "2026-w10", "v2", "v10"]
    assert drop_date("2026-w50") == dt.date(2026, 12, 7)  # the Monday of ISO week 50
    assert drop_date("2026-12-07b") == dt.date(2026, 12, 7) and drop_date("2026-13-07") is None


def test_a_folder_with_split_files_is_one_drop_and_ignores_its_subfolders(tmp_path: Path) -> None:
    src = drop(tmp_path, "mine")
    (src / "notes").mkdir()
    sel = select_drops(src, "last:1")
    assert not sel.landing and sel.names == ["mine"] and sel.general is None


def test_a_landing_folder_selects_its_drops_by_window(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    for name in ("2026-w49", "2026-w50", "2026-w51"):
        drop(inc, name)
    (inc / ".2026-w52").mkdir()  # a copy in progress: not a drop yet
    (inc / "general.jsonl").write_text('{"prompt": "q", "completion": " a"}\n', encoding="utf-8")
    (inc / "README.md").write_text("drops land here\n", encoding="utf-8")
    assert select_drops(inc).names == ["2026-w49", "2026-w50", "2026-w51"]
    assert select_drops(inc, "last:2").names == ["2026-w50", "2026-w51"]
    assert select_drops(inc, "last:9").names == ["2026-w49", "2026-w50", "2026-w51"]
    assert select_drops(inc, "since:2026-12-07").names == ["2026-w50", "2026-w51"]
    assert select_drops(inc).general == inc / "general.jsonl"


@pytest.mark.parametrize(
    ("build", "fragments"),
    [
        (lambda r: drop(r, "2026-w50", test=None), ["2026-w50", "incomplete (half-copied?)", "no such file test.jsonl"]),
        (lambda r: (r / "2026-w50").mkdir(), ["drop '2026-w50' is empty", "train.jsonl, val.jsonl"]),
        (lambda r: (drop(r, "2026-w50") / "tran.jsonl").write_text("", encoding="utf-8"), ["tran.jsonl", "rename"]),
        (lambda r: (drop(r, "2026-w50") / "general.jsonl").write_text("", encoding="utf-8"),
         ["general.jsonl inside a drop", "landing folder's root"]),
        (lambda r: (r / "stray.jsonl").write_text("", encoding="utf-8"), ["stray.jsonl", "root of a landing folder"]),
    ],
    ids=["half-copied", "empty-drop", "stray-jsonl", "general-in-drop", "jsonl-at-root"],
)  # fmt: skip
def test_a_broken_landing_folder_is_refused_with_the_path_and_fix(tmp_path: Path, build, fragments) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")  # a good older drop does not hide a broken one
    build(inc)
    with pytest.raises(UserError) as info:
        select_drops(inc, "last:1")  # the layout of every drop is checked, selected or not
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_a_folder_without_split_files_or_drops_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no drop subfolder[\s\S]*2026-12-07/"):
        select_drops(tmp_path, "all")
    with pytest.raises(UserError, match="does not exist"):
        select_drops(tmp_path / "nowhere", "all")


def test_a_source_inside_the_dvc_data_folder_is_refused(tmp_path: Path) -> None:
    drop(tmp_path / "data" / "incoming", "2026-w49")
    with pytest.raises(UserError, match="inside data.data_dir"):
        select_drops(tmp_path / "data" / "incoming", "all", tmp_path / "data")


def test_since_needs_dated_drops_and_must_select_one(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-12-07")
    with pytest.raises(UserError, match="selects no drop; the newest is '2026-12-07'"):
        select_drops(inc, "since:2027-01-01")
    drop(inc, "v3")
    with pytest.raises(UserError, match="'v3' does not start with a date"):
        select_drops(inc, "since:2026-01-01")
    assert select_drops(inc, "last:1").names == ["v3"]


def test_ids_repeated_across_drops_are_refused_with_both_places(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")
    drop(inc, "2026-w50", train=row("2026-w49/test/1"))
    with pytest.raises(DataError) as info:
        read_selection(select_drops(inc))
    message = str(info.value)
    assert f"{inc / '2026-w50' / 'train.jsonl'}:1: id: '2026-w49/test/1' is already in drop '2026-w49'" in message
    assert f"({inc / '2026-w49' / 'test.jsonl'}:2)" in message
    assert read_selection(select_drops(inc, "last:1"))["2026-w50"]["train"][0].line == 1  # outside the window: fine


def test_a_drop_may_lack_rows_of_a_split_but_not_all_rows(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49")
    drop(inc, "2026-w50", val="", test="\n")  # new train rows only this week
    rows = read_selection(select_drops(inc))
    assert {s: len(r) for s, r in rows["2026-w50"].items()} == {"train": 2, "val": 0, "test": 0}
    drop(inc, "2026-w51", train="", val="", test="")
    with pytest.raises(DataError, match="drop '2026-w51' has no rows in any split"):
        read_selection(select_drops(inc))


def test_a_bad_row_in_a_drop_names_its_file_line_and_field(tmp_path: Path) -> None:
    inc = tmp_path / "incoming"
    drop(inc, "2026-w49", val=row("a") + '{"id": "b", "query": "q", "responses": ["x", "y"]}\n')
    with pytest.raises(DataError, match=r"2026-w49/val\.jsonl:2: best: missing"):
        read_selection(select_drops(inc))
