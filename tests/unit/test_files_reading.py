"""Strict text and JSON reading (grm.files): every framing problem is a clear error naming the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grm.errors import InputFileError, MissingFileError, UserError
from grm.files import JsonProblem, check_output_dir, check_output_file, iter_lines, parse_json, project_path, read_text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[1, NaN]", "NaN is not valid JSON"),
        ("-Infinity", "-Infinity is not valid JSON"),
        ("1" + "0" * 400, "401 digits"),
        ("-" + "9" * 5000, "5000 digits"),  # past Python's int-string limit (ValueError otherwise)
        ("[1e400]", "overflows"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": "\\udc00"}', "lone surrogate \\udc00"),
        ('{"\\ud800": 1}', "lone surrogate"),  # in a key too
        ('{"a": ', "invalid JSON (Expecting value at column 7)"),
    ],
)
def test_parse_json_refuses_what_python_lets_through_or_crashes_on(text, problem):
    with pytest.raises(JsonProblem, match=None) as info:
        parse_json(text)
    assert problem in str(info.value)


def test_parse_json_accepts_ordinary_json_and_surrogate_pairs():
    assert parse_json('{"a": [1, -2.5e3, "\\ud83d\\ude00", null, true]}') == json.loads(
        '{"a": [1, -2.5e3, "\\ud83d\\ude00", null, true]}'
    )


def test_json_problem_carries_the_line_of_a_multiline_document():
    with pytest.raises(JsonProblem) as info:
        parse_json("[\n1,\n2,,\n]")
    assert info.value.line == 3


def test_iter_lines_numbers_lines_and_keeps_unicode_line_separators(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes("a\u2028b\r\n\nc\n".encode())
    assert list(iter_lines(path)) == [(1, "a\u2028b"), (2, ""), (3, "c")]


def test_a_utf8_bom_is_dropped(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"\xef\xbb\xbfhi\n")
    assert read_text(path) == "hi\n" and list(iter_lines(path)) == [(1, "hi")]


def test_bad_bytes_are_named_by_line_and_byte_offset(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"ok\nok\nbad \xff here\n")
    for read in (read_text, lambda p: list(iter_lines(p))):
        with pytest.raises(InputFileError) as info:
            read(path)
        assert f"{path}:3: not valid UTF-8 at byte offset 10" in str(info.value) and "fix:" in str(info.value)


def test_missing_files_and_folders_are_user_errors(tmp_path):
    with pytest.raises(MissingFileError, match="no such"):
        read_text(tmp_path / "nope")
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError for callers that catch that
        read_text(tmp_path / "nope")
    with pytest.raises(InputFileError, match="is a folder"):
        read_text(tmp_path)


def test_output_paths_are_checked_before_work(tmp_path):
    (tmp_path / "f").write_text("x")
    assert check_output_file(tmp_path / "new" / "out.jsonl") == tmp_path / "new" / "out.jsonl"
    with pytest.raises(UserError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(UserError, match="is a file"):
        check_output_file(tmp_path / "f" / "out.jsonl")
    assert check_output_dir(tmp_path / "new") == tmp_path / "new"
    with pytest.raises(UserError, match="is a file"):
        check_output_dir(tmp_path / "f")


def test_user_errors_survive_pickling_with_message_and_attributes(tmp_path):
    import pickle

    from grm.config import ConfigError
    from grm.errors import ModelFolderError
    from grm.schemas import DataError

    for exc in (
        DataError(tmp_path / "a.jsonl", ["a.jsonl:1: best: bad"]),
        ConfigError("duplicate key", path="c.yaml", line=3),
        MissingFileError("no such file", path="x"),
        ModelFolderError("no config.json", path="m", fix="save it again"),
    ):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc) and back.__dict__ == exc.__dict__


def test_project_path_resolves_against_a_project_folder_the_run_will_create(tmp_path):
    (tmp_path / "shared").mkdir()
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    new = tmp_path / "link" / "runs" / "a"  # not there yet, under a symlinked ancestor
    before = project_path(new, "../../x")
    new.mkdir(parents=True)
    (tmp_path / "real" / "x").mkdir()
    assert before == (new / "../../x").resolve() == (tmp_path / "real" / "x").resolve()
    assert project_path(tmp_path / "absent", "../shared").is_dir()
    assert project_path(new, "/abs/p") == Path("/abs/p")
    assert project_path(new, "data") == new / "data"
