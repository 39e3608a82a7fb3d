"""Check a local model folder before anything loads it: config, tokenizer and safetensors weights.

``check_model_dir`` reads only small parts of the files (the JSON configs and each safetensors header), so it is
fast even for large models; it catches what would otherwise fail later with a bare ``SafetensorError`` (no path),
a tokenizer message about sentencepiece/tiktoken, or a crash in the middle of training.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from grm.errors import MissingModelFilesError, ModelFolderError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tiktoken.model")
MAX_HEADER_BYTES = 100_000_000  # safetensors caps its JSON header at 100 MB
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")


def _read_json(path: Path, folder: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFolderError(
            f"{path.name} is not valid JSON ({exc.__class__.__name__}: {str(exc)[:120]})",
            path=folder,
            fix=f"restore {path.name} (e.g. save the model again with save_pretrained)",
        ) from None


def check_safetensors_file(path: str | Path, folder: str | Path | None = None) -> None:
    """Check a ``.safetensors`` file's framing: an 8-byte header length, a JSON header, and enough tensor bytes.

    Raises:
        ModelFolderError: naming the file and what is wrong (too short, header unreadable, truncated data).
    """
    path = Path(path)
    where = Path(folder) if folder is not None else path.parent
    fix = f"the file is incomplete or corrupt: copy or save {path.name} again"
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelFolderError(
                f"{path.name} is {size} bytes, too short for a safetensors file", path=where, fix=fix
            )
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER_BYTES or 8 + n > size:
            raise ModelFolderError(
                f"{path.name}: its header length ({n} bytes) does not fit the file ({size} bytes); not safetensors "
                "or truncated",
                path=where,
                fix=fix,
            )
        raw = fh.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ModelFolderError(f"{path.name}: the safetensors header is not valid JSON", path=where, fix=fix) from None
    if not isinstance(header, dict):
        raise ModelFolderError(f"{path.name}: the safetensors header is not a JSON object", path=where, fix=fix)
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ModelFolderError(f"{path.name}: tensor {name!r} has no valid data_offsets", path=where, fix=fix)
        end = max(end, offsets[1])
    if 8 + n + end > size:
        raise ModelFolderError(
            f"{path.name} is truncated: its header describes {8 + n + end} bytes, the file has {size}",
            path=where,
            fix=fix,
        )


def check_model_dir(model_dir: str | Path, *, tokenizer: bool = True) -> Path:
    """Check that ``model_dir`` is a complete local ``save_pretrained`` folder; return it as a ``Path``.

    Checks: the folder exists; ``config.json`` exists and is a JSON object; (if ``tokenizer``) a tokenizer file
    exists and its JSON files parse; safetensors weights exist (pickle-only weights are refused: loading them can
    run arbitrary code), every shard an index lists is present, and each weights file's header parses and the file
    is as long as the header says.

    Raises:
        MissingModelFilesError: the folder or its weights do not exist.
        ModelFolderError: anything else, naming the folder, the file and the fix.
    """
    path = Path(model_dir).expanduser()
    if not path.exists():
        raise MissingModelFilesError(
            "model folder does not exist (expected a local save_pretrained folder)", path=path, fix="check the path"
        )
    if not path.is_dir():
        raise ModelFolderError("is a file; expected a model folder (save_pretrained output)", path=path)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        pickles = sorted(p.name for pattern in PICKLE_PATTERNS for p in path.glob(pattern))
        hint = f" It holds pickle weights {pickles}, which are refused." if pickles else ""
        raise MissingModelFilesError(
            f"No *.safetensors weights in {path}.{hint} Convert the checkpoint once in a trusted environment with "
            "`model.save_pretrained(dir, safe_serialization=True)`."
        )
    config = path / "config.json"
    if not config.is_file():
        raise ModelFolderError("no config.json: not a transformers model folder", path=path, fix="save it again")
    if not isinstance(_read_json(config, path), dict):
        raise ModelFolderError("config.json is not a JSON object", path=path)
    if tokenizer:
        found = [name for name in TOKENIZER_FILES if (path / name).is_file()]
        if not found:
            raise ModelFolderError(
                f"no tokenizer files (expected one of {', '.join(TOKENIZER_FILES)})",
                path=path,
                fix="save the tokenizer into the folder too: tokenizer.save_pretrained(folder)",
            )
        for name in ("tokenizer.json", "tokenizer_config.json"):
            if (path / name).is_file():
                _read_json(path / name, path)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        data = _read_json(index, path)
        shards = sorted(set((data.get("weight_map") or {}).values())) if isinstance(data, dict) else []
        missing = [s for s in shards if not (path / s).is_file()]
        if missing:
            raise ModelFolderError(f"{index.name} lists missing shard(s) {missing}", path=path, fix="copy them")
    for w in weights:
        check_safetensors_file(w, path)
    return path
