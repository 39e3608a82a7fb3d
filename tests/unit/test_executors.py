"""grm.executors without Ray: fixed shards and seeds, the local executor, the run's executor, RuntimeConfig rules; the
launcher rules of rft.train, rl and meta_rm.train and the launch spec."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from grm import executors
from grm.config import RuntimeConfig, SamplingConfig
from grm.executors import LocalExecutor, SamplerSpec, ShardedSampler, plan_shards
from grm.method import judging
from grm.plan import load_pipeline
from grm.world.generator import WorldConfig, generate_world
from grm.world.teacher import TeacherSampler


class Recorder:
    """A batch-seeded backend (like HF): its text depends on the call's seed and the prompt's batch position."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[str, ...], int]] = []

    def generate(self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int):
        self.calls.append((tuple(prompts), seed))
        return [[f"{p}|{seed}|{i}|{j}" for j in range(n)] for i, p in enumerate(prompts)]


def make_recorder() -> Recorder:
    return Recorder()


def test_plan_shards_cuts_in_order_and_seeds_by_position() -> None:
    shards = plan_shards([f"p{i}" for i in range(5)], 2, 0.5, 8, seed=7, shard_size=2, per_prompt=False)
    assert [s.prompts for s in shards] == [("p0", "p1"), ("p2", "p3"), ("p4",)]
    assert shards[0].seed == 7  # one shard samples exactly as the unsharded backend
    assert len({s.seed for s in shards}) == 3
    same = plan_shards([f"p{i}" for i in range(5)], 2, 0.5, 8, seed=7, shard_size=2, per_prompt=True)
    assert {s.seed for s in same} == {7}
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards(["a"], 1, 0.0, 8, 0, 0, False)


def test_sharded_sampler_keeps_prompt_order_and_gives_each_shard_its_seed() -> None:
    spec = SamplerSpec("recorder", factory="tests.unit.test_executors:make_recorder")
    ex = LocalExecutor()
    sampler = ShardedSampler(spec, 2, ex)
    out = sampler.generate(["a", "b", "c"], 2, 0.5, 8, seed=3)
    CALLS = ex.sampler(spec).calls
    assert [row[0].split("|")[0] for row in out] == ["a", "b", "c"]
    assert [c[0] for c in CALLS] == [("a", "b"), ("c",)]
    assert CALLS[0][1] == 3 and CALLS[1][1] != 3
    sampler.generate(["d"], 1, 0.5, 8, seed=3)
    assert len(CALLS) == 3  # the local executor built the backend once and reuses it


def test_world_teacher_judgements_do_not_depend_on_shard_size() -> None:
    items = generate_world(WorldConfig(n_train=0, n_val=0, n_test=12))["test"]
    spec = SamplerSpec("world-teacher", {"world": WorldConfig(n_train=0, n_val=0, n_test=12), "seed": 0})
    kw = {"k": 3, "temperature": 0.5, "max_new_tokens": 50, "seed": 4, "template": "compact"}
    direct = judging.judge_items(items, TeacherSampler(seed=0, world=spec.options["world"]), **kw)
    for size in (1, 5, 100):
        sharded = judging.judge_items(items, ShardedSampler(spec, size, LocalExecutor()), **kw)
        assert [j.to_dict() for j in sharded] == [j.to_dict() for j in direct]


def test_sharded_world_teacher_still_refuses_items_it_cannot_read() -> None:
    item = generate_world(WorldConfig(n_train=0, n_val=0, n_test=2))["test"][0]
    spec = SamplerSpec("world-teacher", {"seed": 0})
    with pytest.raises(Exception, match="compact"):
        judging.judge_items([item], ShardedSampler(spec, 4, LocalExecutor()), k=1, temperature=0.0,
                            max_new_tokens=8, seed=0, template="deepseek-grm")  # fmt: skip


def test_make_sampler_uses_the_current_executor() -> None:
    ex = LocalExecutor()
    with executors.using(ex):
        s = executors.make_sampler("world-teacher", {"seed": 0}, 4)
        assert s.executor is ex and executors.current() is ex
    assert executors.current() is None
    assert isinstance(executors.make_sampler("world-teacher", {}, 4).executor, LocalExecutor)


def test_using_a_runtime_config_picks_its_executor() -> None:
    with executors.using(RuntimeConfig()) as ex:
        assert ex.name == "local"
    ray_ex = executors.from_runtime(RuntimeConfig(executor="ray", workers=3, num_cpus=0.5, max_retries=1))
    assert (ray_ex.name, ray_ex.workers, ray_ex.num_cpus, ray_ex.max_retries) == ("ray", 3, 0.5, 1)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"executor": "dask"}, "runtime.executor"),
        ({"workers": 0}, "runtime.workers"),
        ({"num_cpus": 0}, "runtime.num_cpus"),
        ({"num_gpus": -1}, "runtime.num_gpus"),
        ({"max_retries": -1}, "runtime.max_retries"),
        ({"ray_address": "auto"}, "runtime.ray_address"),
    ],
)
def test_runtime_config_rules_name_the_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        RuntimeConfig(**kwargs)


def test_shard_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sampling.shard_size"):
        SamplingConfig(shard_size=0)


