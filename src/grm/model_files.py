"""Check a local model folder before anything loads it: config, tokenizer and safetensors weights.

``check_model_dir`` reads only small parts of the files (the JSON configs and each safetensors header), so it is
fast even for large models; it catches what would otherwise fail later with a bare ``SafetensorError`` (no path),
a tokenizer message about sentencepiece/tiktoken, or a crash in the middle of training.
"""

from __future__ import annotations

import json
import stat
import struct
from pathlib import Path
from typing import Any

from grm.errors import MissingModelFilesError, ModelFolderError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model", "tiktoken.model")
MAX_HEADER_BYTES = 100_000_000  # safetensors caps its JSON header at 100 MB
PICKLE_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.ckpt")
FLOAT_DTYPES = ("F16", "BF16", "F32", "F64")  # safetensors dtype names a ``*.weight`` of an unquantised model has
MAX_NAMED = 5  # tensors named in a load error (then "... and N more")


def _check_regular(path: Path, folder: Path) -> None:
    """Refuse a FIFO, device or socket where a model file is read (opening a FIFO blocks for ever)."""
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise ModelFolderError(
            f"{path.name} is not a regular file (a FIFO, device or socket); only regular files are read",
            path=folder,
            fix=f"replace {path.name} by the real file (save the model again with save_pretrained)",
        )


def _read_json(path: Path, folder: Path) -> object:
    _check_regular(path, folder)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ModelFolderError(
            f"{path.name} is not valid JSON ({exc.__class__.__name__}: {str(exc)[:120]})",
            path=folder,
            fix=f"restore {path.name} (e.g. save the model again with save_pretrained)",
        ) from None


def check_safetensors_file(path: str | Path, folder: str | Path | None = None, *, float_weights: bool = False) -> None:
    """Check a ``.safetensors`` file's framing: a regular file, an 8-byte header length, a JSON header, and enough
    tensor bytes; with ``float_weights`` every ``*.weight`` tensor must have a floating-point dtype.

    Raises:
        ModelFolderError: naming the file and what is wrong (too short, header unreadable, truncated data).
    """
    path = Path(path)
    where = Path(folder) if folder is not None else path.parent
    fix = f"the file is incomplete or corrupt: copy or save {path.name} again"
    _check_regular(path, where)
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
        if float_weights and name.endswith(".weight") and entry.get("dtype") not in FLOAT_DTYPES:
            raise ModelFolderError(
                f"{path.name}: tensor {name!r} has dtype {entry.get('dtype')!r}; an unquantised model's weights are "
                f"floating point ({', '.join(FLOAT_DTYPES)}) and transformers would cast these integers silently",
                path=where,
                fix="save the model in float16/bfloat16/float32, or add its quantization_config to config.json",
            )
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
    for entry in path.iterdir():  # a FIFO under any name a loader opens (weights, config, tokenizer) blocks for ever
        if not (entry.is_file() or entry.is_dir()) and entry.exists():
            _check_regular(entry, path)
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
    config_data = _read_json(config, path)
    if not isinstance(config_data, dict):
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
    quantized = "quantization_config" in config_data
    for w in weights:
        check_safetensors_file(w, path, float_weights=not quantized)
    return path


def _named(keys: Any) -> str:
    keys = sorted(keys)
    more = f" ... and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else ""
    return ", ".join(keys[:MAX_NAMED]) + more


def check_loading_info(info: dict[str, Any], model_dir: str | Path, role: str) -> None:
    """Refuse what ``from_pretrained(..., output_loading_info=True)`` reports but only warns about: tensors the
    model needs that the checkpoint lacks (they would be random), tensors the checkpoint has that the model does not
    use (another architecture or layer count), and shape mismatches.

    Raises:
        ModelFolderError: naming the folder, the tensors (the first few) and what the mismatch means for ``role``.
    """
    missing, unexpected = info.get("missing_keys") or (), info.get("unexpected_keys") or ()
    mismatched = [str(m[0]) if isinstance(m, tuple | list) else str(m) for m in info.get("mismatched_keys") or ()]
    if not (missing or unexpected or mismatched):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} tensor(s) the model needs are not in the checkpoint ({_named(missing)})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensor(s) in the checkpoint fit no parameter ({_named(unexpected)})")
    if mismatched:
        parts.append(f"{len(mismatched)} tensor(s) have the wrong shape ({_named(mismatched)})")
    if any(k.startswith("lm_head") for k in unexpected) and any(
        k.startswith(("score", "classifier")) for k in missing
    ):
        parts.append("the folder holds a causal LM (a GRM or base model with an lm_head), not a classifier")
    raise ModelFolderError(
        f"the weights do not fit config.json as a {role}: " + "; ".join(parts) + ". Loading would use random "
        "weights for what is missing (a truncated or mixed checkpoint, a config with another layer count or "
        "architecture, or a model of another kind)",
        path=model_dir,
        fix=f"point to a complete {role} folder saved with save_pretrained (config.json and weights together)",
    )


def check_finite(model: Any, model_dir: str | Path) -> None:
    """Refuse a loaded model with a NaN or infinite parameter (every score it gives would be NaN).

    Raises:
        ModelFolderError: naming the folder and the first non-finite tensor.
    """
    import torch

    for name, param in model.named_parameters():
        if param.is_floating_point() and not bool(torch.isfinite(param).all()):
            raise ModelFolderError(
                f"tensor {name!r} holds NaN or infinite values: the model cannot give meaningful outputs",
                path=model_dir,
                fix="restore the checkpoint from before the training step that diverged, or save the model again",
            )


class _DropLoadReport:
    def filter(self, record: Any) -> bool:
        return "LOAD REPORT" not in str(record.msg)


def load_pretrained(model_cls: Any, model_dir: str | Path, *, role: str, **kwargs: Any) -> Any:
    """``model_cls.from_pretrained(model_dir, **kwargs)``, strictly: ``check_loading_info`` and ``check_finite``.

    ``role`` says what the folder is used as (``GRM``, ``meta RM``, ``base model``) in the error.

    Raises:
        ModelFolderError: missing/unexpected/mis-shaped tensors, or non-finite weights; naming folder and tensor.
    """
    import logging

    from transformers.utils import logging as hf_logging

    report = logging.getLogger("transformers.modeling_utils")  # its LOAD REPORT becomes the one error below
    drop = _DropLoadReport()
    report.addFilter(drop)
    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" would precede an error message; a load takes seconds
    try:
        model, info = model_cls.from_pretrained(model_dir, output_loading_info=True, **kwargs)
    except RuntimeError as exc:
        if "size mismatch" not in str(exc):
            raise
        raise ModelFolderError(
            f"the weights do not fit config.json as a {role}: {str(exc)[:400]}",
            path=model_dir,
            fix=f"point to a complete {role} folder saved with save_pretrained (config.json and weights together)",
        ) from None
    finally:
        report.removeFilter(drop)
        if bar:
            hf_logging.enable_progress_bar()
    check_loading_info(info, model_dir, role)
    check_finite(model, model_dir)
    return model
