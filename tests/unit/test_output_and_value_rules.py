"""Outputs that never clobber, one normalisation for text comparisons, and config numbers read as written."""

from __future__ import annotations

import os
import stat

import pytest

from grm.config import ConfigError
from grm.errors import InputFileError, UserError
from grm.files import JsonProblem, check_name, check_output_file, parse_json, write_text_atomic
from grm.plan import load_pipeline
from grm.text_keys import comparison_key, is_blank


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_a_new_output_gets_0666_less_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        path = write_text_atomic(tmp_path / "o.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_replaced_output_keeps_its_mode(tmp_path):
    path = tmp_path / "o.txt"
    path.write_text("old")
    path.chmod(0o640)
    write_text_atomic(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and path.read_text() == "new"


def test_a_symlinked_output_is_written_through_and_stays_a_link(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    write_text_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_a_fifo_output_is_refused_and_left_in_place(tmp_path):
    fifo = tmp_path / "p"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="FIFO"):
        write_text_atomic(fifo, "x")
    with pytest.raises(InputFileError, match="FIFO"):
        check_output_file(fifo)
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["p"]


def test_an_output_equal_to_an_input_is_refused_also_through_other_spellings(tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text("{}\n")
    (tmp_path / "sub").mkdir()
    for same in (inp, tmp_path / "sub" / ".." / "in.jsonl"):
        with pytest.raises(InputFileError, match="overwrite the input"):
            check_output_file(same, inputs=[inp])
    assert check_output_file(tmp_path / "out.jsonl", inputs=[inp]) == tmp_path / "out.jsonl"


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "", "a\nb", "x" * 129, "a\\b"])
def test_names_that_escape_their_folder_are_refused(name):
    with pytest.raises(UserError, match="--model-name"):
        check_name(name, "--model-name")


def test_json_duplicate_keys_are_refused_at_any_depth():
    with pytest.raises(JsonProblem, match="'b' appears twice"):
        parse_json('{"a": {"b": 1, "b": 2}}')
    assert parse_json('{"a": {"b": 1}, "b": 2}') == {"a": {"b": 1}, "b": 2}


@pytest.mark.parametrize("text", ["", " ", "\u200b", "\ufeff", "\u200e\u2060 \t", "\x00"])
def test_invisible_only_texts_are_blank(text):
    assert is_blank(text)


@pytest.mark.parametrize("text", ["a", " \u200bx", "\u00e9", "0"])
def test_visible_texts_are_not_blank(text):
    assert not is_blank(text)


@pytest.mark.parametrize(
    ("a", "b"),
    [("w/1", "w/1 "), ("w/1", "\uff57/1"), ("w/1", "w/\u200b1"), ("a b", "a\u00a0 b"), ("x", "\ufeffx")],
)
def test_texts_that_render_the_same_compare_the_same(a, b):
    assert comparison_key(a) == comparison_key(b)


def test_texts_that_differ_visibly_compare_different():
    assert comparison_key("w/1") != comparison_key("w/2") and comparison_key("W/1") != comparison_key("w/1")


def test_a_zero_width_character_does_not_hide_a_leaked_query():
    from grm.benchmarks.decontamination import find_overlaps
    from grm.schemas import Item

    train = Item("t/0", "What is the capital of Zorvia?", ("Lima", "Oslo"), best=0)
    leaked = Item("b/0", "What is the capital\u200b of Zorvia?", ("Lima", "Oslo"), best=0)
    assert [o.benchmark_id for o in find_overlaps({"train": [train]}, {"bench": [leaked]})] == ["b/0"]


def test_yaml_12_floats_without_a_dot_are_numbers():
    cfg = load_pipeline([], ["rl.beta=1e-3", "rft.train.learning_rate=3E-3"])
    assert cfg.rl.beta == 0.001 and cfg.rft.train.learning_rate == 0.003


@pytest.mark.parametrize("value", ["10", "0", "-5", "0x10"])
def test_plain_integers_are_accepted(value):
    assert isinstance(load_pipeline([], [f"seed={value}"]).seed, int)


@pytest.mark.parametrize(
    ("override", "needle"),
    [("seed=010", "octal"), ("seed=1:30", "base 60"), ("seed=1_000", "underscores"), ("seed=0b11", "binary")],
)
def test_yaml_11_surprises_are_refused_with_the_fix(override, needle):
    with pytest.raises(ConfigError, match=needle):
        load_pipeline([], [override])


def test_a_huge_value_is_quoted_short_in_the_error():
    with pytest.raises(ConfigError) as info:
        load_pipeline([], ["seed=[" + ",".join(["[1,2,3,4,5,6,7,8]"] * 5000) + "]"])
    assert len(str(info.value)) < 300


def test_disk_full_is_a_user_error_naming_the_file_not_a_traceback(tmp_path, monkeypatch):
    import errno
    import json

    from typer.testing import CliRunner

    from grm_cli.app import app

    items = tmp_path / "i.jsonl"
    items.write_text(json.dumps({"id": "a", "query": "2 + 3 ?", "responses": ["5", "6"], "best": 0}) + "\n")
    out = tmp_path / "o.jsonl"

    def full(path, records):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("grm.files.write_jsonl_atomic", full)
    argv = ["score", "--model", "world-teacher", "--input", str(items), "--output", str(out), "--k", "1"]
    res = CliRunner().invoke(app, [*argv, "--template", "compact"])
    assert res.exit_code == 2 and "No space left on device" in res.stderr and str(out) in res.stderr
    assert "Traceback" not in res.output and not out.exists()
