"""Tiny end-to-end training steps: TRL GRPO with the ±1 rule reward, and the BCE meta RM."""

import math
import random

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

from grm import meta_rm
from grm.config import MetaRMTrainConfig
from grm.schemas import Item
from grm.training import meta_rm_train, rft
from grm.training.grpo import RLConfig, build_rl_rows, drop_too_easy, general_batches, train_grpo
from grm.training.rft import Trajectory

ITEMS = [Item(f"i{i}", f"the question {i}", ("good answer", "bad answer"), best=i % 2) for i in range(6)] + [
    Item("s", "one", ("good",), label=1)
]


def test_rl_rows_carry_ground_truth_in_the_shown_order():
    rows = build_rl_rows(ITEMS, "compact", seed=3)
    for item, row in zip(ITEMS, rows, strict=True):
        lines = row["prompt"].splitlines()
        if item.n == 1:
            assert row["best"] == -1 and row["label"] == 1 and "Judge 0 or 1:" in row["prompt"]
        else:
            shown_best = lines[1 + row["best"]]
            assert shown_best.endswith(item.responses[item.best]) and row["label"] == -1


class _AlwaysRight:
    """A sampler that always gives the first shown response 9 and the others 2 (right when best is shown first)."""

    def __init__(self):
        self.prompts = 0

    def generate(self, prompts, n, temperature, max_new_tokens, seed):
        self.prompts += len(prompts)
        out = []
        for p in prompts:
            k = sum(line.startswith("R") and ": " in line for line in p.splitlines())
            scores = "1" if "Judge 0 or 1:" in p else ", ".join(["9"] + ["2"] * (k - 1))
            out.append(["Scores: \\boxed{" + scores + "}"] * n)
        return out


def test_too_easy_probe_runs_on_a_seeded_subset_and_drops_always_right_items():
    items = [Item(f"i{i}", f"the question {i}", ("a", "b"), best=0) for i in range(40)]
    sampler = _AlwaysRight()
    cfg = RLConfig(too_easy_samples=3, max_items=10, seed=5)
    kept, rate = drop_too_easy(items, sampler, cfg)
    assert 10 <= sampler.prompts <= 30  # only the subset is probed (at most one prompt per item and sample)
    # shuffled orders: an item is too easy only when best was shown first in all 3 samples
    assert 0 < len(kept) <= 10 and rate == 1 - len(kept) / 10
    again, _ = drop_too_easy(items, _AlwaysRight(), cfg)
    assert [i.id for i in again] == [i.id for i in kept]  # seeded
    assert len(drop_too_easy(items, _AlwaysRight(), RLConfig(too_easy_samples=0, max_items=7))[0]) == 7
    with pytest.raises(ValueError, match="max_items"):
        RLConfig(max_items=0)


class _NoisyReward:
    """Random ±1 rewards: gives groups non-zero variance so a random tiny model gets gradients."""

    __name__ = "noisy_reward"

    def __call__(self, completions, **kwargs):
        return [random.choice([-1.0, 1.0]) for _ in completions]


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.slow
def test_grpo_logs_rl_curves_and_saves_a_loadable_policy(tiny_model_dir, tmp_path, capfd, recwarn):
    rows = build_rl_rows(ITEMS, "compact", seed=0)
    cfg = RLConfig(
        max_steps=2, prompts_per_step=2, max_completion_length=8, logging_steps=1, beta=0.08, general_coef=0.0
    )
    out = train_grpo(tiny_model_dir, rows, tmp_path / "rl", cfg, num_threads=2)
    assert "{'loss'" not in "".join(capfd.readouterr())  # the Trainer's log dicts went to stdout
    assert not [str(w.message) for w in recwarn if issubclass(w.category, FutureWarning)]  # TRL's deprecations
    logs = [h for h in out["log_history"] if "reward" in h]
    assert logs, out["log_history"]
    for key in ("rewards/correctness_reward/mean", "kl", "completions/mean_length", "frac_reward_zero_std"):
        assert key in logs[0]
    # the rule reward is exactly ±1
    assert -1.0 <= logs[0]["rewards/correctness_reward/mean"] <= 1.0
    assert math.isfinite(out["train_loss"])
    AutoModelForCausalLM.from_pretrained(tmp_path / "rl")


