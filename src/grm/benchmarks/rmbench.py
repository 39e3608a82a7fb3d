"""RM-Bench (Liu et al., ICLR 2025; THU-KEG/RM-Bench @ 73c52d7): subtle errors under style changes.

Local copy: ``rm-bench/data/{chat,code,safety-refuse,safety-response}_filtered.json`` (``math_filtered.json`` is read
too when a user has it; here it is missing). Each file is one JSON list of ``{"id": int, "subset": str, "prompt":
str, "chosen": [3 str], "rejected": [3 str], ...}``; index 0/1/2 = concise / detailed plain / detailed markdown.
The hub's ``total_dataset.json`` rows carry ``domain`` (``chat``, ``math``, ``code``, ``safety-refuse``, ...) and
convert the same way (``convert_row`` reads ``domain`` when the file name does not give it).

Converted item (one per prompt): ``id = rm-bench/{domain}/{id}``, ``responses = [chosen_0, chosen_1, chosen_2,
rejected_0, rejected_1, rejected_2]``, ``best = 0``, ``subset = domain`` with the two safety files **pooled** into
``safety`` (official ``compute_accuracy`` splits by ``domain.startswith``), ``meta = {domain, source_file, source_subset,
n_chosen: 3}``. A ``--scores-file`` line gives the six scores in that order.

Protocol ``style_matrix``: ``style_pairs`` expands a prompt into the nine (chosen_i, rejected_j) two-response items
the GRM judges (``grm.eval.protocols.style_matrix``); ``grm.benchmarks.scoring.rm_bench_scores`` builds the official 3x3 matrix.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from grm.benchmarks.registry import BenchmarkSpec, register
from grm.benchmarks.rows import RowError, Shard, build_item, iter_json_list, make_id, need
from grm.benchmarks.scoring import RM_BENCH_DOMAINS, RM_BENCH_STYLES
from grm.schemas import Item

NAME = "rm-bench"
LOCAL_DIR = Path("rm-bench") / "data"
FILES = ("chat", "math", "code", "safety-refuse", "safety-response")  # <name>_filtered.json, read when present


def domain_of(name: str) -> str:
    """``safety-refuse`` -> ``safety`` (pooled), ``chat`` -> ``chat``; unknown raises ``RowError``.

    Example:
        >>> domain_of("safety-response"), domain_of("code")
        ('safety', 'code')
    """
    for domain in RM_BENCH_DOMAINS:
        if name.startswith(domain):
            return domain
    raise RowError("domain", f"{name!r} does not start with one of {list(RM_BENCH_DOMAINS)}")


def _styles(row: dict[str, Any], key: str) -> list[str]:
    value = need(row, key, list)
    if len(value) != RM_BENCH_STYLES:
        raise RowError(
            key, f"expected {RM_BENCH_STYLES} responses (concise, detailed plain, markdown), got {len(value)}"
        )
    for i, text in enumerate(value):
        if not isinstance(text, str) or not text.strip():
            raise RowError(f"{key}[{i}]", "missing or empty response")
    return value


def convert_row(row: dict[str, Any], index: int, *, file_domain: str | None = None) -> list[Item]:
    """One RM-Bench prompt -> one six-response item (three chosen, then three rejected).

    Args:
        row: a source row (see the module docstring).
        index: row position (unused: rows carry their id).
        file_domain: the file's name part (``safety-refuse``); None = read the row's ``domain`` (total_dataset).

    Returns:
        ``[item]``.
    """
    name = file_domain if file_domain is not None else need(row, "domain")
    domain = domain_of(name)
    original = need(row, "id", (int, str))
    chosen, rejected = _styles(row, "chosen"), _styles(row, "rejected")
    meta: dict[str, Any] = {"domain": domain, "source_file": name, "n_chosen": RM_BENCH_STYLES}
    if isinstance(row.get("subset"), str):
        meta["source_subset"] = row["subset"]
    item = build_item(
        id=make_id(NAME, domain, original),
        query=need(row, "prompt"),
        responses=[*chosen, *rejected],
        best=0,
        source=NAME,
        subset=domain,
        meta=meta,
    )
    return [item]


def style_pairs(item: Item) -> list[Item]:
    """The nine (chosen_i, rejected_j) comparisons of one prompt as two-response items (chosen first, ``best = 0``),
    ids ``{prompt id}/c{i}r{j}``, ``meta = {domain, chosen_style: i, rejected_style: j, prompt_id}``."""
    n_chosen = int(item.meta.get("n_chosen", RM_BENCH_STYLES))
    if item.n != 2 * n_chosen or n_chosen != RM_BENCH_STYLES:
        raise ValueError(f"{item.id}: an RM-Bench prompt has 3 chosen + 3 rejected responses, got {item.n}")
    return [
        dataclasses.replace(
            item,
            id=f"{item.id}/c{i}r{j}",
            responses=(item.responses[i], item.responses[n_chosen + j]),
            best=0,
            meta={
                "domain": item.meta.get("domain", item.subset),
                "chosen_style": i,
                "rejected_style": j,
                "prompt_id": item.id,
            },
        )
        for i in range(n_chosen)
        for j in range(n_chosen)
    ]


def _convert_any(row: dict[str, Any], index: int) -> list[Item]:
    """Row converter for the registry: local rows carry their file's name as ``_file`` (``local_shards``); hub rows
    (``total_dataset.json``) their ``domain``."""
    if isinstance(row, dict) and "_file" in row:
        row = dict(row)
        return convert_row(row, index, file_domain=row.pop("_file"))
    return convert_row(row, index)


def local_shards(root: Path) -> list[Shard]:
    """One shard per domain file present (``chat``, ``math``, ``code``, ``safety-refuse``, ``safety-response``); each
    row is tagged with its file's name (``_file``) for the converter."""
    base = root / LOCAL_DIR
    present = [(name, base / f"{name}_filtered.json") for name in FILES if (base / f"{name}_filtered.json").is_file()]
    if not present:
        raise FileNotFoundError(
            f"no {{chat,math,code,safety-refuse,safety-response}}_filtered.json under {base}; "
            f"is {root} the benchdata folder (see its README)?"
        )
    return [functools.partial(_tag, name, path) for name, path in present]


def _tag(name: str, path: Path) -> Any:
    for row in iter_json_list(path):
        if isinstance(row.data, dict):
            yield dataclasses.replace(row, data={**row.data, "_file": name})
        else:
            yield row


SPEC = register(
    BenchmarkSpec(
        name=NAME,
        description="RM-Bench (chat 129, code 228, safety 441 pooled; math when present): 3 chosen x 3 rejected "
        "styles per prompt, the 3x3 hard/normal/easy matrix",
        convert=_convert_any,
        scorer="rm_bench",
        official_tie_policy="strict",  # compute_accuracy: score_chosen[i] > score_rejected[j]
        protocol="style_matrix",
        local_shards=local_shards,
        notes="math_filtered.json is missing from the local copy; Overall is then the mean of 3 domains",
    )
)
