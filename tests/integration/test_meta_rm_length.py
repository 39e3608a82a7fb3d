"""The meta RM's stored input length and template (issue 29): training and every loader see the same tokens; its
held-out metric is the within-item AUC, which also picks the checkpoint; parse failures are not training data."""

import json
import logging
import math

import pytest
import typer

from grm import meta_rm
from grm.config import MetaRMConfig, MetaRMTrainConfig
from grm.method.judging import ItemJudgement, SampleJudgement
from grm.schemas import Item
from grm.training import meta_rm_train, rft
from grm.training.rft import Trajectory

GOOD = "Response: " + "filler " * 24 + "good"  # longer than the 16 tokens trained below: cut on the left


def _examples(n: int = 48) -> list[dict]:
    # per item a good (label 1) and a bad (label 0) sample, some longer than max_length
    out = []
    for i in range(n // 2):
        pad = "filler " * (i % 9)
        out.append({"text": f"Response: {pad}good {i}", "label": 1, "id": f"x{i}"})
        out.append({"text": f"Response: {pad}bad {i}", "label": 0, "id": f"x{i}"})
    return out


@pytest.mark.slow
def test_training_and_scoring_feed_the_same_tokens_at_the_stored_length(tiny_model_dir, tmp_path, monkeypatch):
    seen: dict[int, dict[str, list[int]]] = {}  # max_length -> text -> ids, across training and scoring
    real = meta_rm.encode

    def spy(tokenizer, texts, max_length):
        ids, cut = real(tokenizer, texts, max_length)
        for t, x in zip(texts, ids, strict=True):
            assert seen.setdefault(max_length, {}).setdefault(t, x) == x  # one text -> one token list
        return ids, cut

    monkeypatch.setattr(meta_rm, "encode", spy)
    examples = _examples() + [
        {"text": GOOD, "label": 1, "id": "long"},
        {"text": "Response: bad", "label": 0, "id": "long"},
    ]
    cfg = MetaRMTrainConfig(
        steps=4, batch_size=8, learning_rate=5e-3, val_fraction=0.25, max_length=16, select_every=0
    )
    metrics = meta_rm_train.train_meta_rm(
        tiny_model_dir, examples, tmp_path / "meta", cfg, num_threads=1, template="compact"
    )
    assert metrics["n_truncated"] >= 1
    info = json.loads((tmp_path / "meta" / meta_rm.INFO_FILE).read_text())
    assert info["max_length"] == 16 and info["grm_template"] == "compact" and info["truncation_side"] == "left"

    scorer = meta_rm.load_meta_scorer(tmp_path / "meta")  # no length given: the stored one, not the old 256
    assert scorer.max_length == 16
    scorer([GOOD, "Response: bad"])
    assert set(seen) == {16}  # training, the held-out scoring and this loader: one length
    assert len(seen[16][GOOD]) == 16  # cut to the trained length (and counted), as training cut it
    assert scorer.truncated == 1 and scorer.scored == 2


@pytest.mark.slow
def test_a_cut_input_is_reported_and_a_wrong_template_refused(tiny_model_dir, tmp_path, caplog):
    cfg = MetaRMTrainConfig(steps=2, batch_size=4, val_fraction=0.0, max_length=16, select_every=0)
    meta_rm_train.train_meta_rm(
        tiny_model_dir, _examples(8), tmp_path / "meta", cfg, num_threads=1, template="compact"
    )
    scorer = meta_rm.load_meta_scorer(tmp_path / "meta", template="compact")
    with caplog.at_level(logging.WARNING, logger="grm.meta_rm"):
        scorer([GOOD, "Response: good"])
    assert "1 of 2 inputs are longer than the max_length=16" in caplog.text
    with pytest.raises(ValueError, match="'compact' template, not 'deepseek-grm'"):
        meta_rm.load_meta_scorer(tmp_path / "meta", template="deepseek-grm")


@pytest.mark.slow
def test_a_meta_rm_without_its_info_file_scores_at_the_old_default_and_says_so(tiny_model_dir, tmp_path, caplog):
    cfg = MetaRMTrainConfig(steps=2, batch_size=4, val_fraction=0.0, max_length=300, select_every=0)
    meta_rm_train.train_meta_rm(tiny_model_dir, _examples(8), tmp_path / "meta", cfg, num_threads=1)
    assert meta_rm.load_meta_scorer(tmp_path / "meta").max_length == 300
    (tmp_path / "meta" / meta_rm.INFO_FILE).unlink()
    with caplog.at_level(logging.WARNING, logger="grm.meta_rm"):
        assert meta_rm.load_meta_scorer(tmp_path / "meta").max_length == meta_rm.LEGACY_MAX_LENGTH
    assert "retrain it" in caplog.text
    (tmp_path / "meta" / meta_rm.INFO_FILE).write_text('{"max_length": "long"}')
    with pytest.raises(ValueError, match="meta_rm.json: max_length must be a positive integer"):
        meta_rm.load_meta_scorer(tmp_path / "meta")


@pytest.mark.slow
def test_the_saved_checkpoint_is_the_best_by_held_out_within_item_auc(tiny_model_dir, tmp_path):
    cfg = MetaRMTrainConfig(
        steps=40, batch_size=8, learning_rate=5e-3, val_fraction=0.5, max_length=24, select_every=10
    )
    metrics = meta_rm_train.train_meta_rm(tiny_model_dir, _examples(), tmp_path / "meta", cfg, num_threads=1)
    curve = dict((int(s), a) for s, a in metrics["selection_curve"])
    assert sorted(curve) == [10, 20, 30, 40]
    best_step = max(curve, key=lambda s: (curve[s], -s))
    assert metrics["selected_step"] == best_step
    # rescoring the held-out split with the saved model gives the selected checkpoint's AUC back
    assert metrics["val_within_item_auc"] == pytest.approx(curve[best_step], abs=1e-6)
    assert metrics["val_mixed_items"] == 12 and math.isfinite(metrics["val_auc"])


@pytest.mark.slow
def test_the_held_out_within_item_auc_is_measured_on_the_guided_grms_samples(tiny_model_dir, tmp_path):
    examples = [{**e, "source": "grm" if int(e["id"][1:]) % 3 == 0 else "teacher"} for e in _examples()]
    cfg = MetaRMTrainConfig(
        steps=20, batch_size=8, learning_rate=5e-3, val_fraction=0.5, max_length=24, select_every=5
    )
    metrics = meta_rm_train.train_meta_rm(tiny_model_dir, examples, tmp_path / "meta", cfg, num_threads=1)
    _, val = meta_rm_train.split_by_item(examples, cfg.val_fraction, 0)  # the split training made (seed None -> 0)
    probs = meta_rm.load_meta_scorer(tmp_path / "meta")([e["text"] for e in val])
    guided = [(p, e["label"], e["id"]) for p, e in zip(probs, val, strict=True) if e["source"] == "grm"]
    auc, mixed = meta_rm.within_item_auc(*zip(*guided, strict=True))
    assert 0 < mixed < 12 and metrics["val_mixed_items"] == mixed
    assert metrics["val_within_item_auc"] == pytest.approx(auc, abs=1e-6)
    everyone = meta_rm.within_item_auc(probs, [e["label"] for e in val], [e["id"] for e in val])[0]
    assert metrics["val_within_item_auc_all"] == pytest.approx(everyone, abs=1e-6)


def test_within_item_auc_ignores_item_difficulty():
    # item a is easy (all its samples score high), item b hard; inside each item the wrong sample wins
    scores = [0.95, 0.99, 0.05, 0.10]
    labels = [1, 0, 1, 0]
    ids = ["a", "a", "b", "b"]
    assert meta_rm.within_item_auc(scores, labels, ids) == (0.0, 2)
    assert meta_rm.within_item_auc([0.5, 0.5], [1, 0], ["a", "a"]) == (0.5, 1)
    assert math.isnan(meta_rm.within_item_auc([0.5, 0.7], [1, 1], ["a", "b"])[0])


def test_parse_failures_are_not_label_zero_examples_unless_asked():
    items = [Item("i0", "q", ("good answer", "bad answer"), best=0)]
    res = ItemJudgement("i0", 2, 0, None, False)
    res.samples = [
        SampleJudgement([0, 1], "Scores: \\boxed{9, 2}", [9, 2], "ok"),
        SampleJudgement([1, 0], "garbled", None, "no_scores"),
    ]
    assert [e["label"] for e in meta_rm.examples_from_judgements(items, [res])] == [1]
    assert [e["label"] for e in meta_rm.examples_from_judgements(items, [res], keep_parse_failures=True)] == [1, 0]
    trajs = [
        Trajectory("i0", 0, "p", "Scores: \\boxed{9, 2}", True, False, "ok", (0, 1), 2),
        Trajectory("i0", 1, "p", "garbled", False, False, "no_scores", (1, 0), 2),
    ]
    by_id = {it.id: it for it in items}
    assert [e["label"] for e in rft.examples_from_trajectories(by_id, trajs)] == [1]
    assert len(rft.examples_from_trajectories(by_id, trajs, keep_parse_failures=True)) == 2


def test_meta_config_refuses_unknown_grm_split_and_negative_select_every():
    with pytest.raises(ValueError, match="meta_rm.grm_split='test': use 'train' or 'val'"):
        MetaRMConfig(grm_split="test")
    with pytest.raises(ValueError, match="meta_rm.train.select_every=-1"):
        MetaRMTrainConfig(select_every=-1)


def test_grm_eval_refuses_a_meta_rm_of_another_template_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    from grm.schemas import write_items
    from grm_cli import eval as eval_cmd

    meta = tmp_path / "meta"
    meta.mkdir()
    (meta / "model.safetensors").write_bytes(b"not read: the template is checked first")
    meta_rm.write_info(meta, 192, "compact")
    data = write_items(tmp_path / "toy.jsonl", [Item(f"t/{i}", f"q {i}", ("a", "b"), best=0) for i in range(2)])
    app = typer.Typer()
    app.command("eval")(eval_cmd.eval_command)
    app.callback()(lambda: None)
    args = ["eval", "--benchmark", str(data), "--model", str(tmp_path), "--meta-rm", str(meta)]
    result = CliRunner().invoke(app, [*args, "--template", "deepseek-grm"])
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())  # the message, whatever width its panel wraps at
    assert "rates judgements of the 'compact' template, not 'deepseek-grm'" in text
