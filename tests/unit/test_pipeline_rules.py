"""Rules of the whole pipeline config, checked at load: derived seeds, the gate metric, cross-section rules, data files."""

import dataclasses
import itertools

import pytest

from grm.config import SEED_KEYS, ConfigError, PipelineConfig, WorldConfig, evaluated_models, stage_seeds
from grm.eval.metric_key import heldout_benchmark
from grm.plan import check_data_files, default_gate_metric, expected_metrics, load_pipeline
from grm.world import World, generate_world


def load(*overrides):
    return load_pipeline([], list(overrides))


def load_error(*overrides) -> str:
    with pytest.raises(ConfigError) as info:
        load(*overrides)
    return str(info.value)


# ---- seeds -----------------------------------------------------------------------------------------------------
def _seed_paths(cls, prefix=""):
    """Every field called ``seed`` in the config tree, as a dotted path."""
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default):
            yield from _seed_paths(type(default), f"{prefix}{f.name}.")
        elif f.name == "seed" and prefix:
            yield f"{prefix}{f.name}"


def test_every_stage_seed_is_listed_and_follows_the_run_seed():
    assert sorted(_seed_paths(PipelineConfig)) == sorted(SEED_KEYS)  # a new seeded section must join SEED_KEYS
    seeds = stage_seeds(load("seed=1"))
    assert seeds == dict.fromkeys(["seed", *SEED_KEYS], 1)


def test_an_explicit_stage_seed_wins_and_survives_a_round_trip(tmp_path):
    from grm.config import save_config

    cfg = load("seed=4", "rl.seed=9", "world.seed=0")
    assert cfg.rl.seed == 9 and cfg.world.seed == 0 and cfg.eval.seed == 4 and cfg.rft.train.seed == 4
    assert load_pipeline([save_config(cfg, tmp_path / "c.yaml")]) == cfg


def test_a_section_on_its_own_keeps_none_and_the_core_reads_it_as_zero():
    small = {"n_train": 12, "n_val": 3, "n_test": 6}
    assert WorldConfig(**small).seed is None
    assert generate_world(WorldConfig(**small)) == generate_world(WorldConfig(**small, seed=0))
    assert World(WorldConfig()).capital == World(WorldConfig(seed=0)).capital != World(WorldConfig(seed=1)).capital


# ---- the gate metric -------------------------------------------------------------------------------------------
COMBINATIONS = list(
    itertools.product(
        ["rl.max_steps=150", "rl.max_steps=0"],
        ["rft.sft_unfiltered=true", "rft.sft_unfiltered=false"],
        ["meta_rm.enabled=true", "meta_rm.enabled=false"],
        ["eval.ks=[1,2,4,8]", "eval.ks=[1,4]", "eval.ks=[3]"],
        ["eval.hygiene=true", "eval.hygiene=false"],
        ["data.source=world", "data.source=data/my prefs"],
    )
)


@pytest.mark.parametrize("overrides", COMBINATIONS, ids=lambda o: ",".join(o))
def test_the_derived_gate_metric_is_one_the_enabled_stages_produce(overrides):
    cfg = load(*overrides)
    produced = expected_metrics(cfg)
    assert cfg.registry.gate_metric == default_gate_metric(cfg) in produced
    final = "rl" if cfg.rl.max_steps else "rft"
    bench = "world" if cfg.data.source == "world" else "heldout"
    assert cfg.registry.gate_metric == f"eval/{bench}/{final}/voting_k{max(cfg.eval.ks)}/accuracy"
    models = {name.split("/")[2] for name in produced}
    assert models == set(evaluated_models(cfg))
    assert ("rl" in models) == (cfg.rl.max_steps > 0)
    assert ("sft_unfiltered" in models) == cfg.rft.sft_unfiltered
    assert any("/metarm_k" in name for name in produced) == cfg.meta_rm.enabled
    assert {name.split("/")[1] for name in produced} == {bench}


