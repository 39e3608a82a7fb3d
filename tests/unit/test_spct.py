"""Stage helpers: the RFT data mix, SFT on unfiltered teacher samples and the paper's RFT ablations."""

import dataclasses

import pytest

from grm.training.rft import Trajectory
from grm.training.spct import rft_mix, unfiltered_trajectories


def _traj(i, correct=True, hinted=False):
    return Trajectory(f"i{i}", 0, f"p{i}", f"c{i}", correct, hinted, "ok", (0, 1), 2)


GENERAL = [{"prompt": f"g{i}", "completion": f"a{i}"} for i in range(5)]


def test_rft_mix_adds_general_examples_at_the_ratio_and_is_seeded():
    trajs = [_traj(i) for i in range(4)]
    mix = rft_mix(trajs, GENERAL, ratio=0.5, seed=0)
    assert len(mix) == 6 and sum(m["prompt"].startswith("g") for m in mix) == 2
    assert mix == rft_mix(trajs, GENERAL, ratio=0.5, seed=0)
    assert len(rft_mix(trajs, GENERAL, ratio=3.0, seed=0)) == 16  # pool of 5 drawn with replacement
    assert len(rft_mix(trajs, GENERAL, ratio=0.0, seed=0)) == 4


def test_unfiltered_ablation_has_the_same_size_and_ignores_correctness():
    samples = [_traj(i, correct=i % 3 == 0) for i in range(30)] + [_traj(99, hinted=True)]
    picked = unfiltered_trajectories(samples, 12, seed=1)
    assert len(picked) == 12 and not any(t.hinted for t in picked)
    assert any(not t.correct for t in picked)
    assert len(unfiltered_trajectories(samples, 40, seed=1)) == 40


def test_meta_rm_examples_mixed_only_keeps_items_with_both_labels():
    from grm.config import MetaRMConfig
    from grm.schemas import Item
    from grm.training.spct import meta_rm_examples
    from tests.helpers.scripted import ScriptedSampler, shown_responses

    items = [
        Item(id="mixed", query="q1", responses=("good", "bad"), best=0),
        Item(id="easy", query="q2", responses=("fine", "poor"), best=0),
    ]
    best_text = {"q1": "good", "q2": "fine"}

    seen = {"q1": 0, "q2": 0}

    def rule(prompt, j):  # item "mixed": its first judgement right, later ones wrong; item "easy": always right
        query = "q1" if "q1" in prompt else "q2"
        seen[query] += 1
        right = query == "q2" or seen[query] % 2 == 1
        return [10 if (r == best_text[query]) == right else 1 for r in shown_responses(prompt)]

    sampler = ScriptedSampler(rule)
    kwargs = {"template": "compact", "max_new_tokens": 16, "seed": 0}
    cfg = MetaRMConfig(grm_samples=2, grm_items=2, mixed_only=False)
    every, stats = meta_rm_examples(items, [], sampler, cfg, **kwargs)
    assert sorted((e["id"], e["label"]) for e in every) == [("easy", 1), ("easy", 1), ("mixed", 0), ("mixed", 1)]
    mixed_cfg = MetaRMConfig(grm_samples=2, grm_items=2, mixed_only=True)
    kept, kept_stats = meta_rm_examples(items, [], sampler, mixed_cfg, **kwargs)
    assert sorted((e["id"], e["label"]) for e in kept) == [("mixed", 0), ("mixed", 1)]
    assert kept_stats["from_grm"] == 2 and stats["from_grm"] == 4
    assert kept_stats["grm_sample_accuracy"] == stats["grm_sample_accuracy"] == 0.75  # measured before the filter


# ---- the paper's RFT ablations (Table 4) -------------------------------------------------------------------------
WORLD_CRITIQUE = "\nSpecific Criteria: accuracy 8 , brevity 2\nAnalysis: answer Kelt ; R1 Kelt = Kelt right short\nScores: \\boxed{10, 2}"
PAPER_CRITIQUE = (
    "Specific Criteria:\n1. Accuracy (Weight: 60%): ...\n2. Clarity (Weight: 40%): ...\n\n"
    "Analysis:\n- Response 1 is right.\n- Response 2 is wrong.\n\nScores: \\boxed{9, 3}"
)


def test_strip_principles_cuts_the_criteria_of_both_output_formats_and_keeps_the_rest():
    from grm.method.parsing import extract_scores
    from grm.training.spct import strip_principles

    for text, scores in ((WORLD_CRITIQUE, (10, 2)), (PAPER_CRITIQUE, (9, 3))):
        stripped = strip_principles(text)
        assert "Specific Criteria" not in stripped and "Weight" not in stripped and "accuracy 8" not in stripped
        assert stripped.lstrip().startswith("Analysis:")
        assert extract_scores(stripped, 2).scores == scores  # the verdict is untouched
    assert strip_principles("Analysis: ok\nScores: \\boxed{1, 2}") == "Analysis: ok\nScores: \\boxed{1, 2}"
    assert strip_principles("Specific Criteria: a 5\nScores: \\boxed{1, 2}") == "Scores: \\boxed{1, 2}"


def test_each_ablation_keeps_the_trajectories_the_paper_removes_the_others_from():
    from grm.training.spct import ablation_examples, ablation_trajectories

    accepted = [_traj(i) for i in range(6)] + [_traj(10 + i, hinted=True) for i in range(2)]
    accepted = [dataclasses.replace(t, completion=WORLD_CRITIQUE) for t in accepted]
    assert [t.id for t in ablation_trajectories("no_hinted", accepted)] == [f"i{i}" for i in range(6)]
    assert [t.id for t in ablation_trajectories("no_nonhinted", accepted)] == ["i10", "i11"]
    assert ablation_trajectories("no_general", accepted) == accepted
    assert ablation_trajectories("general_only", accepted) == []
    cut = ablation_trajectories("no_principles", accepted)
    assert [t.prompt for t in cut] == [t.prompt for t in accepted]  # the prompt is unchanged
    assert all("Specific Criteria" not in t.completion and "Analysis:" in t.completion for t in cut)

    full = rft_mix(accepted, GENERAL, 0.5, seed=3)
    no_general = ablation_examples("no_general", accepted, GENERAL, 0.5, seed=3)
    assert len(no_general) == 8 and not any(e["prompt"].startswith("g") for e in no_general)
    only = ablation_examples("general_only", accepted, GENERAL, 0.5, seed=3)
    assert len(only) == len(full) == 12 and all(e["prompt"].startswith("g") for e in only)
    no_hinted = ablation_examples("no_hinted", accepted, GENERAL, 0.5, seed=3)
    assert len(no_hinted) == 9 and sum(e["prompt"].startswith("g") for e in no_hinted) == 3
    with pytest.raises(ValueError, match="unknown RFT ablation 'no_such'"):
        ablation_trajectories("no_such", accepted)
    with pytest.raises(ValueError, match="general_only but there is no general-instruction data"):
        ablation_examples("general_only", accepted, [], 0.5, seed=3)
