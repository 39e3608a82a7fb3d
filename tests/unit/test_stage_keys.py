"""Stage keys are exactly what a build reads, generated from the config dataclasses (no hand list of fields).

For every registered stage, every leaf field of ``PipelineConfig`` (perturbed by type) and three base configs (the
embedded defaults; local folders for data, base model, teacher and meta-RM backbone; an HTTP teacher): the stage's
key changes, or the stage's build provably receives the same thing (equal slice, equal file contents). A build can
read nothing else: it is a module-level function of ``(slice, BuildContext)`` and neither holds a config.
File inputs count too: changing a declared file's content (or creating an absent optional one), an upstream key, or
a source file in the stage's import closure (``tasks.engine.stage_code``) changes the key.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import shutil
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grm.ablations import ABLATIONS
from grm.config import ConfigError, PipelineConfig, from_dict, to_dict
from tasks.engine.runtime import RunContext
from tasks.engine.stage_code import (
    STAGE_MODULES,
    files_hash,
    import_closure,
    package_roots,
    stage_code,
    stage_modules,
)
from tasks.engine.stages import (
    BuildContext,
    Skip,
    Stage,
    StageOutput,
    StagePlan,
    StageResult,
    code_hash,
    code_version,
    load_stages,
    plan,
)

REGISTRY = load_stages()  # every module of STAGE_MODULES: the one list the fork server preloads too
BASES = ("defaults", "folders", "http_teacher")
STAGES = sorted(REGISTRY)
FORBIDDEN = (PipelineConfig, RunContext)


# --- the config's leaves and their perturbations ------------------------------------------------------------------


def leaves(cls: type, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, annotation) of every non-dataclass field, recursing through dataclass-typed fields."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from leaves(tp, (*prefix, f.name))
        else:
            yield (*prefix, f.name), tp


def example(tp: Any) -> Any:
    """A non-None value of annotation ``tp``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return args[0]
    if origin in (tuple, list):
        return (example(args[0]),) if args else ()
    return {bool: True, int: 1, float: 1.5, str: "x"}[tp]


def perturbations(value: Any, tp: Any) -> list[Any]:
    """Changed values of a field, tried in order until the config accepts one: int+1 (then *2, -1), float*2+1 (then
    /2), bool flipped, str+suffix, another Literal, a tuple with one more element (then one fewer), Optional
    None <-> a value."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        assert len(inner) == 1, f"unsupported union {tp}"
        if value is None:
            return [example(inner[0])]
        return [None, *perturbations(value, inner[0])]
    if origin is typing.Literal:
        return [a for a in args if a != value][:1]
    if origin in (tuple, list) and len(args) == 2 and args[1] is Ellipsis:
        more = (*value, (max(value) + 1) if value and isinstance(value[0], int) else example(args[0]))
        return [more] + ([tuple(value[:-1])] if len(value) > 1 else [])
    if origin is tuple:  # fixed length (mixture weights): the same values, rotated
        return [v for v in [(*value[1:], value[0]), tuple(reversed(value))] if v != tuple(value)]
    if tp is bool:
        return [not value]
    if tp is int:
        return [value + 1, value * 2, value - 1]
    if tp is float:
        return [value * 2 + 1, value / 2]
    if tp is str:
        return [value + "_x"]
    raise AssertionError(f"no perturbation for annotation {tp!r}")


def replaced(cfg: PipelineConfig, path: tuple[str, ...], value: Any) -> PipelineConfig | str:
    """``cfg`` with ``path`` set to ``value`` through the strict loader, or the config's error message."""
    data = to_dict(cfg)
    node = data
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = list(value) if isinstance(value, tuple) else value
    try:
        return from_dict(PipelineConfig, data)
    except (ConfigError, ValueError) as exc:
        return str(exc)


