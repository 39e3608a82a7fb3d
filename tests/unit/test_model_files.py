"""grm.model_files.check_model_dir on hand-made folders (no torch): every defect named with the folder and file."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from grm.errors import ModelFolderError, UserError
from grm.model_files import check_model_dir, check_safetensors_file


def _safetensors(path: Path, n_bytes: int = 16, cut: int = 0) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n_bytes // 4], "data_offsets": [0, n_bytes]}}).encode()
    data = struct.pack("<Q", len(header)) + header + b"\0" * n_bytes
    path.write_bytes(data[: len(data) - cut])


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "m"
    d.mkdir()
    (d / "config.json").write_text('{"model_type": "llama"}')
    (d / "tokenizer.json").write_text("{}")
    _safetensors(d / "model.safetensors")
    return d


def test_a_complete_folder_passes(tmp_path):
    assert check_model_dir(_folder(tmp_path)) == tmp_path / "m"


def test_one_missing_tensor_byte_is_named_as_truncation(tmp_path):
    d = _folder(tmp_path)
    _safetensors(d / "model.safetensors", cut=1)
    with pytest.raises(ModelFolderError, match=r"model\.safetensors is truncated: its header describes \d+ bytes"):
        check_model_dir(d)


def test_a_file_shorter_than_the_length_prefix(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"\x01\x02")
    with pytest.raises(ModelFolderError, match="too short"):
        check_safetensors_file(p)


def test_a_sharded_model_with_a_missing_shard(tmp_path):
    d = _folder(tmp_path)
    (d / "model.safetensors").rename(d / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (d / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelFolderError, match=r"lists missing shard\(s\) \['model-00002-of-00002.safetensors'\]"):
        check_model_dir(d)


def test_tokenizer_check_can_be_skipped_for_weight_only_folders(tmp_path):
    d = _folder(tmp_path)
    (d / "tokenizer.json").unlink()
    with pytest.raises(ModelFolderError, match="no tokenizer files"):
        check_model_dir(d)
    assert check_model_dir(d, tokenizer=False) == d


def test_errors_name_the_folder_and_are_user_errors(tmp_path):
    d = _folder(tmp_path)
    (d / "config.json").write_text("[1]")
    with pytest.raises(UserError) as info:
        check_model_dir(d)
    assert str(info.value).startswith(f"{d}: config.json is not a JSON object")
