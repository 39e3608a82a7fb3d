"""grm.serving.scoring / engine / metrics without a server: results, MetaRM@k voters, round-robin scheduling and
the Prometheus text."""

from __future__ import annotations

import pytest

from grm.method.judging import SampleJudgement
from grm.serving.engine import Engine, EngineSettings
from grm.serving.metrics import Metrics
from grm.serving.scoring import Job, ScoreSettings, item_result, make_item, split_judgement

QUERY = "3 + 18 ?"


def _sample(scores, meta=None, order=(0, 1)):
    status = "ok" if scores is not None else "missing"
    return SampleJudgement(list(order), "Specific Criteria: a\nAnalysis: b\nScores: x", scores, status, meta)


def test_item_result_voting_and_metarm():
    item = make_item(QUERY, ["maybe 31", "21"])
    samples = [_sample([8, 8], 0.2), _sample(None), _sample([5, 9], 0.9), _sample([7, 10], 0.8)]
    voting = item_result(item, "a", samples, ScoreSettings(4, None, 1.0, 0, 8))
    assert voting["votes"] == [20, 27] and voting["scores"] == [20 / 3, 9.0] and voting["best"] == 1
    assert voting["n_parsed"] == 3 and voting["parse_failures"] == {"count": 1, "reasons": {"missing": 1}}
    meta = item_result(item, "a", samples, ScoreSettings(4, 2, 1.0, 0, 8, return_samples=True))
    assert meta["votes"] == [12, 19] and meta["scores"] == [6.0, 9.5] and meta["n_voted"] == 2
    assert [s["voted"] for s in meta["samples"]] == [False, False, True, True]
    none = item_result(item, None, [_sample(None)], ScoreSettings(1, None, 1.0, 0, 8))
    assert none["scores"] is None and none["best"] is None


def test_split_judgement():
    assert split_judgement("Specific Criteria: w 7\nAnalysis: R1 ok\nScores: \\boxed{9}") == ("w 7", "R1 ok")
    assert split_judgement("no markers") == (None, "no markers")


def test_shuffles_depend_on_content_not_on_caller_ids():
    a = Job([make_item(QUERY, ["x", "y"])], ["id1"], ScoreSettings(4, None, 1.0, 0, 8), "compact")
    b = Job([make_item(QUERY, ["x", "y"])], ["id2"], ScoreSettings(4, None, 1.0, 0, 8), "compact")
    assert [u.prompt for u in a.units] == [u.prompt for u in b.units]
    single = Job([make_item(QUERY, ["x"])], [None], ScoreSettings(4, None, 1.0, 0, 8), "compact")
    assert [u.count for u in single.units] == [4]  # one prompt, k samples: one shared prefill


class _Entry:
    def __init__(self, job):
        self.job = job


def test_round_robin_takes_one_unit_per_request_per_round():
    engine = Engine(object(), template="compact", settings=EngineSettings(max_batch_size=6))
    items = [make_item(f"{i} + 1 ?", ["a", "b"]) for i in range(8)]
    big = Job(items, [None] * 8, ScoreSettings(4, None, 1.0, 0, 8), "compact")
    small = Job([make_item("1 + 1 ?", ["2", "3"])], [None], ScoreSettings(2, None, 1.0, 0, 8), "compact")
    engine._entries = [_Entry(big), _Entry(small)]
    first = engine._take()
    assert sum(u.count for u in first) <= 6 and {u.job for u in first} == {big, small}
    assert small.next_unit == len(small.units)  # the small request is done in the first cycle
    off = Engine(object(), template="compact", settings=EngineSettings(batching=False))
    off._entries = [_Entry(Job([make_item(QUERY, ["a", "b"])], [None], ScoreSettings(3, None, 1.0, 0, 8), "compact"))]
    assert sum(u.count for u in off._take()) == 3  # the whole request in one cycle


def test_metrics_text_parses_as_prometheus():
    parser = pytest.importorskip("prometheus_client.parser")
    m = Metrics()
    m.request("/v1/score", 200, 0.02)
    m.request("/v1/score", 400, 0.001)
    m.batch(12, 3)
    m.parsed(10, 2)
    m.gauges["grm_queue_samples"] = lambda: 5.0
    families = {f.name: f for f in parser.text_string_to_metric_families(m.render())}
    assert families["grm_request_seconds"].type == "histogram"
    assert families["grm_parse_failure_rate"].samples[0].value == pytest.approx(0.2)
    assert families["grm_queue_samples"].samples[0].value == 5.0
    counts = {s.labels["status"]: s.value for s in families["grm_requests"].samples}
    assert counts == {"200": 1.0, "400": 1.0}
