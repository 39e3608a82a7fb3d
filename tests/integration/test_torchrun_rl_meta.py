"""``rl.launcher`` and ``meta_rm.train.launcher: torchrun`` on CPU, 2 gloo processes each.

GRPO samples its rollouts, so a 2-process run cannot equal a 1-process one; what is asserted instead: every rank
scores its equal share of the global ``prompts_per_step * num_generations`` rollouts per step, the rewards rank 0
logs are the gathered ones (a reward that differs by rank gives the global mean, not rank 0's), the general loss
and the rollouts train the weights, and the saved policy loads. The meta RM is deterministic: its 2-process loss
curve equals the 1-process one at the same global batch within ``META_TOL`` (relative), and so do the weights and
the held-out AUC. A crash in one rank fails the stage with that rank's error and leaves no model folder.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import pytest

from grm import meta_rm
from grm.config import MetaRMTrainConfig
from grm.schemas import Item
from grm.training import meta_rm_train
from grm.training.grpo import RLConfig, build_rl_rows, train_grpo
from grm.training.launch import LaunchError
from tests.helpers import rank_reward

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ITEMS = [Item(f"i{i}", f"the question {i}", ("good answer", "bad answer"), best=i % 2) for i in range(6)]
GENERAL = [{"prompt": f"the question {i}", "completion": " good answer" if i % 2 else " bad"} for i in range(6)]
GRPO = RLConfig(max_steps=2, prompts_per_step=2, num_generations=4, max_completion_length=8, logging_steps=1,
                       learning_rate=1e-2, beta=0.04, general_coef=1.0, general_batch_size=2, launcher="torchrun",
                       nproc_per_node=2)  # fmt: skip
META_EXAMPLES = [
    {"text": f"Response: good {i}" if i % 2 else f"Response: bad {i}", "label": i % 2, "id": f"x{i // 2 % 10}"}
    for i in range(40)
]
META = MetaRMTrainConfig(steps=20, batch_size=8, learning_rate=5e-3, val_fraction=0.25, max_length=16)
META_TOL = 1e-4  # relative; measured on this machine: 2.0e-7, weights 4.8e-7 absolute (gloo sums the two ranks' gradients in another order)


@pytest.fixture
def ranks_import_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ranks unpickle ``tests.helpers.rank_reward``: put the repo root on their import path."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))


def _weights(path: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return {k: v.detach().clone() for k, v in AutoModelForCausalLM.from_pretrained(path).state_dict().items()}


def test_grpo_on_two_processes_splits_the_global_rollouts_and_logs_gathered_rewards(
    tiny_model_dir: Path, tmp_path: Path, ranks_import_tests: None
) -> None:
    import torch

    (tmp_path / "calls").mkdir()
    rows = build_rl_rows(ITEMS, "compact", seed=0)
    reward = rank_reward.RankPatternReward(tmp_path / "calls")
    out = train_grpo(
        tiny_model_dir, rows, tmp_path / "rl", GRPO, num_threads=1, reward_funcs=[reward], general=GENERAL
    )
    assert (out["world_size"], out["backend"]) == (2, "gloo")
    # 2 steps x 8 rollouts (prompts_per_step * num_generations), 4 per rank and step
    assert rank_reward.calls(tmp_path / "calls") == {0: [4, 4], 1: [4, 4]}
    logs = [h for h in out["log_history"] if "reward" in h]
    assert [h["step"] for h in logs] == [1, 2]
    # rank 0's own rewards average 0, rank 1's 0.5: the logged 0.25 is the mean over both ranks' rollouts
    assert all(h["reward"] == pytest.approx(0.25) for h in logs)
    assert all(math.isfinite(h["general_loss"]) and h["general_loss"] > 0 for h in logs)
    assert math.isfinite(out["train_loss"])
    before, after = _weights(tiny_model_dir), _weights(tmp_path / "rl")  # the saved policy loads
    assert sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2
    assert not list(tmp_path.glob(".*launch*"))  # the launch's work folder is gone


def test_meta_rm_on_two_processes_matches_one_process_with_the_same_global_batch(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification

    logged: dict[str, list] = {"single": [], "ddp": []}
    single = meta_rm_train.train_meta_rm(tiny_model_dir, META_EXAMPLES, tmp_path / "single", META, num_threads=1,
                                   log_fn=lambda m, step: logged["single"].append((step, m)))  # fmt: skip
    ddp_cfg = dataclasses.replace(META, launcher="torchrun", nproc_per_node=2)
    ddp = meta_rm_train.train_meta_rm(tiny_model_dir, META_EXAMPLES, tmp_path / "ddp", ddp_cfg, num_threads=1,
                                log_fn=lambda m, step: logged["ddp"].append((step, m)))  # fmt: skip
    assert (ddp["world_size"], ddp["backend"], ddp["steps"]) == (2, "gloo", 20)
    assert len(ddp["loss_curve"]) == len(single["loss_curve"]) == 20
    assert ddp["loss_curve"] == pytest.approx(single["loss_curve"], rel=META_TOL)
    assert ddp["loss_curve"][-1] < ddp["loss_curve"][0]  # it trained
    assert ddp["val_auc"] == pytest.approx(single["val_auc"], abs=1e-9) and ddp["val_auc"] > 0.9
    assert sorted((s, *m) for s, m in logged["ddp"]) == sorted((s, *m) for s, m in logged["single"])
    loss_steps = [s for s, m in logged["ddp"] if "meta_rm/train/loss" in m]
    auc_steps = [s for s, m in logged["ddp"] if "meta_rm/val/within_item_auc" in m]
    assert loss_steps == [10, 20] and auc_steps == [20]  # the curves, replayed (held-out AUC at the last step)
    assert ddp["val_within_item_auc"] == pytest.approx(single["val_within_item_auc"], abs=1e-9)
    a = AutoModelForSequenceClassification.from_pretrained(tmp_path / "single").state_dict()
    b = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ddp").state_dict()
    assert set(a) == set(b)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=META_TOL, atol=META_TOL)
    probs = meta_rm.load_meta_scorer(tmp_path / "ddp")(["Response: good", "Response: bad"])
    assert probs[0] > probs[1]
    assert not list(tmp_path.glob(".*launch*"))


@pytest.mark.parametrize("kind", ["grpo", "meta_rm"])
def test_a_crash_in_one_rank_fails_with_that_ranks_error(
    kind: str, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRM_TEST_FAIL_RANK", "1")
    section = {"grpo": "rl", "meta_rm": "meta_rm.train"}[kind]
    pattern = rf"{section} training launch exited with \d+; rank 1 failed:\n(.|\n)*injected failure on rank 1"
    with pytest.raises(LaunchError, match=pattern):
        if kind == "grpo":
            train_grpo(tiny_model_dir, build_rl_rows(ITEMS, "compact", 0), tmp_path / "model", GRPO, general=GENERAL)
        else:
            cfg = dataclasses.replace(META, launcher="torchrun", nproc_per_node=2)
            meta_rm_train.train_meta_rm(tiny_model_dir, META_EXAMPLES, tmp_path / "model", cfg)
    assert not (tmp_path / "model").exists()
    assert not list(tmp_path.glob(".*"))  # neither the work folder nor a half-written model
