"""Shared row-conversion machinery: row errors, id building, chat normalisation and the streaming collector.

Every converter is a pure row function ``convert(row, index) -> list[Item]`` (0 items for a row that is legitimately
skipped, e.g. a human-preference tie; several for a row that expands into pairs). A bad row raises ``RowError``
naming the field and the problem; the collector turns that into ``file:line: field: problem`` and keeps going, so
one run reports every bad row of the part it read (``DataError`` at the end, nothing returned).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from grm.files import JsonProblem, iter_lines, parse_json, read_text
from grm.schemas import ROLES, DataError, Item, validate_record

log = logging.getLogger(__name__)

RowConverter = Callable[[dict[str, Any], int], list[Item]]


class RowError(ValueError):
    """One problem in one source row: ``field`` is the source field (dotted for nesting), ``problem`` says what."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


@dataclass(frozen=True)
class Row:
    """A raw source row and where it came from (``location`` = ``file:line``, ``file:record`` or ``hf://...:row``)."""

    location: str
    index: int  # 0-based position inside its shard (used for ids when the source has none)
    data: Any


Shard = Callable[[], Iterator[Row]]  # a lazily opened part of a source (one file, one subset, one zip member)


@dataclass(frozen=True)
class BadJson:
    """Placeholder row data for a line that is not valid JSON (reported as ``<json>: ...``)."""

    message: str


def parse_json_lines(lines: Iterable[str | bytes], path: str) -> Iterator[Row]:
    """Stream ``Row``s from JSON lines (blank lines skipped; locations ``path:line``)."""
    yield from _rows(enumerate(lines, start=1), path)


def _rows(numbered: Iterable[tuple[int, str | bytes]], path: str) -> Iterator[Row]:
    index = 0
    for lineno, line in numbered:
        if not line.strip():
            continue
        try:
            data: Any = parse_json(line)
        except JsonProblem as exc:
            data = BadJson(str(exc))
        yield Row(f"{path}:{lineno}", index, data)
        index += 1


def iter_jsonl(path: str | Path) -> Iterator[Row]:
    """Stream ``Row``s from a JSONL file (strict UTF-8: a bad encoding raises ``InputFileError`` naming the line).

    Raises:
        DataError: the file is truncated: its last line is not valid JSON and has no newline (a copy cut short),
            even when bad rows are being skipped: skipping it would silently drop the rest of the benchmark.
    """
    last: Row | None = None
    for row in _rows(iter_lines(path, "JSONL file"), str(path)):
        if last is not None:
            yield last
        last = row
    if last is None:
        return
    if isinstance(last.data, BadJson) and not _ends_with_newline(Path(path)):
        raise DataError(
            path,
            [
                f"{last.location}: <file>: the file is truncated: its last line is cut off mid-row "
                f"({last.data.message}) and has no newline; copy or download the file again"
            ],
        )
    yield last


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as fh:
        fh.seek(0, 2)
        if fh.tell() == 0:
            return True
        fh.seek(-1, 2)
        return fh.read(1) == b"\n"


def iter_json_list(path: str | Path) -> Iterator[Row]:
    """Rows of a file holding one JSON list (locations ``path:record`` with 1-based record numbers)."""
    path = Path(path)
    try:
        records = parse_json(read_text(path, "JSON file"))
    except JsonProblem as exc:
        yield Row(f"{path}:{exc.line}", 0, BadJson(str(exc)))
        return
    if not isinstance(records, list):
        yield Row(f"{path}:1", 0, BadJson(f"expected a JSON list of records, got {type(records).__name__}"))
        return
    for i, record in enumerate(records):
        yield Row(f"{path}:{i + 1}", i, record)


def make_id(benchmark: str, subset: str | None, original: Any) -> str:
    """Canonical converted id ``{benchmark}/{subset}/{original id}``.

    Example:
        >>> make_id("rewardbench", "hep-go", 17)
        'rewardbench/hep-go/17'
    """
    return f"{benchmark}/{subset or 'default'}/{original}"


def need(row: dict[str, Any], key: str, kind: type | tuple[type, ...] = str, *, prefix: str = "") -> Any:
    """Return ``row[key]`` if present and of type ``kind`` (non-empty when a string), else raise ``RowError``.

    Args:
        row: the source row.
        key: field name.
        kind: accepted type(s).
        prefix: dotted prefix for the field name in the error (``chosen.`` for nested objects).

    Returns:
        The value.
    """
    if not isinstance(row, dict):
        raise RowError(prefix.rstrip(".") or "<row>", f"expected an object, got {type(row).__name__}")
    if key not in row or row[key] is None:
        raise RowError(prefix + key, f"missing; the row has fields {sorted(row)}")
    value = row[key]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RowError(prefix + key, f"expected {_kind_name(kind)}, got bool")
    if not isinstance(value, kind):
        raise RowError(prefix + key, f"expected {_kind_name(kind)}, got {type(value).__name__}")
    if isinstance(value, str) and not value.strip():
        raise RowError(prefix + key, "empty string")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def chat_messages(messages: Any, field: str) -> tuple[dict[str, str], ...]:
    """Normalise a chat transcript to ``({role, content}, ...)``; extra keys (``language``) are dropped.

    Raises ``RowError`` when it is not a non-empty list of messages with known roles ending in a user turn.
    """
    if not isinstance(messages, list | tuple) or not messages:
        raise RowError(field, "expected a non-empty list of {role, content} messages")
    out = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            raise RowError(f"{field}[{i}]", "expected an object with 'role' and 'content'")
        role = msg["role"]
        if role == "human":
            role = "user"
        if role not in ROLES:
            raise RowError(f"{field}[{i}].role", f"{role!r} is not one of {list(ROLES)}")
        if not isinstance(msg["content"], str) or not msg["content"].strip():
            raise RowError(f"{field}[{i}].content", "missing or empty")
        out.append({"role": role, "content": msg["content"]})
    if out[-1]["role"] != "user":
        raise RowError(field, f"the last message must be the user's turn, got {out[-1]['role']!r}")
    return tuple(out)


