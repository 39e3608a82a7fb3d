"""Great Expectations 1.x suites for preference items and sampled trajectories.

Rows are flattened into a pandas frame first (one row per JSONL line, with ``split`` and ``line`` so failures name
the row), then checked by an ephemeral GX context whose Data Docs site is a folder we choose (the stage folder);
nothing is written into the repository. A failing suite raises ``DataValidationError`` naming every failing
expectation and its rows (``test.jsonl:17 id=...``); the caller logs the Data Docs to MLflow before stopping.

Suites:
- ``preference_items``: every split holds at least ``data.min_items.{split}`` rows; unique ids; every row passes the core schema check (``grm.schemas.validate_record``);
  non-empty query and responses; 1 <= n <= ``data.max_responses``; ``best`` in [0, n-1] or ``label`` in {0, 1};
  a unique best (ratings have one maximum, at ``best``); texts <= ``data.max_chars``; no val/test query that also
  appears in train (decontamination).
- ``trajectories``: unique (item, sample); non-empty prompt and completion; 1 <= n <= max_responses; ``order`` is a
  permutation of range(n); a correct trajectory parsed (status ok); completion <= max_chars.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grm.errors import UserError
from grm.files import JsonProblem, parse_json
from grm.schemas import validate_record
from grm.text_keys import comparison_key, visible

ITEM_SUITE = "preference_items"
TRAJECTORY_SUITE = "trajectories"
ROW_COLUMNS = ["split", "line", "id"]  # how failing rows are named
GX_TEMP_DOCS_LOGGER = "great_expectations.data_context.types.base"


class DataValidationError(UserError, ValueError):
    """A suite failed: ``failures`` holds (expectation, column, rows) and ``docs`` the Data Docs index. A user error
    (bad data): ``grm run`` reports it with exit code 2 and no traceback."""

    def __init__(self, suite: str, failures: list[dict[str, Any]], docs: str | None):
        self.suite = suite
        self.failures = failures
        self.docs = docs
        lines = [f"Great Expectations suite {suite!r} failed {len(failures)} expectation(s); nothing was trained:"]
        for f in failures:
            rows = ", ".join(f["rows"][:10]) + (f" ... (+{len(f['rows']) - 10} more)" if len(f["rows"]) > 10 else "")
            count = f"{f['unexpected_count']} bad row(s): " if f["unexpected_count"] else ""
            lines.append(f"  - {f['expectation']}({f['column']}): {count}{rows}")
        lines.append(f"Fix those rows (or the source/config) and rerun. Data Docs: {docs}")
        UserError.__init__(self, "\n".join(lines))


@dataclass
class ValidationSummary:
    """Outcome of one suite run (picklable, JSON-able)."""

    suite: str
    success: bool
    n_rows: int
    n_expectations: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    docs: str | None = None

    def metrics(self) -> dict[str, float]:
        return {
            f"validate/{self.suite}/success": float(self.success),
            f"validate/{self.suite}/rows": float(self.n_rows),
            f"validate/{self.suite}/failed_expectations": float(len(self.failures)),
        }


def _norm_query(text: str) -> str:
    return comparison_key(text).casefold()  # a zero-width character or a full-width letter must not hide a leak


def _query_text(query: Any) -> str:
    if isinstance(query, str):
        return query
    if isinstance(query, list) and query and isinstance(query[-1], dict):
        return str(query[-1].get("content", ""))
    return ""


def read_raw(path: str | Path) -> list[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, decoded record or None, JSON error or None) per non-blank line; never raises on bad rows."""
    out = []
    with Path(path).open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append((lineno, parse_json(line), None))
            except JsonProblem as exc:  # invalid JSON, a duplicate key, NaN, ...: the same rules as the loaders
                out.append((lineno, None, str(exc)))
    return out