def test_every_produced_metric_is_accepted_as_an_explicit_gate():
    cfg = load("eval.ks=[1,4]", "rft.sft_unfiltered=false")
    produced = sorted(expected_metrics(cfg))
    assert "eval/world/rl/greedy_k1/position_flip_rate" in produced
    for metric in produced[:: max(1, len(produced) // 25)]:
        assert load("eval.ks=[1,4]", "rft.sft_unfiltered=false", f"registry.gate_metric={metric}")


def test_rl_off_with_the_old_gate_fails_at_load_naming_the_key_and_the_fix():
    # docs/pipeline.md's `rl.max_steps: 0` used to die in registry.gate, after all training
    message = load_error("rl.max_steps=0", "registry.gate_metric=eval/world/rl/voting_k8/accuracy")
    assert "registry.gate_metric='eval/world/rl/voting_k8/accuracy'" in message
    assert "rl.max_steps=0 turns rl.train off" in message
    assert "'eval/world/rft/voting_k8/accuracy'" in message and "null" in message
    assert load("rl.max_steps=0").registry.gate_metric == "eval/world/rft/voting_k8/accuracy"


def test_the_gate_metric_never_carries_the_data_folders_name():
    # a weekly drop in another folder must keep last week's metric names, or the gate finds nothing to compare
    assert heldout_benchmark("data/preference/") == heldout_benchmark("data/2026-w50") == "heldout"
    assert load("data.source=data/preference").registry.gate_metric == "eval/heldout/rl/voting_k8/accuracy"
    assert load("data.source=data/2026-w50").registry.gate_metric == "eval/heldout/rl/voting_k8/accuracy"
    message = load_error("data.source=data/preference", "registry.gate_metric=eval/world/rl/voting_k8/accuracy")
    assert "the held-out split is named 'heldout' (data.source='data/preference')" in message
    assert "'eval/heldout/rl/voting_k8/accuracy'" in message


def test_a_metarm_gate_needs_the_meta_rm():
    assert load("registry.gate_metric=eval/world/rl/metarm_k8/accuracy")
    message = load_error("meta_rm.enabled=false", "registry.gate_metric=eval/world/rl/metarm_k8/accuracy")
    assert "meta_rm.enabled=false: no metarm_k* cells" in message


def test_a_gate_at_a_k_not_in_eval_ks_is_refused():
    message = load_error("eval.ks=[1,4]", "registry.gate_metric=eval/world/rl/voting_k8/accuracy")
    assert "eval.ks=[1, 4] has no k=8" in message and "'eval/world/rl/voting_k4/accuracy'" in message


def test_benchmark_gates_are_accepted_by_prefix_and_unknown_benchmarks_refused():
    cfg = load("eval.benchmarks=[rewardbench]", "registry.gate_metric=eval/rewardbench/rl/voting_k8/overall")
    assert cfg.registry.gate_metric.startswith("eval/rewardbench/")
    message = load_error("eval.benchmarks=[rewardbench]", "registry.gate_metric=eval/rewardbench/teacher/voting_k8/x")
    assert "is not a metric this run produces" in message
    message = load_error("eval.benchmarks=[rewardbenchh]")
    assert "eval.benchmarks has 'rewardbenchh'" in message and "'rewardbench'" in message


# ---- other cross-section rules ---------------------------------------------------------------------------------
def test_the_three_templates_must_agree():
    message = load_error("sampling.template=deepseek-grm")
    assert "sampling.template='deepseek-grm', rft.sampling.template='compact', rl.template='compact'" in message
    assert "--set rft.sampling.template=deepseek-grm --set rl.template=deepseek-grm" in message


def test_the_world_teacher_reads_compact_prompts_only():
    sets = ["sampling.template=deepseek-grm", "rft.sampling.template=deepseek-grm", "rl.template=deepseek-grm"]
    message = load_error(*sets)
    assert "model.teacher='world-teacher' reads 'compact' prompts only" in message
    assert load(*sets, "model.teacher=http://127.0.0.1:8001").sampling.template == "deepseek-grm"


def test_world_items_must_fit_data_max_responses():
    message = load_error("world.n_probs=[0.1,0.3,0.3,0.3]", "data.max_responses=3")
    assert "world.n_probs=[0.1, 0.3, 0.3, 0.3] makes items with up to 4 responses" in message
    assert "data.max_responses=3" in message
    assert load("world.n_probs=[0.1,0.3,0.6,0.0]", "data.max_responses=3")
    assert load("world.n_probs=[0.1,0.3,0.3,0.3]", "data.max_responses=3", "data.source=elsewhere")


@pytest.mark.parametrize("key", ["sampling.max_new_tokens", "rl.max_completion_length"])
def test_generation_budgets_fit_the_embedded_models_context(key):
    message = load_error(f"{key}=128")
    assert f"{key}=128 leaves no room for the prompt" in message and "max_position_embeddings=128" in message
    assert load(f"{key}=128", "model.tiny.max_position_embeddings=256")
    assert load(f"{key}=128", "model.base=/models/some-model")  # a real model's context is its own


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.k_meta=16", "eval.k_meta=16: must be in [1, max(eval.ks)=8]"),
        ("eval.limit=0", "eval.limit=0: must be >= 1, or null"),
        ("eval.benchmark_limit=0", "eval.benchmark_limit=0: must be >= 1"),
        ("eval.ks=[0,4]", "eval.ks=(0, 4): give one or more integers k >= 1"),
        ("sampling.num_threads=0", "sampling.num_threads=0: must be an integer >= 1"),
        ("sampling.batch_size=0", "sampling.batch_size=0: must be an integer >= 1"),
        ("rft.sampling.n_rft=0", "rft.sampling.n_rft=0: must be >= 1"),
        ("rft.sampling.max_new_tokens=0", "rft.sampling.max_new_tokens=0: must be an integer >= 1"),
        ("rft.train.batch_size=0", "rft.train.batch_size=0: must be an integer >= 1"),
        ("rl.max_steps=-1", "rl.max_steps=-1: must be >= 1, or 0 to skip rl.train"),
        ("rl.prompts_per_step=0", "rl.prompts_per_step=0: must be an integer >= 1"),
        ("rl.temperature=0", "rl.temperature=0.0: must be > 0"),
        ("rl.max_items=0", "rl.max_items=0: must be >= 1, or null"),
        ("meta_rm.grm_samples=-1", "meta_rm.grm_samples=-1: must be >= 0"),
        ("meta_rm.train.max_length=0", "meta_rm.train.max_length=0: must be an integer >= 1"),
        ("data.max_responses=0", "data.max_responses=0: must be an integer >= 1"),
    ],
)
def test_section_rules_name_the_key_and_the_fix(override, message):
    assert message in load_error(override)