@pytest.mark.slow
def test_grpo_updates_parameters_when_rewards_vary(tiny_model_dir, tmp_path):
    random.seed(0)
    before = _weights(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    cfg = RLConfig(
        max_steps=2, prompts_per_step=2, max_completion_length=8, learning_rate=1e-2, beta=0.0, general_coef=0.0
    )
    train_grpo(tiny_model_dir, build_rl_rows(ITEMS, "compact", 0), tmp_path / "rl", cfg, reward_funcs=[_NoisyReward()])
    after = _weights(AutoModelForCausalLM.from_pretrained(tmp_path / "rl"))
    assert sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2


GENERAL = [{"prompt": f"the question {i}", "completion": " good answer" if i % 2 else " bad"} for i in range(5)]


@pytest.mark.slow
def test_grpo_without_activation_checkpointing_trains_the_same_weights(tiny_model_dir, tmp_path):
    """The default skips TRL's activation checkpointing (a recomputed forward per step): bitwise the same policy."""
    cfg = RLConfig(
        max_steps=2, prompts_per_step=2, max_completion_length=8, learning_rate=1e-2, beta=0.04, general_coef=1.0
    )
    rows = build_rl_rows(ITEMS, "compact", 0)
    weights = {}
    for ckpt in (True, False):
        random.seed(0)
        out = tmp_path / f"rl-{ckpt}"
        train_grpo(tiny_model_dir, rows, out, cfg, general=GENERAL, reward_funcs=[_NoisyReward()],
                   activation_checkpointing=ckpt)  # fmt: skip
        weights[ckpt] = _weights(AutoModelForCausalLM.from_pretrained(out))
    assert all(torch.equal(weights[True][k], weights[False][k]) for k in weights[True])


class _ConstantReward:
    """Every rollout gets +1: zero-variance groups, so the GRPO term has no gradient."""

    __name__ = "constant_reward"

    def __call__(self, completions, **kwargs):
        return [1.0 for _ in completions]


@pytest.mark.slow
def test_general_batches_train_on_the_completion_only_and_cycle_seeded(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    batches = general_batches(tok, GENERAL, batch_size=2, seed=1)
    first = [next(batches) for _ in range(4)]  # 2 batches per pass over 5 examples (the short last one dropped)
    for batch in first:
        for ids, mask, labels in zip(batch["input_ids"], batch["attention_mask"], batch["labels"], strict=True):
            real = int(mask.sum())
            assert mask[:real].all() and not mask[real:].any()  # right padding
            assert (labels[real:] == -100).all()
            scored = [int(t) for t, lab in zip(ids, labels, strict=True) if lab != -100]
            assert scored[-1] == tok.eos_token_id
            assert tok.decode(scored[:-1]).strip() in ("good answer", "bad")  # never the prompt
    again = general_batches(tok, GENERAL, batch_size=2, seed=1)
    assert all(torch.equal(next(again)["input_ids"], b["input_ids"]) for b in first)


@pytest.mark.slow
def test_grpo_general_loss_moves_weights_that_plain_grpo_leaves(tiny_model_dir, tmp_path):
    rows = build_rl_rows(ITEMS, "compact", 0)
    before = _weights(AutoModelForCausalLM.from_pretrained(tiny_model_dir))
    base = dict(max_steps=2, prompts_per_step=2, max_completion_length=8, learning_rate=1e-2, beta=0.0)
    plain = RLConfig(**base, general_coef=0.0)
    train_grpo(tiny_model_dir, rows, tmp_path / "plain", plain, reward_funcs=[_ConstantReward()])
    assert all(
        torch.equal(before[k], v)
        for k, v in _weights(AutoModelForCausalLM.from_pretrained(tmp_path / "plain")).items()
    )
    mixed = RLConfig(**base, general_coef=1.0, general_batch_size=2, logging_steps=1)
    out = train_grpo(
        tiny_model_dir, rows, tmp_path / "mixed", mixed, reward_funcs=[_ConstantReward()], general=GENERAL
    )
    after = _weights(AutoModelForCausalLM.from_pretrained(tmp_path / "mixed"))
    assert sum(not torch.equal(before[k], after[k]) for k in before) > len(before) // 2
    losses = [h["general_loss"] for h in out["log_history"] if "general_loss" in h]
    assert losses and all(math.isfinite(x) and x > 0 for x in losses)
    with pytest.raises(ValueError, match="general_coef"):
        train_grpo(tiny_model_dir, rows, tmp_path / "x", mixed, reward_funcs=[_ConstantReward()])
    with pytest.raises(ValueError, match="general_coef"):
        RLConfig(general_coef=-1.0)


def test_meta_rm_labels_come_from_correctness_and_skip_hinted():
    items = {it.id: it for it in ITEMS}
    trajs = [
        Trajectory("i0", 0, "p", "Scores: \\boxed{9, 2}", True, False, "ok", (0, 1), 2),
        Trajectory("i0", 1, "p", "Scores: \\boxed{2, 9}", False, False, "ok", (1, 0), 2),
        Trajectory("i0", -1, "p", "Scores: \\boxed{9, 2}", True, True, "ok", (0, 1), 2),
    ]
    ex = rft.examples_from_trajectories(items, trajs)
    assert [e["label"] for e in ex] == [1, 0]
    # the meta prompt shows responses in the order that sample saw
    assert ex[1]["text"].index("bad answer") < ex[1]["text"].index("good answer")
    assert len(rft.examples_from_trajectories(items, trajs, include_hinted=True)) == 3


@pytest.mark.slow
def test_meta_rm_trains_with_bce_and_scores_in_unit_interval(tiny_model_dir, tmp_path, capfd):
    examples = [
        {"text": f"Response: good {i}" if i % 2 else f"Response: bad {i}", "label": i % 2, "id": f"x{i}"}
        for i in range(40)
    ]
    cfg = MetaRMTrainConfig(steps=30, batch_size=8, learning_rate=5e-3, val_fraction=0.25, max_length=16)
    metrics = meta_rm_train.train_meta_rm(tiny_model_dir, examples, tmp_path / "meta", cfg, num_threads=2)
    printed = "".join(capfd.readouterr())
    assert "LOAD REPORT" not in printed and "not sharded" not in printed  # the new head is expected, not reported
    assert math.isfinite(metrics["train_loss"]) and metrics["n_val"] > 0
    assert metrics["val_auc"] > 0.9  # "good"/"bad" is trivially separable
    scorer = meta_rm.load_meta_scorer(tmp_path / "meta")
    probs = scorer(["Response: good", "Response: bad"])
    assert all(0.0 < p < 1.0 for p in probs) and probs[0] > probs[1]
    clf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "meta")
    assert clf.config.num_labels == 1
    # batched shortest first, answered in input order: the same logits as one text at a time
    texts = [("Response: " + "good " * (i % 7) + ("bad" if i % 3 else "good")).strip() for i in range(20)]
    scorer.batch_size = 4
    alone = [scorer.logits([t])[0] for t in texts]
    assert scorer.logits(texts) == pytest.approx(alone, abs=1e-4)
    assert len(set(alone)) > 3


@pytest.mark.slow
def test_meta_rm_refuses_single_class_data(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="correct and incorrect"):
        meta_rm_train.train_meta_rm(
            tiny_model_dir, [{"text": "a", "label": 1, "id": "a"}], tmp_path / "m", MetaRMTrainConfig()
        )