def item_frame(split_files: Mapping[str, str | Path]):  # -> pandas.DataFrame
    """One row per JSONL line of every split, with the columns the item suite checks."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for split, path in split_files.items():
        for lineno, rec, err in read_raw(path):
            rec = rec if isinstance(rec, dict) else {}
            responses = rec.get("responses") if isinstance(rec.get("responses"), list) else []
            texts = [r if isinstance(r, str) else "" for r in responses]
            problems = [f"<json>: {err}"] if err else [f"{f}: {p}" for f, p in validate_record(rec)]
            n = len(texts)
            best, label = rec.get("best"), rec.get("label")
            ratings = rec.get("ratings")
            unique_best = True
            if isinstance(ratings, list) and n >= 2 and len(ratings) == n:
                try:
                    top = max(ratings)
                    unique_best = sum(r == top for r in ratings) == 1 and best in range(n) and ratings[best] == top
                except TypeError:
                    unique_best = False
            query = _query_text(rec.get("query"))
            rows.append(
                {
                    "split": split,
                    "line": lineno,
                    "id": rec.get("id") if isinstance(rec.get("id"), str) else None,
                    "schema_problem": "; ".join(problems) or None,
                    "query_chars": len(visible(query).strip()),
                    "query_key": _norm_query(query),
                    "n_responses": n,
                    "min_response_chars": min((len(visible(t).strip()) for t in texts), default=0),
                    "max_response_chars": max((len(t) for t in texts), default=0),
                    "best": best if isinstance(best, int) and not isinstance(best, bool) else None,
                    "label": label if isinstance(label, int) and not isinstance(label, bool) else None,
                    "has_target": (best is not None) if n >= 2 else (label is not None),
                    "unique_best": unique_best,
                }
            )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    train_keys = set(frame.loc[frame["split"] == "train", "query_key"])
    frame["shared_with_train"] = (frame["split"] != "train") & frame["query_key"].isin(train_keys)
    frame["best"] = frame["best"].astype("Int64")
    frame["label"] = frame["label"].astype("Int64")
    return frame


def trajectory_frame(records: Iterable[Mapping[str, Any]]):  # -> pandas.DataFrame
    """One row per sampled trajectory (``grm.training.rft.Trajectory.to_dict()`` records)."""
    import pandas as pd

    rows = []
    for i, rec in enumerate(records, start=1):
        n = rec.get("n") if isinstance(rec.get("n"), int) else 0
        order = rec.get("order") or []
        rows.append(
            {
                "split": "trajectories",
                "line": i,
                "id": f"{rec.get('id')}#{rec.get('sample')}",
                "n_responses": n,
                "prompt_chars": len(str(rec.get("prompt") or "").strip()),
                "completion_chars": len(str(rec.get("completion") or "").strip()),
                "order_ok": sorted(order) == list(range(n)),
                "correct_parsed": (not rec.get("correct")) or rec.get("status") == "ok",
            }
        )
    return pd.DataFrame(rows)


SPLITS = ("train", "val", "test")


def split_count_expectations(min_items: Any) -> list[Any]:
    """One row-count expectation per split: ``{split}.jsonl`` holds at least ``data.min_items.{split}`` rows."""
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    out = []
    for split in SPLITS:
        least = int(getattr(min_items, split))
        rule = f"data.min_items.{split} requires >= {least}; add rows or lower data.min_items.{split}"
        out.append(
            gx.expectations.ExpectTableRowCountToBeBetween(
                min_value=least, row_condition=Column("split") == split, meta={"split": split, "rule": rule}
            )
        )
    return out


def item_expectations(max_responses: int, max_chars: int, min_items: Any = None) -> list[Any]:
    """The ``preference_items`` suite (each expectation documents one rule); ``min_items`` (``DataMinItemsConfig``)
    adds the per-split row counts."""
    import great_expectations as gx

    e = gx.expectations
    counts = split_count_expectations(min_items) if min_items is not None else []
    return counts + [
        e.ExpectColumnValuesToNotBeNull(column="id"),
        e.ExpectColumnValuesToBeUnique(column="id"),
        e.ExpectColumnValuesToBeNull(column="schema_problem"),
        e.ExpectColumnValuesToBeBetween(column="query_chars", min_value=1, max_value=max_chars),
        e.ExpectColumnValuesToBeBetween(column="n_responses", min_value=1, max_value=max_responses),
        e.ExpectColumnValuesToBeBetween(column="min_response_chars", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="max_response_chars", max_value=max_chars),
        e.ExpectColumnValuesToBeInSet(column="has_target", value_set=[True]),
        e.ExpectColumnValuesToBeBetween(column="best", min_value=0, max_value=max_responses - 1),
        e.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="n_responses", column_B="best", ignore_row_if="either_value_is_missing"
        ),
        e.ExpectColumnValuesToBeInSet(column="label", value_set=[0, 1]),
        e.ExpectColumnValuesToBeInSet(column="unique_best", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="shared_with_train", value_set=[False]),
    ]


def trajectory_expectations(max_responses: int, max_chars: int) -> list[Any]:
    """The ``trajectories`` suite."""
    import great_expectations as gx

    e = gx.expectations
    return [
        e.ExpectColumnValuesToBeUnique(column="id"),
        e.ExpectColumnValuesToBeBetween(column="n_responses", min_value=1, max_value=max_responses),
        e.ExpectColumnValuesToBeBetween(column="prompt_chars", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="completion_chars", min_value=1, max_value=max_chars),
        e.ExpectColumnValuesToBeInSet(column="order_ok", value_set=[True]),
        e.ExpectColumnValuesToBeInSet(column="correct_parsed", value_set=[True]),
    ]


def _row_name(entry: Mapping[str, Any]) -> str:
    split, line, item_id = entry.get("split"), entry.get("line"), entry.get("id")
    where = f"{split}.jsonl:{int(line)}" if split != "trajectories" else f"trajectory {int(line)}"
    return f"{where} id={item_id}" if item_id is not None else where


def run_suite(frame, suite_name: str, expectations: Sequence[Any], docs_dir: str | Path) -> ValidationSummary:
    """Validate ``frame`` against ``expectations`` in an ephemeral GX context; Data Docs go to ``docs_dir``.

    Returns:
        The summary; failures name the expectation, the column and every failing row (split, line, id).
    """
    import great_expectations as gx

    # GX sets this logger to INFO at import and announces the throw-away folder of every ephemeral context's default
    # docs site ("Created temporary directory '/tmp/...' for ephemeral docs site"); our Data Docs go to docs_dir.
    logging.getLogger(GX_TEMP_DOCS_LOGGER).setLevel(logging.WARNING)
    docs_dir = Path(docs_dir).resolve()
    context = gx.get_context(mode="ephemeral")
    with contextlib.suppress(Exception):  # cosmetic only: quiet progress bars where GX accepts it
        context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    context.add_data_docs_site(
        site_name="grm",
        site_config={
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        },
    )
    batch = context.data_sources.add_pandas(suite_name).add_dataframe_asset(suite_name)
    batch_def = batch.add_batch_definition_whole_dataframe("all_rows")
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    for expectation in expectations:
        suite.add_expectation(expectation)
    vd = context.validation_definitions.add(gx.ValidationDefinition(name=suite_name, data=batch_def, suite=suite))
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite_name}_checkpoint",
            validation_definitions=[vd],
            actions=[gx.checkpoint.UpdateDataDocsAction(name="data_docs")],
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ROW_COLUMNS},
        )
    )
    result = checkpoint.run(batch_parameters={"dataframe": frame})
    failures = []
    n_exp = 0
    for vr in result.run_results.values():
        for r in vr.results:
            n_exp += 1
            if r.success:
                continue
            cfg = r.expectation_config
            res = r.result or {}
            rows = [_row_name(x) for x in res.get("unexpected_index_list") or [] if isinstance(x, Mapping)]
            meta = cfg.meta or {}
            if "split" in meta:  # a per-split row count: name the file, its count and the config key
                column = f"split={meta['split']}"
                rows = [f"{meta['split']}.jsonl has {res.get('observed_value')} row(s); {meta['rule']}"]
            else:
                column = cfg.kwargs.get("column") or f"{cfg.kwargs.get('column_A')},{cfg.kwargs.get('column_B')}"
            failures.append(
                {
                    "expectation": cfg.type,
                    "column": column,
                    "unexpected_count": int(res.get("unexpected_count") or len(rows)),
                    "rows": rows,
                    "values": [str(v) for v in (res.get("partial_unexpected_list") or [])[:20]],
                }
            )
    index = docs_dir / "index.html"
    return ValidationSummary(
        suite_name, bool(result.success), len(frame), n_exp, failures, str(index) if index.exists() else None
    )


def validate_items(
    split_files: Mapping[str, str | Path], data_cfg: Any, docs_dir: str | Path, min_items: Any = None
) -> ValidationSummary:
    """Run the ``preference_items`` suite on the split files (``data_cfg``: ``max_responses``/``max_chars``;
    ``min_items``: ``DataMinItemsConfig``, the fewest rows per split, or None for no count rule)."""
    frame = item_frame(split_files)
    if frame.empty:
        files = ", ".join(f"{s}.jsonl" for s in split_files)
        raise DataValidationError(ITEM_SUITE, [{"expectation": "non-empty data", "column": "-", "unexpected_count": 0,
                                                "rows": [f"{files}: no rows at all"]}], None)  # fmt: skip
    expectations = item_expectations(data_cfg.max_responses, data_cfg.max_chars, min_items)
    return run_suite(frame, ITEM_SUITE, expectations, docs_dir)


def validate_trajectories(
    records: Iterable[Mapping[str, Any]], data_cfg: Any, docs_dir: str | Path
) -> ValidationSummary:
    """Run the ``trajectories`` suite on sampled trajectories."""
    frame = trajectory_frame(records)
    return run_suite(
        frame, TRAJECTORY_SUITE, trajectory_expectations(data_cfg.max_responses, data_cfg.max_chars), docs_dir
    )
