"""The GX item suite on real files: a clean world passes; a corrupted fixture fails naming rows + expectations."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest

from grm.schemas import write_items
from grm.world import WorldConfig, generate_world
from tasks.validation import DataValidationError, validate_items

pytestmark = pytest.mark.slow  # GX imports in ~5-10 s


@dataclass(frozen=True)
class Limits:
    max_responses: int = 4
    max_chars: int = 200


def test_item_suite_names_failing_rows_and_writes_data_docs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    splits = generate_world(WorldConfig(n_train=20, n_val=4, n_test=10))
    files = {s: write_items(tmp_path / f"{s}.jsonl", items) for s, items in splits.items()}
    ok = validate_items(files, Limits(), tmp_path / "docs_ok")
    assert ok.success and ok.n_rows == 34 and (tmp_path / "docs_ok" / "index.html").exists()
    assert "for ephemeral docs site" not in caplog.text  # GX's temp-folder line: our docs go to docs_dir

    rows = [json.loads(line) for line in files["test"].read_text().splitlines()]
    rows[1]["query"] = splits["train"][0].query  # leaked train query (line 2)
    rows[2]["id"] = rows[0]["id"]  # duplicate id (line 3)
    rows[3].update(responses=["x" * 500], label=1)  # a single, too long response (line 4)
    rows[3].pop("best", None)
    rows[3].pop("ratings", None)
    files["test"].write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    bad = validate_items(files, Limits(), tmp_path / "docs_bad")
    assert not bad.success
    by_column = {f["column"]: f for f in bad.failures}
    assert "test.jsonl:2" in " ".join(by_column["shared_with_train"]["rows"])
    assert any("test.jsonl:3" in r for r in by_column["id"]["rows"])
    assert any("test.jsonl:4" in r for r in by_column["max_response_chars"]["rows"])
    message = str(DataValidationError(bad.suite, bad.failures, bad.docs))
    assert "expect_column_values_to_be_unique(id)" in message and "test.jsonl:2" in message
    assert Path(bad.docs).exists()