# ---- the data folder's files (checked by pipeline_run before any stage) ----------------------------------------
def _folder(tmp_path, *files):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in files:
        (folder / name).write_text("", encoding="utf-8")
    return folder


def test_a_folder_without_its_splits_is_refused(tmp_path):
    _folder(tmp_path, "train.jsonl")
    with pytest.raises(ValueError, match=r"data.source='mine': .* lacks val.jsonl, test.jsonl"):
        check_data_files(load("data.source=mine"), tmp_path)


def test_missing_general_data_is_refused_with_the_fix(tmp_path):
    folder = _folder(tmp_path, "train.jsonl", "val.jsonl", "test.jsonl")
    with pytest.raises(ValueError) as info:
        check_data_files(load(f"data.source={folder}"), tmp_path)
    message = str(info.value)
    assert "rft.general_ratio=0.5, rl.general_coef=1.0 mix general-instruction data" in message
    assert str(folder / "general.jsonl") in message
    assert "--set rft.general_ratio=0 --set rl.general_coef=0" in message
    check_data_files(load("data.source=mine", "rft.general_ratio=0", "rl.general_coef=0"), tmp_path)
    check_data_files(load("data.source=mine", "rft.general_ratio=0", "rl.max_steps=0"), tmp_path)  # RL off
    (folder / "general.jsonl").write_text("", encoding="utf-8")
    check_data_files(load("data.source=mine"), tmp_path)
    check_data_files(load(), tmp_path)  # the embedded world brings its own


