"""The frames the GX suites check: every rule maps to a column, and bad rows keep their file line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tasks.validation import item_frame, trajectory_frame


def _write(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_item_frame_flags_each_problem_on_its_line(tmp_path: Path) -> None:
    good = {"id": "a", "query": "capital of X ?", "responses": ["A .", "B ."], "best": 0}
    train = _write(tmp_path / "train.jsonl", [good, {**good, "id": "b", "query": "shared q"}])
    test = _write(
        tmp_path / "test.jsonl",
        [
            {**good, "id": "c", "query": "Shared  Q"},  # same query as train line 2 (case/space-insensitive)
            {**good, "id": "d", "query": "q4", "responses": ["x", "y", "z", "w", "v"], "best": 4},  # n = 5
            {**good, "id": "e", "query": "q5", "ratings": [3, 3]},  # tied best
            "{not json",
        ],
    )
    frame = item_frame({"train": train, "test": test}).set_index(["split", "line"])
    assert bool(frame.loc[("test", 1), "shared_with_train"]) is True
    assert bool(frame.loc[("train", 2), "shared_with_train"]) is False
    assert frame.loc[("test", 2), "n_responses"] == 5
    assert bool(frame.loc[("test", 3), "unique_best"]) is False
    assert "invalid JSON" in frame.loc[("test", 4), "schema_problem"]
    assert pd.isna(frame.loc[("train", 1), "schema_problem"])


def test_trajectory_frame_checks_order_and_correct_parsed() -> None:
    rec = {"id": "a", "sample": 0, "prompt": "p", "completion": "c", "correct": True, "status": "ok", "order": [1, 0]}
    frame = trajectory_frame([{**rec, "n": 2}, {**rec, "sample": 1, "n": 3, "status": "missing"}])
    assert frame["order_ok"].tolist() == [True, False]
    assert frame["correct_parsed"].tolist() == [True, False]
    assert frame["id"].tolist() == ["a#0", "a#1"]
