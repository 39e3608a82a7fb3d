"""Strict config loading: unknown keys and wrong types fail with the key named; recipes load and validate."""

from pathlib import Path

import pytest

from grm.config import ConfigError, PipelineConfig, flatten, load_config, read_yaml, save_config
from grm.plan import load_pipeline

CONFIGS = Path(__file__).parents[2] / "configs"


def test_overrides_are_typed_and_nested():
    cfg = load_pipeline([], ["rl.beta=0.002", "eval.ks=[1,4]", "rft.train.max_steps=7"])
    assert cfg.rl.beta == 0.002 and cfg.eval.ks == (1, 4) and cfg.rft.train.max_steps == 7


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rl.betta=1", "Unknown config key rl.betta. Valid keys of rl:"),
        ("eval.temperature=hot", "eval.temperature: expected a number"),
        ("rl.num_generations=1", "rl.num_generations=1"),  # cross-field rule from __post_init__
        ("eval.tie_policy=coin", "eval.tie_policy: 'coin' is not one of"),
        ("sampling.template=mine", "sampling.template='mine'"),
        ("nonsense", "must look like section.key=value"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(override, message):
    with pytest.raises(ConfigError, match=None) as info:
        load_pipeline([], [override])
    assert message in str(info.value)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_shipped_config_loads_and_validates(name):
    cfg = load_pipeline([CONFIGS / name])
    assert cfg.name


def test_gpu_recipe_uses_the_papers_hyper_parameters():
    cfg = load_pipeline([CONFIGS / "gpu-recipe.yaml"])
    assert cfg.rft.sampling.n_rft == 3 and cfg.rl.num_generations == 4
    assert cfg.rl.beta == 0.08 and cfg.rl.learning_rate == 4e-7 and cfg.rft.train.learning_rate == 5e-6
    assert cfg.rl.prompts_per_step * cfg.rl.num_generations == 512
    assert cfg.eval.temperature == 0.5 and cfg.sampling.template == "deepseek-grm"


def test_saved_config_round_trips(tmp_path):
    cfg = load_pipeline([], ["seed=3", "eval.ks=[1,2]"])
    path = save_config(cfg, tmp_path / "resolved.yaml")
    assert load_pipeline([path]) == cfg
    assert flatten(cfg)["eval.ks"] == [1, 2]


def _leaves(data, prefix=""):
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def test_default_yaml_is_the_dataclass_defaults():
    assert load_config(PipelineConfig, [CONFIGS / "default.yaml"]) == PipelineConfig()
    assert set(read_yaml(CONFIGS / "default.yaml")) == {"name"}  # the defaults live in grm.config only


@pytest.mark.parametrize("name", ["tiny.yaml", "gpu-recipe.yaml"])
def test_recipes_list_only_what_differs_from_the_defaults(name):
    defaults = flatten(PipelineConfig())
    repeated = [
        key
        for key, value in _leaves(read_yaml(CONFIGS / name))
        if key in defaults and (list(value) if isinstance(value, list | tuple) else value) == defaults[key]
    ]
    assert repeated == [], f"{name} repeats defaults: {repeated}"
