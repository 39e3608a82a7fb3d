"""One model-spec parser (``grm.sampling.spec``) and one registry resolution for the pipeline and serve/score/eval."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from grm.sampling import build_sampler
from grm.sampling.spec import (
    FOLDER,
    HTTP,
    REGISTRY,
    VLLM,
    WORLD_TEACHER,
    ModelSpec,
    SamplerSpecError,
    is_world_teacher,
    parse_model_spec,
)


@pytest.mark.parametrize(
    ("text", "kind", "location", "options"),
    [
        ("http://127.0.0.1:8000", HTTP, "http://127.0.0.1:8000", {}),
        (" https://api.example.com/v1 ", HTTP, "https://api.example.com/v1", {}),
        ("vllm:/models/grm-7b", VLLM, "/models/grm-7b", {}),
        ("world-teacher", WORLD_TEACHER, "", {}),
        ("world-teacher:0.25", WORLD_TEACHER, "", {"error_rate": 0.25}),
        ("champion", REGISTRY, "champion", {"alias": "champion"}),
        ("challenger", REGISTRY, "challenger", {"alias": "challenger"}),
        ("models:/my-grm@champion", REGISTRY, "models:/my-grm@champion", {"name": "my-grm", "alias": "champion"}),
        ("models:/my-grm/3", REGISTRY, "models:/my-grm/3", {}),
        ("runs:/abc/model", REGISTRY, "runs:/abc/model", {}),
        ("outputs/run/model", FOLDER, "outputs/run/model", {}),
        ("~/models/grm", FOLDER, "~/models/grm", {}),
    ],
)
def test_each_spec_form_parses_to_its_kind(text, kind, location, options):
    spec = parse_model_spec(text)
    assert (spec.kind, spec.location, dict(spec.options)) == (kind, location, options)
    assert parse_model_spec(spec) is spec  # a parsed spec passes through


def test_an_existing_bare_folder_name_is_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel").mkdir()
    assert parse_model_spec("mymodel") == ModelSpec(FOLDER, "mymodel")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("gpt-five", "Unknown sampler spec 'gpt-five'"),
        ("", "an empty model spec"),
        ("vllm:", "vllm: needs a model path"),
        ("world-teacher:lots", "needs a number in [0, 1], got 'lots'"),
        ("world-teacher:1.5", "needs a number in [0, 1], got '1.5'"),
        ("models:/@champion", "needs both a name and an alias"),
        ("models:/grm@", "needs both a name and an alias"),
        ("models:/", "needs a model name"),
    ],
)
def test_a_bad_spec_names_the_value_the_field_and_the_accepted_forms(text, says):
    with pytest.raises(SamplerSpecError) as err:
        parse_model_spec(text, field_name="--model")
    message = str(err.value)
    assert message.startswith("--model: ") and says in message
    for form in ("http://HOST:PORT", "vllm:PATH", "world-teacher", "champion", "local model directory"):
        assert form in message


def test_registry_uri_and_world_teacher_checks():
    assert parse_model_spec("champion").registry_uri("grm") == "models:/grm@champion"
    assert parse_model_spec("models:/x@challenger").registry_uri("grm") == "models:/x@challenger"
    with pytest.raises(ValueError, match="not a registry one"):
        parse_model_spec("world-teacher").registry_uri("grm")
    assert is_world_teacher("world-teacher:0.1") and is_world_teacher(parse_model_spec("world-teacher"))
    assert not is_world_teacher("outputs/world-teacher")


def test_build_sampler_refuses_an_unresolved_registry_alias():
    with pytest.raises(SamplerSpecError, match="(?s)'champion' names a model in the MLflow registry.*fix: pass it"):
        build_sampler("champion")


def test_build_sampler_takes_a_parsed_spec():
    teacher = build_sampler(parse_model_spec("world-teacher:0.3"))
    assert type(teacher).__name__ == "TeacherSampler"


# ---- one registry path: under the lock, after repair, then the exact version ---------------------------------


class RecordingTracker:
    """A tracker that records the order of registry calls (the real one: tests/integration/test_mlflow_*)."""

    uri = "sqlite:///fake.db"

    def __init__(self, versions: dict[str, str]):
        self.versions = versions
        self.events: list[str] = []

    @contextlib.contextmanager
    def registry_lock(self):
        self.events.append("lock")
        yield
        self.events.append("unlock")

    def repair_promotions(self, registry):
        self.events.append(f"repair {registry.model_name}/{registry.meta_model_name}")
        return ["rolled back v9"]

    def alias_version(self, name, alias):
        self.events.append(f"alias {name}@{alias}")
        v = self.versions.get(name)
        return None if v is None else SimpleNamespace(name=name, version=v, run_id=None)

    def download(self, uri, dst):
        self.events.append(f"download {uri}")
        (Path(dst) / "config.json").write_text(uri)
        return Path(dst)


def test_fetch_registered_reads_aliases_under_the_lock_after_repair_and_downloads_that_version(tmp_path):
    from tasks.model_fetch import RegistryNames, fetch_registered

    tracker = RecordingTracker({"grm": "3", "grm-meta-rm": "2"})
    folder, version, meta = fetch_registered(tracker, RegistryNames(), "champion", tmp_path, with_meta=True)
    assert tracker.events == [
        "lock",
        "repair grm/grm-meta-rm",
        "alias grm@champion",
        "alias grm-meta-rm@champion",
        "unlock",
        "download models:/grm-meta-rm/2",
        "download models:/grm/3",
    ]
    assert Path(folder) == tmp_path / "grm-v3" and version.version == "3" and Path(meta) == tmp_path / "grm-meta-rm-v2"
    assert fetch_registered(tracker, RegistryNames(), "challenger", tmp_path) == (folder, version, None)
    assert "download models:/grm/3" not in tracker.events[-2:]  # already there: not downloaded again
    assert fetch_registered(RecordingTracker({}), RegistryNames(), "champion", tmp_path) is None


@pytest.fixture()
def spy_fetch(monkeypatch, tmp_path):
    """Replace the one registry path by a spy; a caller that resolves ``champion`` any other way fails the test."""
    import tasks.model_fetch

    calls = []

    def fetch(tracker, registry, model, dest, with_meta=False, warn=None):
        calls.append((parse_model_spec(model).location, registry.model_name, Path(dest)))
        return "world-teacher", SimpleNamespace(name="grm", version="1", run_id=None), None

    monkeypatch.setattr(tasks.model_fetch, "fetch_registered", fetch)
    monkeypatch.chdir(tmp_path)
    return calls


def test_serve_resolves_champion_through_the_one_registry_path(spy_fetch, monkeypatch, tmp_path):
    import grm.serving
    from grm_cli.serve import serve

    served = {}
    monkeypatch.setattr(grm.serving, "serve_command", lambda model, **kw: served.update(model=model, **kw))
    serve(model="champion", project_dir=str(tmp_path), registry_model_name="mine")
    assert spy_fetch == [("champion", "mine", tmp_path / "artifacts" / "models")]
    assert served["model"] == "world-teacher" and served["served_model_name"] == "champion"


def test_score_resolves_champion_through_the_one_registry_path(spy_fetch, tmp_path):
    from typer.testing import CliRunner

    from grm.schemas import write_items
    from grm.world.generator import WorldConfig, generate_world
    from grm_cli.app import app

    write_items(tmp_path / "items.jsonl", generate_world(WorldConfig())["test"][:2])
    args = ["score", "--model", "champion", "--input", "items.jsonl", "--output", "out.jsonl", "--k", "1"]
    result = CliRunner().invoke(app, [*args, "--template", "compact"])
    assert result.exit_code == 0, result.output
    assert spy_fetch == [("champion", "grm", Path("artifacts/models"))]
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 2


def test_eval_resolves_champion_through_the_one_registry_path(spy_fetch):
    from grm_cli.eval import _build_sampler

    sampler = _build_sampler("models:/other@challenger", shard_size=4)
    assert spy_fetch == [("models:/other@challenger", "grm", Path("artifacts/models"))]
    assert sampler.spec.spec == "world-teacher"


def test_the_pipeline_resolves_champion_through_the_one_registry_path(spy_fetch, tmp_path):
    from tasks import registry

    ctx = SimpleNamespace(
        tracker=SimpleNamespace(uri="sqlite:///x.db"),
        cfg=SimpleNamespace(registry=SimpleNamespace(model_name="grm", meta_model_name="grm-meta-rm")),
        store_root=str(tmp_path / "artifacts" / "stages"),
    )
    assert registry.resolve_model.fn(ctx, "champion") == "world-teacher"
    assert registry.resolve_model.fn(ctx, "teacher") == "teacher"
    assert spy_fetch == [("champion", "grm", tmp_path / "artifacts" / "models")]


def test_a_bad_model_spec_exits_2_naming_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from grm.schemas import write_items
    from grm.world.generator import WorldConfig, generate_world
    from grm_cli.app import app

    monkeypatch.chdir(tmp_path)
    write_items(tmp_path / "items.jsonl", generate_world(WorldConfig())["test"][:1])
    args = ["score", "--model", "vllm:", "--input", "items.jsonl", "--output", "out.jsonl"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "--model: 'vllm:': vllm: needs a model path" in result.output
