"""Verified reuse: a completed stage folder is checked against the manifest written at publish before reuse."""

from __future__ import annotations

import json
import logging
import os

import pytest

from tasks.engine.stages import MARKER, VERIFY_ENV, StageOutput, StageStore, stage_key


def _store(tmp_path):
    store = StageStore(tmp_path / "stages")
    key = stage_key("train", config={"a": 1}, inputs={}, code="c0")
    builds: list[int] = []

    def build(out):
        builds.append(1)
        (out / "model").mkdir()
        (out / "model" / "model.safetensors").write_bytes(b"w" * 1000)
        return StageOutput(outputs={"model": "model"}, metrics={"n": float(len(builds))})

    return store, key, build, builds


def test_publish_writes_a_manifest_of_sizes_and_hashes(tmp_path):
    store, key, build, _ = _store(tmp_path)
    result = store.run("train", key, build)
    manifest = json.loads((store.final_dir("train", key) / MARKER).read_text())["manifest"]
    assert list(manifest) == ["model/model.safetensors"]
    assert (
        manifest["model/model.safetensors"]["size"] == 1000
        and len(manifest["model/model.safetensors"]["sha256"]) == 64
    )
    assert not result.cached


def test_a_truncated_cached_output_is_rebuilt_not_reused(tmp_path, caplog):
    store, key, build, builds = _store(tmp_path)
    store.run("train", key, build)
    weights = store.final_dir("train", key) / "model" / "model.safetensors"
    weights.write_bytes(b"w" * 700)  # a disk-full copy, a partial rsync
    assert store.lookup("train", key) is None
    with caplog.at_level(logging.WARNING, logger="tasks.engine.stages"):
        again = store.run("train", key, build)
    assert len(builds) == 2 and not again.cached and again.metrics == {"n": 2.0}
    assert weights.stat().st_size == 1000
    assert "model/model.safetensors is 700 bytes, 1000 when it was published" in caplog.text
    assert store.run("train", key, build).cached and len(builds) == 2  # the rebuilt folder is reused


def test_a_deleted_or_replaced_output_is_rebuilt(tmp_path):
    store, key, build, builds = _store(tmp_path)
    store.run("train", key, build)
    weights = store.final_dir("train", key) / "model" / "model.safetensors"
    weights.unlink()
    os.mkfifo(weights)
    assert store.lookup("train", key) is None
    store.run("train", key, build)
    assert len(builds) == 2 and weights.is_file()


def test_a_same_size_change_is_found_by_the_full_check_only(tmp_path, monkeypatch):
    store, key, build, _ = _store(tmp_path)
    store.run("train", key, build)
    (store.final_dir("train", key) / "model" / "model.safetensors").write_bytes(b"x" * 1000)
    assert store.lookup("train", key) is not None  # the default check is sizes only: cheap for big models
    monkeypatch.setenv(VERIFY_ENV, "full")
    assert store.lookup("train", key) is None


@pytest.mark.parametrize("text", ["{not json", '{"outputs": {}, "manifest": []}'])
def test_an_unreadable_marker_or_manifest_is_not_reused(tmp_path, text):
    store, key, build, builds = _store(tmp_path)
    store.run("train", key, build)
    (store.final_dir("train", key) / MARKER).write_text(text)
    store.run("train", key, build)
    assert len(builds) == 2
