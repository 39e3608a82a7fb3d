"""The registry gate on the same items, through the real stages and a real SQLite registry: the champion is
downloaded from the registry, evaluated on the challenger's test split as stage ``eval.champion`` (reused on the
next gate), and promotion follows the paired gap, not the raw score against a stored one.

The judges are scripted samplers chosen by a ``judge.json`` in each model folder (which test items the model gets
wrong), so that "worse on the same items, higher raw score than the champion's stored one" is built on purpose;
everything else (eval stage, keys, registry download, bootstrap, tags) is the code the pipeline runs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from grm.plan import load_pipeline
from grm.schemas import Item, write_items
from grm.training import spct
from tasks import champion, evaluation, mlflow_store, registry, tracking
from tasks.engine import stages, workers
from tasks.engine.runtime import RunContext
from tasks.engine.stages import StageResult, file_md5
from tests.helpers.scripted import ScriptedSampler, shown_responses

pytestmark = pytest.mark.slow  # an MLflow SQLite store (~5 s of migrations) and eight eval stages

TINY = Path(__file__).resolve().parents[2] / "configs" / "tiny.yaml"
METRIC = "eval/world/rl/voting_k4/accuracy"


def items(prefix: str, n: int) -> list[Item]:
    return [
        Item(f"{prefix}{i}", f"question {prefix}{i}", (f"good {prefix}{i}", f"bad {prefix}{i}"), 0) for i in range(n)
    ]


def judge(model_dir: str | Path, sampling: object) -> ScriptedSampler:
    """The scripted GRM of a model folder: wrong on the items its ``judge.json`` lists, right elsewhere."""
    wrong = set(json.loads((Path(model_dir) / "judge.json").read_text())["wrong"])

    def rule(prompt: str, j: int) -> list[int]:
        shown = shown_responses(prompt)
        item = shown[0].split()[1]
        return [10 if r.startswith("good") != (item in wrong) else 1 for r in shown]

    return ScriptedSampler(rule)


def model(root: Path, name: str, wrong: list[str]) -> StageResult:
    """A "trained GRM" stage result whose model folder scores as scripted."""
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "judge.json").write_text(json.dumps({"wrong": wrong}))
    return StageResult("rl.train", f"key-{name}", str(folder), {"model": "."})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(spct, "student_sampler", judge)
    workers.configure(1)
    cfg = load_pipeline([TINY], ["registry.pyfunc_model_name=null", "eval.limit=null"])
    assert cfg.registry.gate_metric == METRIC
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(tmp_path), "gate")
    (tmp_path / "data").mkdir()
    return SimpleNamespace(root=tmp_path, cfg=cfg, tracker=tracker)


def run(
    p: SimpleNamespace, test_items: list[Item], grm: StageResult, meanwhile: Callable[[], object] | None = None
) -> tuple[dict, StageResult | None, str]:
    """One pipeline's gate part on ``test_items``: eval.rl, eval.champion, registry.gate (a parent run of its own);
    ``meanwhile`` runs between the champion's evaluation and the gate (another run's gate, say)."""
    staged = p.root / "data" / "test.jsonl"
    write_items(staged, test_items)
    md5 = file_md5(staged)
    version = p.root / "datasets" / md5  # a content-addressed copy, as data.version makes one
    version.mkdir(parents=True, exist_ok=True)
    staged.replace(version / "test.jsonl")
    dv = SimpleNamespace(files={"test.jsonl": md5}, dvc_md5=f"dir-{md5}", local_dir=str(version))
    parent = p.tracker.start_run("pipeline")
    ctx = RunContext("spct_pipeline", str(p.root), p.cfg, p.tracker, parent, str(p.root / "artifacts" / "stages"),
                     stages.code_version())  # fmt: skip
    mine = evaluation.evaluate_model.fn(ctx, "rl", grm.output("model"), dv)
    champ = champion.evaluate_champion.fn(ctx, grm, None, dv)
    if meanwhile is not None:
        meanwhile()
    decision = registry.gate.fn(ctx, grm, None, [mine], dv, champ)
    p.tracker.end_run(parent)
    return decision, champ, parent


def test_a_challenger_worse_on_the_same_items_stays_challenger_though_its_raw_score_beats_the_stored_one(
    project: SimpleNamespace,
) -> None:
    hard, new = items("h", 20), items("n", 24)
    champ = model(project.root / "m", "champ", [f"h{i}" for i in range(14)] + [f"n{i}" for i in range(8)])
    first, skipped, _ = run(project, hard, champ)
    assert first["alias"] == "champion" and skipped is None  # no champion yet: nothing to evaluate
    assert first["new_value"] == pytest.approx(6 / 20)  # its stored score, from the hard split

    worse = model(project.root / "m", "worse", [f"n{i}" for i in range(14)])  # 10/24 right; champion: 16/24
    decision, champ_eval, parent = run(project, new, worse)
    assert (
        decision["new_value"] == pytest.approx(10 / 24) and decision["new_value"] > first["new_value"]
    )  # raw > stored
    assert champ_eval is not None and champ_eval.stage == "eval.champion" and not champ_eval.cached
    assert champ_eval.metrics["eval/world/champion/voting_k4/accuracy"] == pytest.approx(16 / 24)
    assert decision["alias"] == "challenger" and decision["comparison"] == "paired"
    assert decision["gap"] == pytest.approx(-6 / 24) and decision["ci_high"] < 0 and decision["n_items"] == 24
    assert decision["champion_version"] == first["version"] and decision["champion_value"] == pytest.approx(16 / 24)
    assert decision["test_split_changed"] is True
    assert decision["champion_test_md5"] == file_md5_of(hard, project.root) != decision["test_md5"]
    assert "the test split changed since v1 was registered" in decision["reason"]

    client = project.tracker.client()
    name = project.cfg.registry.model_name
    new_tags = client.get_model_version(name, decision["version"]).tags
    assert new_tags["grm.gate.gap"] == str(decision["gap"]) and new_tags["grm.gate.champion_version"] == "1"
    assert new_tags["grm.gate.n_items"] == "24" and new_tags["grm.gate.test_md5"] == decision["test_md5"]
    champ_tags = client.get_model_version(name, first["version"]).tags
    v = decision["version"]
    assert champ_tags[f"grm.gate.vs_v{v}.ci_low"] == str(decision["ci_low"])
    assert champ_tags[f"grm.gate.vs_v{v}.test_split_changed"] == "True"
    run_tags = client.get_run(parent).data.tags
    assert run_tags["grm.gate.ci_high"] == str(decision["ci_high"]) and run_tags["grm.registry.alias"] == "challenger"

    better = model(project.root / "m", "better", [])  # right on every new item: +8 items over the champion
    promoted, again, _ = run(project, new, better)
    assert again is not None and again.cached and again.key == champ_eval.key  # same champion, same split: reused
    assert promoted["alias"] == "champion" and promoted["gap"] == pytest.approx(8 / 24) and promoted["ci_low"] > 0
    assert str(project.tracker.alias_version(name, "champion").version) == promoted["version"]


def file_md5_of(test_items: list[Item], root: Path) -> str:
    path = root / "md5-probe.jsonl"
    write_items(path, test_items)
    return file_md5(path)


def test_an_unchanged_run_registers_nothing_and_links_the_earlier_run(project: SimpleNamespace) -> None:
    split = items("n", 12)
    grm = model(project.root / "m", "same", [])
    first, _, first_run = run(project, split, grm)
    name = project.cfg.registry.model_name
    count = len(project.tracker.client().search_model_versions(f"name='{name}'"))
    second, champ_eval, parent = run(project, split, grm)  # same stage keys, same data version
    assert champ_eval is None  # the champion is this very model: not evaluated again
    assert second["noop"] is True and second["alias"] == "champion" and second["version"] == first["version"]
    assert second["same_as"]["run_id"] == first_run and second["same_as"]["version"] == first["version"]
    assert first_run in second["reason"] and "nothing registered" in second["reason"]
    assert len(project.tracker.client().search_model_versions(f"name='{name}'")) == count
    client = project.tracker.client()
    assert client.get_run(parent).data.tags[tracking.NOOP_TAG] == first_run
    assert not [a.path for a in client.list_artifacts(parent) if a.path.startswith("model-")]  # no weights logged


def test_a_benchmark_gate_evaluates_the_champion_on_the_same_benchmark_items(tmp_path: Path) -> None:
    from grm.training import spct as real_spct

    workers.configure(1)
    metric = "eval/realmistake/rl/greedy_k1/accuracy"
    overrides = ["registry.pyfunc_model_name=null", "eval.benchmarks=[realmistake]", "eval.benchmark_limit=3",
                 f"registry.gate_metric={metric}", "meta_rm.enabled=false"]  # fmt: skip
    cfg = load_pipeline([TINY], overrides)
    base = real_spct.build_base_model("embedded", cfg.model.tiny, cfg.world, tmp_path / "base", seed=0)
    tracker = tracking.Tracker(mlflow_store.default_tracking_uri(tmp_path), "gate")
    dv = SimpleNamespace(files={"test.jsonl": "t" * 32}, dvc_md5="d.dir")
    decisions, champs = [], []
    for key in ("first", "second"):  # the same weights under two keys: the gap is 0 on the same items
        grm = StageResult("rl.train", key, str(base.parent), {"model": base.name})
        parent = tracker.start_run("pipeline")
        ctx = RunContext("spct_pipeline", str(tmp_path), cfg, tracker, parent, str(tmp_path / "artifacts" / "stages"),
                         stages.code_version())  # fmt: skip
        from tasks import benchmarks

        mine = benchmarks.benchmark_model.fn(ctx, "realmistake", "rl", grm, None)
        champs.append(champion.evaluate_champion.fn(ctx, grm, None, dv))
        decisions.append(registry.gate.fn(ctx, grm, None, [mine], dv, champs[-1]))
        tracker.end_run(parent)
    assert champs[0] is None and decisions[0]["alias"] == "champion"
    assert champs[1] is not None and champs[1].stage == "bench.realmistake.champion"
    second = decisions[1]
    assert second["alias"] == "challenger" and second["comparison"] == "paired"
    assert second["n_items"] >= 1 and second["gap"] == 0.0


def test_a_champion_registered_by_another_run_meanwhile_is_not_beaten_unmeasured(project: SimpleNamespace) -> None:
    """Two runs at once: run B measured "no champion", then run A's gate made A champion before B's gate. B scores
    higher than A's stored value, but A was never measured on B's items: B is registered as challenger (not
    promoted on a stored value, and the run does not fail)."""
    a = model(project.root / "m", "a", [f"a{i}" for i in range(12)])  # 12/24 right
    b = model(project.root / "m", "b", [])  # every item right
    first: dict = {}

    def other_run() -> None:
        first.update(run(project, items("a", 24), a)[0])

    decision, champ_eval, _ = run(project, items("b", 24), b, meanwhile=other_run)
    assert first["alias"] == "champion" and champ_eval is None  # B evaluated before any champion existed
    assert decision["alias"] == "challenger" and decision["champion_version"] == first["version"]
    assert decision["new_value"] > first["new_value"]  # a higher raw score, yet not promoted
    assert "registered by another run while this run ran" in decision["reason"]
    assert decision["comparison"] != "paired"