def test_runtime_section_loads_from_overrides() -> None:

    cfg = load_pipeline([], ["runtime.executor=ray", "runtime.workers=2", "runtime.ray_address=auto"])
    assert (cfg.runtime.executor, cfg.runtime.workers, cfg.runtime.ray_address) == ("ray", 2, "auto")


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"launcher": "mpirun"}, "rft.train.launcher"),
        ({"launcher": "torchrun", "batch_size": 7, "nproc_per_node": 2}, "rft.train.batch_size"),
        ({"launcher": "torchrun", "batch_size": 8, "nnodes": 2}, "rft.train.rdzv_endpoint"),
        ({"nproc_per_node": 0}, "rft.train.nproc_per_node"),
    ],
)
def test_launcher_rules_name_the_key(kwargs: dict, key: str) -> None:
    from grm.config import RFTTrainConfig

    with pytest.raises(ValueError, match=key):
        RFTTrainConfig(**kwargs)


@pytest.mark.parametrize(
    ("section", "kwargs", "key"),
    [
        ("rl", {"launcher": "mpirun"}, "rl.launcher"),
        ("rl", {"launcher": "torchrun", "prompts_per_step": 3, "num_generations": 3}, "rl.prompts_per_step"),
        ("rl", {"launcher": "torchrun", "general_batch_size": 3}, "rl.general_batch_size"),
        ("rl", {"launcher": "torchrun", "nnodes": 2}, "rl.rdzv_endpoint"),
        ("rl", {"nnodes": 0}, "rl.nnodes"),
        ("meta_rm.train", {"launcher": "slurm"}, "meta_rm.train.launcher"),
        ("meta_rm.train", {"launcher": "torchrun", "batch_size": 9}, "meta_rm.train.batch_size"),
        ("meta_rm.train", {"launcher": "torchrun", "nnodes": 2}, "meta_rm.train.rdzv_endpoint"),
        ("meta_rm.train", {"nproc_per_node": 0}, "meta_rm.train.nproc_per_node"),
    ],
)
def test_rl_and_meta_rm_launcher_rules_name_the_key(section: str, kwargs: dict, key: str) -> None:
    from grm.config import MetaRMTrainConfig, RLConfig

    cls = RLConfig if section == "rl" else MetaRMTrainConfig
    with pytest.raises(ValueError, match=key.replace(".", r"\.") + "="):
        cls(**kwargs)


def test_grpo_global_batch_splits_over_the_processes() -> None:
    from grm.config import RLConfig
    from grm.training.grpo import per_rank_batches

    # 3 prompts x 4 generations = 12 rollouts: 6 per rank even though 3 prompts do not split over 2 ranks
    ok = RLConfig(launcher="torchrun", prompts_per_step=3, num_generations=4, general_batch_size=4)
    assert per_rank_batches(ok, 2) == (6, 2)
    # the general batch only has to split when the general loss is on
    assert RLConfig(launcher="torchrun", general_batch_size=3, general_coef=0.0).general_batch_size == 3
    with pytest.raises(ValueError, match="prompts_per_step \\* num_generations \\(rollouts per step\\) = 12"):
        RLConfig(launcher="torchrun", prompts_per_step=3, num_generations=4, nproc_per_node=8)


def test_rl_and_meta_rm_launchers_load_from_overrides() -> None:

    sets = ["rl.launcher=torchrun", "rl.nproc_per_node=2", "meta_rm.train.launcher=torchrun"]
    cfg = load_pipeline([], sets)
    assert (cfg.rl.launcher, cfg.rl.nproc_per_node, cfg.meta_rm.train.launcher) == ("torchrun", 2, "torchrun")
    with pytest.raises(ValueError, match=r"rl\.prompts_per_step"):
        load_pipeline([], ["rl.launcher=torchrun", "rl.nproc_per_node=3"])


def test_launched_grpo_extras_must_pickle(tmp_path) -> None:
    from grm.config import RLConfig
    from grm.training.launch import command, write_spec

    cfg = RLConfig(launcher="torchrun")
    with pytest.raises(ValueError, match=r"rl\.launcher=torchrun: \['reward_funcs'\] must be picklable"):
        write_spec("grpo", tmp_path, "m", {"rows": []}, "out", cfg, True, objects={"reward_funcs": [lambda c: c]})
    spec = write_spec("grpo", tmp_path, "m", {"rows": [{"prompt": "p"}], "general": None}, "out", cfg, True)
    written = json.loads(spec.read_text())
    assert written["kind"] == "grpo" and written["cfg"]["launcher"] == "inprocess"  # the ranks run in process
    assert list(written["data"]) == ["rows"] and written["objects"] is None
    assert command(spec, cfg, "py")[-3:] == ["-m", "grm.training.ranks", str(spec)]
    with pytest.raises(ValueError, match="kind 'ppo' is not launchable"):
        write_spec("ppo", tmp_path, "m", {}, "out", cfg, True)


@pytest.mark.parametrize("plugin", ["ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED"])
def test_a_meta_rm_rank_refuses_an_fsdp_or_deepspeed_accelerate_config(plugin: str, monkeypatch) -> None:
    from grm.errors import UserError
    from grm.training.ranks import ENTRIES

    monkeypatch.setenv(plugin, "true")  # what `accelerate launch` sets for such a config file
    with pytest.raises(UserError, match=r"meta_rm\.train\.accelerate_config: .*torch DDP; use configs/accelerate/ddp"):
        ENTRIES["meta_rm"]({"use_cpu": True}, {"examples": []}, {}, 0, 1)
