"""Robust file I/O: atomic writes (temp path + rename) and strict text/JSON reading with clear errors.

Readers never raise ``UnicodeDecodeError``, ``RecursionError``, ``OverflowError`` or ``IsADirectoryError``: every
problem becomes an ``InputFileError`` naming the file, the line (and byte offset) and the fix.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from grm.errors import InputFileError, MissingFileError, UserError


def project_path(project_dir: str | Path, path: str | Path) -> Path:
    """``path`` made absolute against ``project_dir`` (kept if absolute), as the kernel will resolve it once the run has
    created ``project_dir``: before that, ``NEW/../x`` cannot be opened, so ``..`` is collapsed lexically after the
    folder's existing ancestors are resolved.

    Example:
        >>> project_path("/nonexistent/run", "../shared/benchdata").as_posix()
        '/nonexistent/shared/benchdata'
    """
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    base = Path(project_dir)
    if base.exists():
        return base / p
    return Path(os.path.normpath(base.resolve() / p))


MAX_INT_DIGITS = 100  # longer integer literals are refused (float() of them overflows; > 4300 digits int() fails)
_MAGIC = (
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip FILE)"),
    (b"PK\x03\x04", "a zip archive", "extract it first"),
    (b"\xff\xfe\x00\x00", "UTF-32 encoded", "re-save it as UTF-8 (e.g. iconv -f utf-32 -t utf-8)"),
    (b"\xff\xfe", "UTF-16 encoded (BOM FF FE)", "re-save it as UTF-8 (e.g. iconv -f utf-16 -t utf-8)"),
    (b"\xfe\xff", "UTF-16 encoded (BOM FE FF)", "re-save it as UTF-8 (e.g. iconv -f utf-16 -t utf-8)"),
)
_UTF8_BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only a JSON escape can put a surrogate into a decoded str


def _umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter before Python 3.13 on Linux)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_target(path: Path) -> Path:
    """Where an atomic write of ``path`` lands: a symlink is written through (its target is replaced, the link
    stays); an existing device node, FIFO or socket is refused (a rename would replace the node by a file)."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    _refuse_special(path)
    return path


