"""Strict config loading: YAML files + dotted overrides -> frozen dataclasses.

Borrowed from nanoGPT's configurator (reject unknown keys and mismatched types) without its exec/globals: every
section is a frozen dataclass whose fields carry ``metadata={"help": ...}``; ``__post_init__`` checks cross-field
rules (``grm.config``: the sections, their defaults and the cross-section rules).
``load_config(PipelineConfig, ["configs/tiny.yaml"], ["eval.ks=[1,8]"])`` returns the resolved config.
"""

from __future__ import annotations

import dataclasses
import math
import re
import reprlib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from grm.errors import UserError

T = TypeVar("T")


class ConfigError(UserError, ValueError):
    """A config value is unknown, missing or of the wrong type; the message names the key and the fix."""


MAX_INT = 2**63  # config integers are counts, sizes and seeds: a 30-digit one is a typo (and can hang a loop)
MAX_VALUES = 100_000  # values a config may hold once YAML aliases are expanded (an "alias bomb" grows exponentially)
MAX_SHOWN = 80  # characters of a value quoted in an error


def _short(value: Any) -> str:
    """``repr(value)``, at most ``MAX_SHOWN`` characters (a huge or nested value never floods the terminal)."""
    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother = 3, 6, 6, MAX_SHOWN, MAX_SHOWN
    short.maxlong = MAX_SHOWN
    text = short.repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert ``value`` to annotation ``tp``; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        options = [a for a in args if a is not type(None)]
        for arg in options:
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        if len(options) == 1:  # X | None: say what X wants, and that null is allowed
            raise ConfigError(f"{errors[0]} (or null)" if type(None) in args else errors[0])
        raise ConfigError(f"{key}: {_short(value)} matches none of {[_type_name(a) for a in args]}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: {_short(value)} is not one of {list(args)}")
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping for section {tp.__name__}, got {type(value).__name__}")
        return from_dict(tp, value, prefix=key)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {_short(value)}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        inner = args[0] if args else Any
        return [_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {_short(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {_short(value)}")
        if abs(value) >= MAX_INT:
            raise ConfigError(f"{key}: {_short(value)} is out of range (integers must stay below 2**63)")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {_short(value)}")
        if isinstance(value, int) and abs(value) >= MAX_INT:
            raise ConfigError(f"{key}: {_short(value)} is out of range")
        if not math.isfinite(value):
            raise ConfigError(f"{key}: {value} is not a finite number (.nan and .inf are refused)")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {_short(value)}")
        return value
    return value


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys fail and list the valid ones."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"Unknown config key {where}{unknown[0]}. Valid keys{' of ' + prefix if prefix else ''}: "
            f"{', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _coerce(value, hints[name], key)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{prefix or cls.__name__}: {exc}") from exc


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a config dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted-path params (``rl.beta``) for experiment trackers."""
    out: dict[str, Any] = {}
    data = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    for k, v in data.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for k, v in extra.items():
        if isinstance(v, Mapping) and isinstance(merged.get(k), dict):
            merged[k] = _deep_merge(merged[k], v)
        else:
            merged[k] = v
    return merged


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"rl.beta=0.08"`` -> (["rl", "beta"], 0.08); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.split(".")]
    if not key.strip() or not all(keys):
        raise ConfigError(f"override {text!r} has an empty key; write section.key=value (e.g. rl.beta=0.04)")
    if not raw.strip():
        return keys, ""
    try:
        value = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        _check_expansion(value, None, text)
        return keys, value
    except _DuplicateKey as exc:
        raise ConfigError(f"override {text!r}: {exc}") from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"override {text!r}: the value is not valid YAML ({problem}); quote strings, e.g. {key}='\"...\"'"
        ) from None


class _StrictLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping (YAML would silently keep the last)."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:
            continue  # an unhashable key: SafeLoader's own error names it
        line = key_node.start_mark.line + 1
        if first is not None:
            raise _DuplicateKey(f"duplicate key {key!r} (first on line {first}); YAML would keep only the last", line)
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)

# YAML 1.1 (what PyYAML implements) differs from YAML 1.2 and from what a reader expects: `010` is octal 8,
# `1:30` is sexagesimal 90, `1_000` is 1000, and `1e-3` (no dot) is a string. The loader reads `1e-3` as the
# number YAML 1.2 makes it, and refuses the others with the fix instead of guessing.
_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)$")
_SURPRISING_INT = (
    (re.compile(r"^[-+]?0[0-9_]+$"), "a leading zero makes YAML 1.1 read it as octal ({value} -> {parsed})"),
    (re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+$"), "YAML 1.1 reads a:b as base 60 ({value} -> {parsed})"),
    (re.compile(r"^[-+]?[0-9]+_[0-9_]*$"), "YAML 1.1 drops the underscores ({value} -> {parsed}); 1.2 keeps a string"),
    (re.compile(r"^[-+]?0b[01_]+$"), "YAML 1.1 reads 0b... as binary ({value} -> {parsed})"),
)


class _Yaml11Surprise(yaml.YAMLError):
    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.problem = message
        self.problem_mark = mark


def _int_without_surprises(loader: _StrictLoader, node: yaml.ScalarNode) -> Any:
    parsed = loader.construct_yaml_int(node)
    for pattern, why in _SURPRISING_INT:
        if pattern.match(node.value):
            raise _Yaml11Surprise(
                f"{node.value}: {why.format(value=node.value, parsed=parsed)}; write the number you mean in plain "
                f"decimal (or quote it for a string)",
                node.start_mark,
            )
    return parsed


def _float_without_surprises(loader: _StrictLoader, node: yaml.ScalarNode) -> Any:
    if ":" in node.value:
        raise _Yaml11Surprise(
            f"{node.value}: YAML 1.1 reads a:b as base 60 ({loader.construct_yaml_float(node)}); write the decimal "
            "number (or quote it for a string)",
            node.start_mark,
        )
    return loader.construct_yaml_float(node)


def _expanded_size(value: Any, limit: int) -> int:
    """How many values ``value`` holds once its aliases are expanded (each shared list/dict counted per use),
    computed per distinct node, so an alias bomb is measured without expanding it; stops counting past ``limit``."""
    memo: dict[int, int] = {}

    def size(v: Any) -> int:
        if not isinstance(v, list | dict):
            return 1
        if id(v) in memo:
            return memo[id(v)]
        children = v.values() if isinstance(v, dict) else v
        total = 1
        for child in children:
            total += size(child)
            if total > limit:
                break
        memo[id(v)] = total
        return total

    return size(value)


def _check_expansion(data: Any, path: Path | None, text: str | None = None) -> None:
    if _expanded_size(data, MAX_VALUES) > MAX_VALUES:
        where = f"override {text!r}: " if text is not None else ""
        raise ConfigError(
            f"{where}the YAML expands to more than {MAX_VALUES} values through its aliases (*name); an alias bomb?",
            path=path,
            fix="write the values out, or use fewer nested aliases",
        )


_StrictLoader.add_constructor("tag:yaml.org,2002:int", _int_without_surprises)
_StrictLoader.add_constructor("tag:yaml.org,2002:float", _float_without_surprises)
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789"))


def _yaml_error(path: Path, exc: yaml.YAMLError) -> ConfigError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    column = f" (column {mark.column + 1})" if mark is not None else ""
    parts = [p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p]
    what = ", ".join(parts) if parts else str(exc).splitlines()[0]
    return ConfigError(f"YAML syntax error{column}: {what}", path=path, line=line, fix="fix the YAML at that line")


def read_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """One config file as a dict, following ``include: other.yaml`` (relative to the including file).

    Raises:
        ConfigError: the file is missing, a folder, not UTF-8, empty, not valid YAML (file + line), has a duplicate
            key (file + line), is not a mapping, or includes itself (directly or through other files).
    """
    from grm.files import read_text

    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        loop = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ConfigError(f"config includes itself: {loop}", path=path, field="include", fix="remove the loop")
    try:
        text = read_text(path, "config file (YAML)")
    except UserError as exc:
        where = f" (included from {_chain[-1]})" if _chain else ""
        raise ConfigError(f"{exc}{where}") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(str(exc), path=path, line=exc.line, fix="keep one of the two") from None
    except yaml.YAMLError as exc:
        raise _yaml_error(path, exc) from None
    _check_expansion(data, path)
    if data is None:
        raise ConfigError(
            "the config file is empty (only comments or blank lines); an empty file would silently mean all defaults",
            path=path,
            fix="write the settings that differ from the defaults (e.g. `seed: 0`), or do not pass this file",
        )
    if not isinstance(data, dict):
        raise ConfigError(f"the top level must be a mapping of sections, got {type(data).__name__}", path=path)
    includes = data.pop("include", [])
    if isinstance(includes, str):
        includes = [includes]
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ConfigError("must be a file name or a list of file names", path=path, field="include")
    merged: dict[str, Any] = {}
    for inc in includes:
        merged = _deep_merge(merged, read_yaml(path.parent / inc, (*_chain, resolved)))
    return _deep_merge(merged, data)


def load_config(cls: type[T], paths: Sequence[str | Path] = (), overrides: Iterable[str] = ()) -> T:
    """Merge YAML files (later wins; ``include: other.yaml`` is followed) and dotted overrides into ``cls``.

    Example:
        >>> from grm.config import PipelineConfig
        >>> load_config(PipelineConfig, [], ["eval.ks=[1,4]"]).eval.k_max
        4
    """
    data: dict[str, Any] = {}
    for p in paths:
        data = _deep_merge(data, read_yaml(p))
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a section")
        node[keys[-1]] = value
    return from_dict(cls, data)


def save_config(cfg: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    from grm.files import write_text_atomic

    return write_text_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
