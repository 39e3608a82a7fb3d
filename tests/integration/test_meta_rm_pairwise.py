"""The pairwise (Bradley-Terry) meta-RM objective trains the within-item ranking, and the pipeline's evaluation falls
back to Voting@k, marked, when the meta RM's recorded held-out within-item AUC is below eval.meta_min_auc."""

from __future__ import annotations

import json
import logging

import pytest

from grm import meta_rm
from grm.config import MetaRMTrainConfig, SamplingConfig
from grm.training import meta_rm_train
from tasks.engine.stages import StageResult
from tasks.evaluation import Protocol, evaluate_with
from tests.unit.test_benchmarks_evaluation import QualitySampler, pairs


def _examples(n_items: int = 24) -> list[dict]:
    # mixed items: a good (1) and a bad (0) sample; plus items whose samples are all right or all wrong
    out = []
    for i in range(n_items):
        out.append({"text": f"Response: good {i}", "label": 1, "id": f"x{i}", "source": "grm"})
        out.append({"text": f"Response: bad {i}", "label": 0, "id": f"x{i}", "source": "grm"})
    out += [{"text": f"Response: easy {i}", "label": 1, "id": f"e{i}"} for i in range(6)]
    out += [{"text": f"Response: hard {i}", "label": 0, "id": f"h{i}"} for i in range(6)]
    return out


@pytest.mark.slow
def test_the_pairwise_objective_learns_to_rank_an_items_samples(tiny_model_dir, tmp_path):
    examples = _examples()
    cfg = MetaRMTrainConfig(
        steps=40, batch_size=8, learning_rate=5e-3, val_fraction=0.4, max_length=16, select_every=0,
        objective="pairwise",
    )  # fmt: skip
    metrics = meta_rm_train.train_meta_rm(tiny_model_dir, examples, tmp_path / "meta", cfg, num_threads=1)
    train, val = meta_rm_train.split_by_item(examples, cfg.val_fraction, 0)
    assert metrics["n_pairs"] == len(meta_rm_train.item_pairs(train)) > 0
    assert metrics["val_within_item_auc"] >= 0.9  # good above bad on items it never saw
    info = json.loads((tmp_path / "meta" / meta_rm.INFO_FILE).read_text())
    assert info["objective"] == "pairwise"
    assert info["val_within_item_auc"] == pytest.approx(metrics["val_within_item_auc"], abs=1e-6)


@pytest.mark.slow
def test_pairwise_needs_an_item_with_both_labels_and_an_even_batch(tiny_model_dir, tmp_path):
    flat = [{"text": f"Response: {w} {i}", "label": int(w == "easy"), "id": f"{w}{i}"} for w in ("easy", "hard")
            for i in range(4)]  # fmt: skip
    cfg = MetaRMTrainConfig(steps=2, batch_size=4, val_fraction=0.0, max_length=16, objective="pairwise")
    with pytest.raises(ValueError, match="no training item has both a correct and a wrong sample"):
        meta_rm_train.train_meta_rm(tiny_model_dir, flat, tmp_path / "meta", cfg, num_threads=1)
    odd = MetaRMTrainConfig(steps=2, batch_size=5, val_fraction=0.0, max_length=16, objective="pairwise")
    with pytest.raises(ValueError, match="batch_size=5: must be divisible by 2"):
        meta_rm_train.train_meta_rm(tiny_model_dir, _examples(4), tmp_path / "meta", odd, num_threads=1)


@pytest.mark.slow
def test_the_evaluation_falls_back_to_voting_below_the_threshold_and_says_so(tiny_model_dir, tmp_path, caplog):
    cfg = MetaRMTrainConfig(steps=2, batch_size=4, val_fraction=0.0, max_length=64, select_every=0)
    meta_rm_train.train_meta_rm(tiny_model_dir, _examples(4), tmp_path / "meta", cfg, num_threads=1)
    info_file = tmp_path / "meta" / meta_rm.INFO_FILE
    assert json.loads(info_file.read_text())["val_within_item_auc"] is None  # no held-out split: not recorded
    stage = StageResult("meta_rm.train", "k", str(tmp_path), {"model": "meta"})

    def run(min_auc: float | None, auc: float | None):
        info_file.write_text(json.dumps({**json.loads(info_file.read_text()), "val_within_item_auc": auc}))
        p = Protocol(
            SamplingConfig(template="deepseek-grm"), (1, 2), 0.5, 1, "random", 0, False, False, "top", min_auc
        )
        return evaluate_with(p, "toy", "m", pairs(), QualitySampler(), stage)

    with caplog.at_level(logging.WARNING):
        low = run(0.6, 0.52)
    assert low.cells["metarm_k2"]["fell_back"] == 1.0 and low.settings["meta_vote"] == "fallback"
    assert "held-out within-item AUC 0.520 < eval.meta_min_auc 0.6: MetaRM@k is Voting@k" in caplog.text
    high = run(0.6, 0.7)
    assert "fell_back" not in high.cells["metarm_k2"] and high.settings["meta_vote"] == "top"
    assert "fell_back" not in run(None, 0.1).cells["metarm_k2"]  # no threshold: the meta RM is always used
