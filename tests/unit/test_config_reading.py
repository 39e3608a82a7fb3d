"""Strict YAML config reading (grm.config.read_yaml / parse_override): file + line for every problem."""

from __future__ import annotations

import pytest

from grm.config import ConfigError, parse_override, read_yaml
from grm.errors import UserError
from grm.plan import load_pipeline


def test_includes_still_merge_and_later_wins(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 1\neval:\n  k_max: 4\n")
    (tmp_path / "c.yaml").write_text("include: base.yaml\nseed: 2\n")
    assert read_yaml(tmp_path / "c.yaml") == {"seed": 2, "eval": {"k_max": 4}}


def test_the_same_file_may_be_included_twice_without_a_loop(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 1\n")
    (tmp_path / "a.yaml").write_text("include: base.yaml\n")
    (tmp_path / "c.yaml").write_text("include: [base.yaml, a.yaml]\nsample: 1\n")
    assert read_yaml(tmp_path / "c.yaml") == {"seed": 1, "sample": 1}


def test_duplicate_key_in_an_included_file_names_that_file_and_line(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 1\neval:\n  k_max: 4\n  k_max: 8\n")
    (tmp_path / "c.yaml").write_text("include: base.yaml\n")
    with pytest.raises(ConfigError, match=r"base\.yaml:4: duplicate key 'k_max' \(first on line 3\)"):
        read_yaml(tmp_path / "c.yaml")


def test_same_key_in_different_sections_is_fine(tmp_path):
    (tmp_path / "c.yaml").write_text("rl:\n  seed: 1\nrft:\n  seed: 1\n")
    assert read_yaml(tmp_path / "c.yaml") == {"rl": {"seed": 1}, "rft": {"seed": 1}}


def test_include_must_name_files(tmp_path):
    (tmp_path / "c.yaml").write_text("include: {a: 1}\n")
    with pytest.raises(ConfigError, match="include: must be a file name"):
        read_yaml(tmp_path / "c.yaml")


def test_config_errors_are_user_errors():
    assert issubclass(ConfigError, UserError) and issubclass(ConfigError, ValueError)


def test_override_values_are_yaml_with_duplicates_refused():
    assert parse_override("rl.beta=0.08") == (["rl", "beta"], 0.08)
    assert parse_override("a.b=") == (["a", "b"], "")
    with pytest.raises(ConfigError, match="duplicate key 'x'"):
        parse_override("a.b={x: 1, x: 2}")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline([], ["eval.k_max={"])