def test_flows_that_do_not_train_need_the_splits_only(tmp_path):
    _folder(tmp_path, "train.jsonl", "val.jsonl", "test.jsonl")
    check_data_files(load("data.source=mine"), tmp_path, training=False)


# ---- RFT ablations --------------------------------------------------------------------------------------------
def test_rft_ablations_are_named_from_one_registry_and_are_metric_producers():
    from grm.ablations import ABLATIONS

    assert "unknown" not in ABLATIONS
    message = load_error("rft.ablations=[no_hints]")
    assert "rft.ablations" in message and "no_hinted" in message and "general_only" in message
    assert "distinct" in load_error("rft.ablations=[no_hinted,no_hinted]")
    cfg = load("rft.ablations=[no_principles,general_only]")
    assert evaluated_models(cfg) == ("teacher", "sft_unfiltered", "rft_no_principles", "rft_general_only", "rft", "rl")
    assert "eval/world/rft_no_principles/greedy_k1/accuracy" in expected_metrics(cfg)
    assert load(
        "rft.ablations=[no_principles]", "registry.gate_metric=eval/world/rft_no_principles/voting_k8/accuracy"
    )
    message = load_error("registry.gate_metric=eval/world/rft_no_hinted/voting_k8/accuracy")
    assert "does not train 'no_hinted'" in message
    assert "rft_no_hinted" not in "".join(expected_metrics(load()))  # the CPU default runs ours only


def test_the_general_only_ablation_needs_general_data_at_load(tmp_path):
    for name in ("train", "val", "test"):
        (tmp_path / f"{name}.jsonl").write_text("")
    cfg = load(f"data.source={tmp_path}", "rft.general_ratio=0", "rl.general_coef=0", "rft.ablations=[general_only]")
    with pytest.raises(ConfigError, match=r"rft.ablations=\[general_only\].*general.jsonl"):
        check_data_files(cfg)


# ---- eval.benchmarks -----------------------------------------------------------------------------------------
def test_missing_benchdata_fails_at_load_naming_the_key_and_the_fix(tmp_path):
    from grm.plan import check_benchdata

    cfg = load(f"eval.benchdata={tmp_path}", "eval.benchmarks=[rewardbench,realmistake]")
    with pytest.raises(ConfigError) as info:
        check_benchdata(cfg, tmp_path)
    message = str(info.value)
    assert "eval.benchdata" in message and "rewardbench" in message and "realmistake" in message
    assert "eval.benchmarks=[]" in message
    (tmp_path / "rewardbench").mkdir()
    (tmp_path / "rewardbench" / "rewardbench_filtered.jsonl").write_text('{"subset": "x"}\n')
    check_benchdata(load(f"eval.benchdata={tmp_path}", "eval.benchmarks=[rewardbench]"), tmp_path)
    check_benchdata(load("eval.benchdata=/nowhere", "eval.benchmarks=[]"), tmp_path)  # off: nothing to read
    rel = load("eval.benchdata=bd", "eval.benchmarks=[rewardbench]")  # relative to the project folder
    (tmp_path / "bd").symlink_to(tmp_path)
    check_benchdata(rel, tmp_path)