def offered(message: str) -> list[Any]:
    """The values a config error offers as the fix (``use one of ['a', 'b']``, ``must be one of ('a', 'b')``)."""
    out: list[Any] = []
    for text in re.findall(r"[\[(]'[^\])]*[\])]", message):
        try:
            out.extend(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            continue
    return out


def changes(cfg: PipelineConfig, path: tuple[str, ...], value: Any, tp: Any) -> list[tuple[Any, PipelineConfig]]:
    """Accepted changed configs: every one for an Optional field (None and a value), else the first accepted
    perturbation; a string the config restricts takes another value its error message offers."""
    optional = typing.get_origin(tp) in (typing.Union, types.UnionType)
    accepted, errors = [], []
    for new in perturbations(value, tp):
        got = replaced(cfg, path, new)
        (errors if isinstance(got, str) else accepted).append(got if isinstance(got, str) else (new, got))
        if accepted and not optional:
            break
    if not accepted and isinstance(value, str | tuple):
        tried = set(perturbations(value, tp))
        for name in [o for e in errors for o in offered(e)]:
            if isinstance(value, tuple) and name in value:
                continue
            new = (*value, name) if isinstance(value, tuple) else name  # a restricted name list: one more name
            if new == value or new in tried:
                continue
            tried.add(new)
            got = replaced(cfg, path, new)
            if not isinstance(got, str):
                accepted.append((new, got))
                break
    return accepted if optional else accepted[:1]


# --- base configs, projects, inputs -------------------------------------------------------------------------------


def make_project(root: Path) -> dict[str, Path]:
    """Local folders a config can point at: data splits + general.jsonl, base model, teacher, meta-RM backbone."""
    paths = {"src": root / "src", "base": root / "base", "teacher": root / "teacher", "backbone": root / "backbone"}
    for p in paths.values():
        p.mkdir(parents=True, exist_ok=True)
    for split in ("train", "val", "test"):
        (paths["src"] / f"{split}.jsonl").write_text(f'{{"id": "{split}"}}\n')
    (paths["src"] / "general.jsonl").write_text('{"prompt": "q", "completion": "a"}\n')
    for name in ("base", "teacher", "backbone"):
        (paths[name] / "model.safetensors").write_bytes(name.encode())
    return paths


def base_config(name: str, paths: dict[str, Path]) -> PipelineConfig:
    overrides: dict[str, Any] = {}
    if name == "folders":
        overrides = {
            "data": {"source": str(paths["src"])},
            "model": {"base": str(paths["base"]), "teacher": str(paths["teacher"])},
            "meta_rm": {"train": {"backbone": str(paths["backbone"])}},
            "rft": {"ablations": list(ABLATIONS)},  # every ablation stage built once (they are off by default)
        }
    elif name == "http_teacher":
        overrides = {"model": {"teacher": "http://127.0.0.1:9/v1", "teacher_model_name": "served-a"}}
    return from_dict(PipelineConfig, overrides)


def fake_inputs(stage: Stage, salt: str = "") -> dict[str, StageResult]:
    """Upstream values by the stage's declared names (keyed by their key, like real ones)."""
    return {n: StageResult(f"up.{n}", f"key-{n}{salt}", f"/nonexistent/{n}") for n in stage.inputs}


def stage_params(stage: Stage, tmp: Path) -> list[dict[str, Any]]:
    return [dict(p) for p in stage.examples(tmp)] if stage.examples else [{}]


def plan_of(stage: Stage, cfg: PipelineConfig, root: Path, params: dict[str, Any], **kw: Any) -> StagePlan | Skip:
    return plan(stage, cfg, kw.get("inputs", fake_inputs(stage)), root, kw.get("code", "code-0"), params)


# --- the generated test -------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Changes:
    """A base config and every accepted change of it: (dotted field, new value, changed config)."""

    cfg: PipelineConfig
    changed: list[tuple[str, Any, PipelineConfig]]
    rejected: list[str]  # fields whose every change the config rejects


@pytest.fixture(autouse=True)
def private_benchdata_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The default eval.benchdata is the shipped copy, unpacked into the cache: the content test below adds a file
    to it, so it gets a private cache, never the user's."""
    monkeypatch.setenv("GRM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "grm-cache"))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    make_project(root)
    return root


def changes_of(base: str, root: Path) -> Changes:
    """Every leaf of PipelineConfig changed once (Optional: to None and to a value)."""
    cfg = base_config(base, make_project(root))
    out = Changes(cfg, [], [])
    for path, tp in leaves(PipelineConfig):
        value = cfg
        for k in path:
            value = getattr(value, k)
        accepted = changes(cfg, path, value, tp)
        if not accepted:
            out.rejected.append(".".join(path))
        out.changed += [(".".join(path), new, changed) for new, changed in accepted]
    return out


@pytest.fixture(scope="module")
def all_changes(project: Path) -> dict[str, Changes]:
    """The changes of each base config, computed once for the module (a few hundred strict config loads)."""
    return {base: changes_of(base, project) for base in BASES}


@pytest.mark.parametrize("stage_name", STAGES)
@pytest.mark.parametrize("base", BASES)
def test_every_config_field_changes_the_key_or_never_reaches_the_build(
    base: str, stage_name: str, project: Path, all_changes: dict[str, Changes]
) -> None:
    stage = REGISTRY[stage_name]
    base_changes = all_changes[base]
    cfg, rejected = base_changes.cfg, base_changes.rejected
    assert len({f for f, _, _ in base_changes.changed}) > 50  # the walk reaches the nested sections
    depends, missing, leaks = set(), [], []
    for params in stage_params(stage, project):
        before = plan_of(stage, cfg, project, params)
        assert before == plan_of(stage, cfg, project, params), "select/plan must be deterministic"
        for field, new, changed in base_changes.changed:
            try:
                after = plan_of(stage, changed, project, params)
            except FileNotFoundError:  # the changed value names a file or folder that does not exist
                missing.append(field)
                continue
            if isinstance(before, Skip) and isinstance(after, Skip):
                continue  # switched off either way: nothing is built
            if isinstance(before, Skip) or isinstance(after, Skip) or before.key != after.key:
                depends.add(field)
                continue
            if before.slice != after.slice or before.file_hashes != after.file_hashes:
                leaks.append(f"{field}={new!r}")
    print(f"\n[{base}] {stage_name}: key depends on {sorted(depends)}")
    print(
        f"  every change rejected by the config: {sorted(set(rejected))}; naming a missing file: {sorted(set(missing))}"
    )
    assert not leaks, f"{stage_name}: these changes reach the build but not its key: {leaks}"
    if not isinstance(before, Skip):
        assert depends or before.files, f"{stage_name} depends on no config field and no file at all?"


def _types_in(tp: Any, seen: set[Any] | None = None) -> set[Any]:
    """Every type an annotation can hold, through unions, containers and dataclass fields."""
    seen = set() if seen is None else seen
    if tp in seen:
        return seen
    seen.add(tp)
    for arg in typing.get_args(tp):
        _types_in(arg, seen)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        for hint in typing.get_type_hints(tp).values():
            _types_in(hint, seen)
    return seen


@pytest.mark.parametrize("stage_name", STAGES)
def test_build_receives_only_its_slice_and_a_context_without_config(stage_name: str, tmp_path: Path) -> None:
    stage = REGISTRY[stage_name]
    build = stage.build
    assert inspect.isfunction(build) and build.__closure__ is None and "<locals>" not in build.__qualname__, (
        f"{stage_name}: the build must be a module-level function, not a closure"
    )
    hints = typing.get_type_hints(build)
    params = list(inspect.signature(build).parameters)
    assert len(params) == 2 and hints[params[1]] is BuildContext and hints["return"] is StageOutput
    slice_type = hints[params[0]]
    assert dataclasses.is_dataclass(slice_type) and slice_type.__dataclass_params__.frozen
    reachable = _types_in(slice_type) | _types_in(BuildContext)
    assert not reachable & set(FORBIDDEN), (
        f"{stage_name}: a config reaches the build through {reachable & set(FORBIDDEN)}"
    )
    assert not {"cfg", "ctx"} & set(build.__code__.co_names), f"{stage_name}: the build names a global cfg/ctx"
    for params_ in stage_params(stage, tmp_path):  # what select returns is what the build is typed to take
        selected = stage.select(PipelineConfig(), **params_)
        assert isinstance(selected, slice_type | Skip)


@pytest.mark.parametrize("stage_name", STAGES)
def test_file_inputs_and_upstream_inputs_are_keyed_by_content(stage_name: str, tmp_path: Path) -> None:
    stage = REGISTRY[stage_name]
    paths = make_project(tmp_path)
    for base in BASES:
        cfg = base_config(base, paths)
        for params in stage_params(stage, tmp_path):
            before = plan_of(stage, cfg, tmp_path, params)
            if isinstance(before, Skip):
                continue
            for name in stage.inputs:  # one upstream key changed
                inputs = fake_inputs(stage) | {name: fake_inputs(stage, salt="'")[name]}
                assert plan_of(stage, cfg, tmp_path, params, inputs=inputs).key != before.key, (stage_name, name)
            assert plan_of(stage, cfg, tmp_path, params, code="code-1").key != before.key
            for name, path in before.files.items():
                target = path if path is not None else tmp_path / "src" / "general.jsonl"
                saved = target.read_bytes() if target.is_file() else None
                if target.is_dir():
                    (target / "added.bin").write_bytes(b"new weights")
                elif saved is not None:
                    target.write_bytes(saved + b"\n")
                else:
                    target.write_text('{"prompt": "q2", "completion": "a2"}\n')
                after = plan_of(stage, cfg, tmp_path, params)
                assert after.key != before.key, f"[{base}] {stage_name}: a new content of {name} kept the key"
                if target.is_dir():
                    (target / "added.bin").unlink()
                elif saved is not None:
                    target.write_bytes(saved)
                else:
                    target.unlink()
                assert plan_of(stage, cfg, tmp_path, params).key == before.key


# --- the measured stale reuses of the old keys, one by one ----------------------------------------------------------


def _key(stage: str, cfg: PipelineConfig, root: Path, **params: Any) -> str:
    planned = plan_of(REGISTRY[stage], cfg, root, params)
    assert isinstance(planned, StagePlan)
    return planned.key


def test_new_weights_in_the_model_base_folder_change_the_base_key(tmp_path: Path) -> None:
    paths = make_project(tmp_path)
    cfg = base_config("folders", paths)
    key = _key("model.base", cfg, tmp_path)
    (paths["base"] / "model.safetensors").write_bytes(b"retrained")
    assert _key("model.base", cfg, tmp_path) != key


def test_rewritten_general_jsonl_beside_data_source_changes_the_training_keys(tmp_path: Path) -> None:
    paths = make_project(tmp_path)
    cfg = from_dict(PipelineConfig, {"data": {"source": str(paths["src"])}, "rl": {"general_coef": 1.0}})
    stages = ("rft.train", "rft.train_unfiltered", "rl.train")
    keys = {s: _key(s, cfg, tmp_path) for s in stages}
    (paths["src"] / "general.jsonl").write_text('{"prompt": "other", "completion": "b"}\n')
    assert all(_key(s, cfg, tmp_path) != keys[s] for s in stages)
    (paths["src"] / "general.jsonl").unlink()  # absent is keyed too
    assert len({_key(s, cfg, tmp_path) for s in stages} | set(keys.values())) == 2 * len(stages)


def test_http_teacher_model_name_is_in_the_sampling_and_teacher_eval_keys(tmp_path: Path) -> None:
    cfg = base_config("http_teacher", {})
    other = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, teacher_model_name="served-b"))
    assert _key("rft.sample", cfg, tmp_path) != _key("rft.sample", other, tmp_path)
    teacher = {"name": "teacher", "target": "teacher"}
    assert _key("eval.{name}", cfg, tmp_path, **teacher) != _key("eval.{name}", other, tmp_path, **teacher)
    world = PipelineConfig()  # the world teacher never reads it: its slice holds none
    renamed = dataclasses.replace(world, model=dataclasses.replace(world.model, teacher_model_name="served-b"))
    assert _key("rft.sample", world, tmp_path) == _key("rft.sample", renamed, tmp_path)