def _refuse_special(path: Path) -> None:
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = (
            "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise InputFileError(
            f"the output path is {kind}; only regular files are written (a rename would replace it)",
            path=path,
            fix="name a regular file (e.g. out.jsonl) and redirect or copy it yourself",
        )


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temp file in the same folder and an atomic rename.

    The file gets the mode a plain ``open(path, "w")`` would give it (an existing file keeps its mode, a new one
    gets 0666 less the umask), a symlink is written through to its target, and a device node, FIFO or socket at
    ``path`` is refused (``InputFileError``) instead of being replaced by a regular file.

    Example:
        >>> import tempfile, pathlib
        >>> p = write_text_atomic(pathlib.Path(tempfile.mkdtemp()) / "a.txt", "hi")
        >>> p.read_text()
        'hi'
    """
    path = _write_target(Path(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_jsonl_atomic(path: str | Path, records: Iterable[dict[str, Any]]) -> Path:
    """Write one JSON object per line, atomically. Returns the path."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    return write_text_atomic(path, "\n".join(lines) + ("\n" if lines else ""))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write pretty JSON atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def check_input_file(path: str | Path, what: str = "file") -> Path:
    """``path`` as a ``Path`` if it is an existing regular file, else a ``UserError`` naming it.

    Raises:
        MissingFileError: it does not exist.
        InputFileError: it is a folder (or not a regular file).
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"no such {what}", path=path, fix="check the path")
    if path.is_dir():
        raise InputFileError(f"is a folder; expected a {what}", path=path, fix=f"name the {what} inside it")
    if not path.is_file():
        raise InputFileError(f"is not a regular file; expected a {what}", path=path)
    return path


def check_output_file(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Refuse an output file path that cannot or must not be written, before any work is done.

    Args:
        path: the output file.
        inputs: files the same command reads; writing over one of them is refused.

    Raises:
        InputFileError: ``path`` is an existing folder, device node, FIFO or socket, one of its parents is a file,
            or it is (or links to) one of ``inputs``.
    """
    path = Path(path)
    if path.is_dir():
        raise InputFileError(
            "the output path is a folder; expected a file name", path=path, fix=f"pass e.g. {path / 'out.jsonl'}"
        )
    _refuse_special(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputFileError(f"cannot write {path}: {parent} is a file, not a folder", path=path)
            break
    for src in inputs:
        if _same_file(path, Path(src)):
            raise InputFileError(
                f"the output is the input file {src}: writing it would overwrite the input",
                path=path,
                fix="write the output to another file",
            )
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_name(value: str, what: str) -> str:
    """``value`` if it is safe as one path component (a run or model name), else a ``UserError`` naming ``what``:
    no ``/`` or ``\\``, not ``.``/``..`` or hidden, no control characters, at most 128 characters.

    Example:
        >>> check_name("tiny-grm_1.2", "--model-name")
        'tiny-grm_1.2'
    """
    bad = (
        not value
        or len(value) > 128
        or value.startswith(".")
        or any(c in value for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in value)
    )
    if bad:
        raise UserError(
            f"{value[:60]!r} is not a usable name: it becomes a folder name, so it may not contain / or \\, start "
            "with '.', hold control characters or exceed 128 characters",
            field=what,
            fix="use letters, digits, '-', '_' and '.' (e.g. my-grm-v2)",
        )
    return value


def check_output_dir(path: str | Path) -> Path:
    """Refuse an output folder path that is an existing file (or lies under one), before any work is done."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise InputFileError(
                    f"the output folder {path} cannot be created: {p} is a file", path=path, fix="pass a folder"
                )
            break
    return path


def _sniff(head: bytes, path: Path, what: str) -> None:
    for magic, kind, fix in _MAGIC:
        if head.startswith(magic):
            raise InputFileError(f"is {kind}; expected a UTF-8 text {what}", path=path, fix=fix)
    if len(head) >= 4 and head[1:4:2] == b"\x00\x00" and head[0:3:2] != b"\x00\x00":
        raise InputFileError(
            f"looks UTF-16 encoded (NUL every other byte); expected a UTF-8 text {what}",
            path=path,
            fix="re-save it as UTF-8 (e.g. iconv -f utf-16le -t utf-8)",
        )


def _decode_error(path: Path, exc: UnicodeDecodeError, line: int, offset: int) -> InputFileError:
    """``exc`` from decoding a chunk that starts at byte ``offset`` of the file (line ``line``)."""
    bad = exc.object[exc.start : exc.start + 4]
    return InputFileError(
        f"not valid UTF-8 at byte offset {offset + exc.start} (bytes {bad.hex(' ')}: {exc.reason})",
        path=path,
        line=line,
        fix="re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8 FILE); the loader reads UTF-8 only",
    )


def read_text(path: str | Path, what: str = "file") -> str:
    """The whole file as text, strictly UTF-8 (a UTF-8 BOM is dropped).

    Raises:
        MissingFileError / InputFileError: missing, a folder, compressed, UTF-16/32, or not valid UTF-8 (the message
            gives the line and byte offset).
    """
    path = check_input_file(path, what)
    data = path.read_bytes()
    _sniff(data[:8], path, what)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _decode_error(path, exc, data.count(b"\n", 0, exc.start) + 1, 0) from None


def iter_lines(path: str | Path, what: str = "file") -> Iterator[tuple[int, str]]:
    """Stream ``(1-based line number, line without its newline)`` from a UTF-8 text file.

    Lines are split on ``\\n`` only (``\\r`` before it is dropped), never on the Unicode line separators that
    ``str.splitlines`` also honours, so a JSON string holding U+2028 stays on its line.

    Raises:
        MissingFileError / InputFileError: as ``read_text``; a decoding error is raised when its line is reached.
    """
    path = check_input_file(path, what)
    with path.open("rb") as fh:
        head = fh.read(8)
        _sniff(head, path, what)
        fh.seek(len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0)
        offset = fh.tell()
        for lineno, raw in enumerate(fh, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _decode_error(path, exc, lineno, offset) from None
            offset += len(raw)
            yield lineno, text.rstrip("\n").removesuffix("\r")


class JsonProblem(ValueError):
    """A JSON text that cannot be used; ``str`` is the problem (the caller adds the file), ``line`` its line."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


def _parse_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JsonProblem(f"an integer literal with {digits} digits (at most {MAX_INT_DIGITS} are accepted)")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonProblem(f"the number {text[:40]} overflows a 64-bit float")
    return value


def _parse_constant(name: str) -> Any:
    raise JsonProblem(f"{name} is not valid JSON (use a finite number or null)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise JsonProblem(f"the key {dup[:60]!r} appears twice in one object (which one is meant is ambiguous)")
    return obj


def parse_json(text: str | bytes) -> Any:
    """``json.loads`` that refuses what Python's parser lets through or crashes on.

    Refused, as ``JsonProblem``: invalid JSON (message + column), a key twice in one object (Python keeps the last
    silently; YAML's loader refuses it too), ``NaN``/``Infinity`` literals, integers with more
    than ``MAX_INT_DIGITS`` digits, numbers that overflow a float, nesting too deep for the parser (a
    ``RecursionError`` otherwise), and strings holding a lone surrogate (``"\\ud800"``: not valid Unicode, it
    cannot be written back as UTF-8).

    Example:
        >>> parse_json('{"a": [1, 2.5]}')
        {'a': [1, 2.5]}
    """
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            object_pairs_hook=_object,
        )
    except json.JSONDecodeError as exc:
        raise JsonProblem(f"invalid JSON ({exc.msg} at column {exc.colno})", exc.lineno) from None
    except RecursionError:
        raise JsonProblem("JSON nested too deeply for the parser (thousands of levels)") from None
    raw = text if isinstance(text, str) else text.decode("utf-8", "replace")
    if _SURROGATE_ESCAPE.search(raw):
        _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            _check_text(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                _check_text(k)
                stack.append(x)
        elif isinstance(v, list):
            stack.extend(v)


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise JsonProblem(
            f"a string holds the lone surrogate \\u{ord(text[exc.start]):04x} (not valid Unicode; "
            "a surrogate pair or the real character is needed)"
        ) from None


def checked_records(
    path: Path, what: str, problems: Callable[[Any], list[tuple[str, str]]], errors: list[str]
) -> Iterator[tuple[int, Any]]:
    """The decoded rows of JSONL ``path`` that ``problems`` finds nothing wrong with, as ``(line number, record)``;
    blank lines are skipped and every bad row is appended to ``errors`` as ``file:line: field: problem`` (the caller
    raises once, with all of them). ``what`` describes the file in a missing/compressed/encoding error."""
    for lineno, line in iter_lines(path, what):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except JsonProblem as exc:
            errors.append(f"{path}:{lineno}: <json>: {exc}")
            continue
        found = problems(record)
        if found:
            errors.extend(f"{path}:{lineno}: {f}: {p}" for f, p in found)
            continue
        yield lineno, record