def split_conversation(messages: Any, field: str) -> tuple[str | tuple[dict[str, str], ...], str]:
    """Split a full conversation ending with the assistant's answer into (query, response).

    Single-turn queries collapse to the plain user string, so decontamination and prompts see the same text.
    """
    if not isinstance(messages, list | tuple) or len(messages) < 2:
        raise RowError(field, "expected a conversation of at least a user turn and an assistant answer")
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "assistant":
        raise RowError(f"{field}[{len(messages) - 1}]", "the last message must be the assistant's answer")
    answer = last.get("content")
    if not isinstance(answer, str) or not answer.strip():
        raise RowError(f"{field}[{len(messages) - 1}].content", "missing or empty")
    return simplify_query(chat_messages(list(messages[:-1]), field)), answer


def simplify_query(messages: tuple[dict[str, str], ...]) -> str | tuple[dict[str, str], ...]:
    """A one-message user transcript becomes its string; anything longer stays a transcript."""
    if len(messages) == 1 and messages[0]["role"] == "user":
        return messages[0]["content"]
    return messages


def build_item(**fields: Any) -> Item:
    """Build a canonical ``Item`` and check it with ``validate_record``; problems become ``RowError``."""
    record = {k: v for k, v in fields.items() if v is not None}
    if isinstance(record.get("query"), tuple):
        record["query"] = list(record["query"])
    problems = validate_record(record, invisible_responses_ok=True)  # a benchmark's responses as published
    if problems:
        field, problem = problems[0]
        raise RowError(f"<converted>.{field}", problem)
    return Item.from_dict(record, invisible_responses_ok=True)


def round_robin(shards: Sequence[Shard]) -> Iterator[Row]:
    """Interleave rows of the shards one at a time; a shard is opened only when its first row is needed."""
    iterators: list[Iterator[Row] | None] = [None] * len(shards)
    active = list(range(len(shards)))
    while active:
        still = []
        for s in active:
            if iterators[s] is None:
                iterators[s] = shards[s]()
            row = next(iterators[s], None)  # type: ignore[arg-type]
            if row is not None:
                still.append(s)
                yield row
        active = still


def collect_items(
    rows: Iterable[Row],
    convert: RowConverter,
    *,
    source: str,
    limit: int | None = None,
    progress: bool = True,
    desc: str = "converting",
    skipped: list[str] | None = None,
) -> list[Item]:
    """Convert source rows to items, gathering every bad row; stop after ``limit`` items.

    Args:
        rows: source rows (streamed).
        convert: the row converter.
        source: the source's name, for the ``DataError`` headline.
        limit: keep at most this many items (None = all).
        progress: show a tqdm bar (hidden when stderr is not a terminal).
        desc: progress-bar label.
        skipped: if given, bad rows are appended to it as ``location: field: problem`` and skipped (logged as a
            warning) instead of failing the whole load; for real benchmarks with a few known-bad rows.

    Returns:
        The items, in row order.

    Raises:
        DataError: listing every ``location: field: problem`` (bad rows and duplicate ids), unless ``skipped``.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    items: list[Item] = []
    errors: list[str] = []
    seen: dict[str, str] = {}
    bar = tqdm(rows, desc=desc, unit="row", disable=None if progress else True, leave=False)
    for row in bar:
        if isinstance(row.data, BadJson):
            errors.append(f"{row.location}: <json>: {row.data.message}")
            continue
        try:
            converted = convert(row.data, row.index)
        except RowError as exc:
            errors.append(f"{row.location}: {exc.field}: {exc.problem}")
            continue
        for item in converted:
            if item.id in seen:
                errors.append(f"{row.location}: id: duplicate converted id {item.id!r} (first at {seen[item.id]})")
                continue
            seen[item.id] = row.location
            items.append(item)
            if limit is not None and len(items) >= limit:
                break
        if limit is not None and len(items) >= limit:
            break
    bar.close()
    if errors and skipped is None:
        raise DataError(source, errors)
    if errors and skipped is not None:
        skipped.extend(errors)
        log.warning("%s: skipped %d bad row(s), e.g. %s", source, len(errors), errors[0])
    log.info("%s: %d items", source, len(items))
    return items