def test_an_edit_in_tasks_changes_the_code_version(tmp_path: Path) -> None:
    roots = package_roots()
    assert set(roots) == {"grm", "tasks"} and code_version() == code_hash(roots)
    copies = {name: shutil.copytree(root, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
              for name, root in roots.items()}  # fmt: skip
    same = code_hash(copies)
    assert same == code_hash(roots)  # content, not location
    training = copies["tasks"] / "training.py"
    training.write_text(training.read_text() + "\n# an edit\n")
    assert code_hash(copies) != same
    training.write_text(training.read_text().removesuffix("\n# an edit\n"))
    (copies["tasks"] / "flows_like_note.txt").write_text("not python: ignored")
    assert code_hash(copies) == same


@pytest.fixture(scope="module")
def code_copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A copy of the ``grm`` and ``tasks`` sources to edit."""
    root = tmp_path_factory.mktemp("code")
    return {name: shutil.copytree(path, root / name, ignore=shutil.ignore_patterns("__pycache__"))
            for name, path in package_roots().items()}  # fmt: skip


def _closure_hash(stage: str, roots: dict[str, Path]) -> str:
    return files_hash(import_closure(stage_modules(REGISTRY[stage]), roots))


def _edited(path: Path, old: str, new: str) -> str:
    """Replace the first ``old`` in ``path`` by ``new``; returns the original text."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path}: {old!r} not found"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return text


@pytest.mark.parametrize("stage_name", STAGES)
def test_a_stage_key_hashes_its_import_closure(stage_name: str, code_copies: dict[str, Path]) -> None:
    """The key's code is the stage's import closure: equal on a copy, changed by an edit in a module it imports."""
    stage = REGISTRY[stage_name]
    closure = import_closure(stage_modules(stage))
    assert {f.__module__ for f in (stage.select, stage.build)} <= set(closure)
    assert stage_code(stage) == _closure_hash(stage_name, package_roots()) == _closure_hash(stage_name, code_copies)
    module = max(closure)  # any module of the closure: its bytes count
    path = import_closure(stage_modules(stage), code_copies)[module]
    saved = _edited(path, '"""', '"""An edit. ')
    try:
        assert _closure_hash(stage_name, code_copies) != stage_code(stage), f"{stage_name}: an edit in {module}"
    finally:
        path.write_text(saved, encoding="utf-8")


def test_a_docstring_edit_in_serving_keeps_the_training_keys(code_copies: dict[str, Path]) -> None:
    training = ("model.base", "rft.sample", "rft.train", "rl.train", "meta_rm.train")
    before = {s: _closure_hash(s, code_copies) for s in training}
    app = code_copies["grm"] / "serving" / "app.py"
    saved = _edited(app, '"""', '"""A docstring edit. ')
    try:
        assert {s: _closure_hash(s, code_copies) for s in training} == before
    finally:
        app.write_text(saved, encoding="utf-8")
    sft = code_copies["grm"] / "training" / "sft.py"  # what the training stages do import
    saved = _edited(sft, '"""', '"""A docstring edit. ')
    try:
        after = {s: _closure_hash(s, code_copies) for s in training}
        assert all(after[s] != before[s] for s in training)
    finally:
        sft.write_text(saved, encoding="utf-8")


def test_an_import_inside_a_function_is_in_the_closure(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("def late():\n    from pkg import never_at_import  # noqa\n")
    (pkg / "stage.py").write_text("def build():\n    from pkg.sub import helper\n    return helper\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "helper.py").write_text("X = 1\n")
    (pkg / "never_at_import.py").write_text("")
    (pkg / "unrelated.py").write_text("")
    # the function-level import counts; the package's own function-level import does not (it is only a parent)
    assert sorted(import_closure(["pkg.stage"], {"pkg": pkg})) == ["pkg", "pkg.stage", "pkg.sub", "pkg.sub.helper"]


def test_every_stage_module_is_listed_once_and_preloaded() -> None:
    """``STAGE_MODULES`` is the one list: every module of ``tasks`` that declares a Stage is in it (so the tests
    above, which enumerate ``load_stages()``, cover it), and the fork server preloads exactly it."""
    from tasks.engine.workers import PRELOAD

    declaring = {
        f"tasks.{p.stem}"
        for p in Path(package_roots()["tasks"]).glob("*.py")
        if re.search(r"register\(\s*Stage\(", p.read_text(encoding="utf-8"))
    }
    assert declaring == set(STAGE_MODULES), (
        f"add to tasks.engine.stage_code.STAGE_MODULES: {declaring - set(STAGE_MODULES)}"
    )
    assert set(STAGE_MODULES) <= set(PRELOAD)
    assert {stage.build.__module__ for stage in REGISTRY.values()} <= set(STAGE_MODULES)


def test_missing_required_file_input_names_the_config_key(tmp_path: Path) -> None:
    cfg = from_dict(PipelineConfig, {"data": {"source": str(tmp_path / "nowhere")}})
    with pytest.raises(FileNotFoundError, match=r"data\.source: .*train\.jsonl does not exist; point data\.source"):
        plan_of(REGISTRY["data.prepare"], cfg, tmp_path, {})


def test_undeclared_or_missing_upstream_inputs_fail(tmp_path: Path) -> None:
    stage = REGISTRY["rft.train"]
    with pytest.raises(ValueError, match=r"takes inputs \['base', 'samples'\], got \['base'\]"):
        plan(stage, PipelineConfig(), {"base": fake_inputs(stage)["base"]}, tmp_path, "c", {})


def test_every_stage_declared_in_tasks_is_registered() -> None:
    """The generated tests enumerate REGISTRY: a Stage declared anywhere in ``tasks`` must be in it."""
    import importlib
    import pkgutil

    import tasks

    declared = set()
    for info in pkgutil.iter_modules(tasks.__path__, "tasks."):
        if info.ispkg:  # tasks/team: service launchers, no stages (a stage module is one file, STAGE_MODULES)
            continue
        if "Stage(" not in (Path(tasks.__path__[0]) / f"{info.name.split('.')[1]}.py").read_text(encoding="utf-8"):
            continue  # declares no stage (and importing it would only cost time)
        module = importlib.import_module(info.name)
        declared |= {v.name for v in vars(module).values() if isinstance(v, Stage)}
    assert declared == set(REGISTRY)
    assert {"data.prepare", "model.base", "rft.sample", "rl.train", "meta_rm.train", "eval.{name}"} <= declared
