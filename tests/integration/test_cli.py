"""The grm CLI end to end on the embedded world with the programmatic teacher (no model needed)."""

import json

from typer.testing import CliRunner

from grm.schemas import read_items
from grm_cli.app import app

runner = CliRunner()


def test_world_then_score_writes_per_item_judgements(tmp_path):
    out = tmp_path / "world"
    sets = ["--set", "world.n_train=20", "--set", "world.n_val=5", "--set", "world.n_test=30"]
    res = runner.invoke(app, ["world", "--output", str(out), *sets])
    assert res.exit_code == 0, res.output
    items = read_items(out / "test.jsonl")
    assert len(items) == 30
    res = runner.invoke(
        app,
        [
            "score",
            "--model", "world-teacher",
            "--input", str(out / "test.jsonl"),
            "--output", str(tmp_path / "scored.jsonl"),
            "--k", "4",
            "--template", "compact",
            "--max-new-tokens", "64",
        ],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [it.id for it in items]
    for item, rec in zip(items, records, strict=True):
        assert len(rec["samples"]) == 4
        for s in rec["samples"]:
            assert sorted(s["order"]) == list(range(item.n))
            assert s["status"] == "ok" and len(s["scores"]) == item.n and "\\boxed{" in s["text"]
        # final scores are the sums of the per-sample scores in the original order
        sums = [sum(s["scores"][i] for s in rec["samples"]) for i in range(item.n)]
        assert rec["final_scores"] == sums
        if item.n >= 2:  # for a single response, "predicted" is the 0/1 verdict, not an index
            assert rec["final_scores"][rec["predicted"]] == max(sums)


def test_world_is_deterministic_in_its_seed(tmp_path):
    sets = ["--set", "world.n_train=10", "--set", "world.n_val=2", "--set", "world.n_test=5"]
    for name in ("a", "b"):
        assert runner.invoke(app, ["world", "--output", str(tmp_path / name), *sets]).exit_code == 0
    assert (tmp_path / "a" / "train.jsonl").read_text() == (tmp_path / "b" / "train.jsonl").read_text()
    assert (
        runner.invoke(app, ["world", "--output", str(tmp_path / "c"), *sets, "--set", "world.seed=1"]).exit_code == 0
    )
    assert (tmp_path / "a" / "train.jsonl").read_text() != (tmp_path / "c" / "train.jsonl").read_text()


def test_bad_input_file_reports_file_line_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "query": "q", "responses": ["x", "y"], "best": 5}\n')
    res = runner.invoke(
        app, ["score", "--model", "world-teacher", "--input", str(bad), "--output", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert f"{bad}:1: best:" in res.stderr and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()
