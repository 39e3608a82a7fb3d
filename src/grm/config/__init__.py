"""Every setting of the SPCT pipeline and its default: one frozen dataclass per config section, named after its key.

The dataclass defaults ARE the default run (``make run``: the embedded world end to end on 2 CPU cores in about
15 minutes); ``configs/default.yaml`` only names it, and the other recipes (``tiny.yaml``, ``gpu-recipe.yaml``)
list only what differs. Each field's ``help`` says what it does and why it has that value; ``grm config`` prints
the resolved config with these helps. Values come from YAML files + dotted overrides (``load_config``).

One module per group of sections, each class named after its key:

=================  ==========================================================================
``data``           ``data`` DataConfig, ``data.min_items`` DataMinItemsConfig, ``world`` WorldConfig
``model``          ``model`` ModelConfig, ``model.tiny`` ModelTinyConfig, ``sampling`` SamplingConfig
``rft``            ``rft`` RFTConfig, ``rft.sampling`` RFTSamplingConfig, ``rft.train`` RFTTrainConfig
``rl``             ``rl`` RLConfig
``meta_rm``        ``meta_rm`` MetaRMConfig, ``meta_rm.train`` MetaRMTrainConfig
``eval``           ``eval`` EvalConfig
``mlops``          ``tracking`` TrackingConfig, ``registry`` RegistryConfig, ``runtime`` RuntimeConfig
``pipeline``       the root PipelineConfig, the stage seeds and the rules across sections
``loader``         YAML files + dotted overrides -> the dataclasses (``load_config``, ``ConfigError``)
``fields``         the field builders and value checks the sections share
=================  ==========================================================================

Two layers of rules are checked when the config is built (so at load, before any compute): a section's
``__post_init__`` checks its own fields (``rl.num_generations >= 2``); ``PipelineConfig.__post_init__`` resolves
every stage seed left ``null`` to the run's ``seed`` and checks the rules across sections that need nothing but
the config. The package is a leaf of the core (it imports only ``grm.errors``, ``grm.files``, ``grm.method.prompts`` and
``grm.ablations``): the rules that need other modules (a registered benchmark, the metric names the evaluation
produces, ``registry.gate_metric: null`` resolved to one of them, the data folder's files) are the plan step's,
``grm.plan``, which every entry point runs right after loading.

A section built on its own (a test, a script) keeps ``seed=None``; the core reads it through ``seed_or_zero``.
"""

from grm.config.data import FAMILIES, DataConfig, DataMinItemsConfig, WorldConfig
from grm.config.eval import EvalConfig, TiePolicy
from grm.config.fields import LAUNCHERS, SCHEDULERS, seed_or_zero
from grm.config.loader import (
    ConfigError,
    flatten,
    from_dict,
    load_config,
    parse_override,
    read_yaml,
    save_config,
    to_dict,
)
from grm.config.meta_rm import MetaRMConfig, MetaRMTrainConfig
from grm.config.mlops import EXECUTORS, RegistryConfig, RuntimeConfig, TrackingConfig
from grm.config.model import ModelConfig, ModelTinyConfig, SamplingConfig
from grm.config.pipeline import (
    SEED_KEYS,
    PipelineConfig,
    evaluated_models,
    final_model,
    general_data_needed,
    get_path,
    replace_path,
    stage_seeds,
)
from grm.config.rft import RFTConfig, RFTSamplingConfig, RFTTrainConfig
from grm.config.rl import RLConfig

__all__ = [
    "EXECUTORS",
    "FAMILIES",
    "LAUNCHERS",
    "SCHEDULERS",
    "SEED_KEYS",
    "ConfigError",
    "DataConfig",
    "DataMinItemsConfig",
    "EvalConfig",
    "MetaRMConfig",
    "MetaRMTrainConfig",
    "ModelConfig",
    "ModelTinyConfig",
    "PipelineConfig",
    "RFTConfig",
    "RFTSamplingConfig",
    "RFTTrainConfig",
    "RLConfig",
    "RegistryConfig",
    "RuntimeConfig",
    "SamplingConfig",
    "TiePolicy",
    "TrackingConfig",
    "WorldConfig",
    "evaluated_models",
    "final_model",
    "flatten",
    "from_dict",
    "general_data_needed",
    "get_path",
    "load_config",
    "parse_override",
    "read_yaml",
    "replace_path",
    "save_config",
    "seed_or_zero",
    "stage_seeds",
    "to_dict",
]