def test_benchmark_metrics_of_the_trained_grms_can_gate():
    assert PipelineConfig().eval.benchmarks == ("rewardbench", "realmistake")  # the shipped ones (no rmb: no licence)
    cfg = load("registry.gate_metric=eval/realmistake/rl/metarm_k8/roc_auc")
    assert cfg.registry.gate_metric == "eval/realmistake/rl/metarm_k8/roc_auc"
    cfg = load("eval.benchmarks=[rewardbench,rmb]", "registry.gate_metric=eval/rmb/rl/metarm_k8/overall")
    assert cfg.registry.gate_metric == "eval/rmb/rl/metarm_k8/overall"
    assert "not a metric this run produces" in load_error("registry.gate_metric=eval/rmb/teacher/voting_k8/overall")
    assert "not a metric this run produces" in load_error(
        "eval.benchmarks=[rewardbench]", "registry.gate_metric=eval/rmb/rl/voting_k8/overall"
    )


def test_the_default_benchdata_is_the_shipped_copy_wherever_the_project_is(tmp_path):
    from grm.plan import check_benchdata

    cfg = load()
    assert cfg.eval.benchdata is None  # null: benchdata/*.tar.gz of the repository, unpacked into the user cache
    check_benchdata(cfg, tmp_path / "new" / "project")  # no ../shared beside it: still accepted
    with pytest.raises(ConfigError) as info:
        check_benchdata(load("eval.benchmarks=[rewardbench,rmb]"), tmp_path)
    message = str(info.value)
    assert "rmb is not shipped" in message and "no licence" in message
    assert "eval.benchdata" in message and "docs/benchdata.md" in message


def test_expected_metrics_is_memoised_per_setting_and_returns_a_fresh_set():
    names = expected_metrics(load())
    names.add("poison")
    assert "poison" not in expected_metrics(load())  # the memo hands out copies
    with_hygiene = expected_metrics(load("eval.hygiene=true"))
    without = expected_metrics(load("eval.hygiene=false"))
    assert with_hygiene != without and "eval/world/rl/greedy_swap_k1/accuracy" in with_hygiene - without
    assert expected_metrics(load("eval.ks=[1,4]")) != expected_metrics(load("eval.ks=[1,2]"))


# ---- the plan step: what the config (a leaf) leaves to grm.plan ----------------------------------------------------
def test_the_plan_step_derives_the_gate_metric_the_config_leaves_null():
    from grm.config import load_config
    from grm.plan import resolve_config

    cfg = load_config(PipelineConfig, [], ["rl.max_steps=0", "eval.ks=[1,4]"])
    assert cfg.registry.gate_metric is None  # the config alone names no metric: it cannot import the evaluation
    assert resolve_config(cfg).registry.gate_metric == "eval/world/rft/voting_k4/accuracy"
    pinned = load_config(PipelineConfig, [], ["registry.gate_metric=eval/world/rft/greedy_k1/accuracy"])
    assert resolve_config(pinned).registry == pinned.registry  # an explicit metric the run produces is kept


def test_the_plan_step_refuses_what_only_other_modules_can_check():
    from grm.config import load_config
    from grm.plan import resolve_config

    unknown = load_config(PipelineConfig, [], ["eval.benchmarks=[nope]"])  # the config alone cannot know
    with pytest.raises(ConfigError, match=r"^PipelineConfig: eval.benchmarks has 'nope', which is not a registered"):
        resolve_config(unknown)
    window = load_config(PipelineConfig, [], ["data.window=last:0"])
    with pytest.raises(ConfigError, match=r"^data: data.window='last:0': use 'all'"):
        resolve_config(window)


def test_the_fall_back_marker_is_an_expected_metric_only_when_a_fall_back_can_happen():
    plain = expected_metrics(load_pipeline([], []))
    guarded = expected_metrics(load_pipeline([], ["eval.meta_min_auc=0.6"]))
    assert not any(name.endswith("/fell_back") for name in plain)
    assert guarded - plain == {
        n.replace("/accuracy", "/fell_back") for n in plain if "/metarm_k" in n and n.endswith("/accuracy")
    }
