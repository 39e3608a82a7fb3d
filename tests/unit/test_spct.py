"""Stage helpers: the RFT data mix and the same-budget unfiltered ablation set."""

from grm.rft import Trajectory
from grm.spct import rft_mix, unfiltered_trajectories


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
    from grm.pipeline_config import MetaStageConfig
    from grm.schemas import Item
    from grm.spct import meta_rm_examples
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
    cfg = MetaStageConfig(grm_samples=2, grm_items=2, mixed_only=False)
    every, stats = meta_rm_examples(items, [], sampler, cfg, **kwargs)
    assert sorted((e["id"], e["label"]) for e in every) == [("easy", 1), ("easy", 1), ("mixed", 0), ("mixed", 1)]
    mixed_cfg = MetaStageConfig(grm_samples=2, grm_items=2, mixed_only=True)
    kept, kept_stats = meta_rm_examples(items, [], sampler, mixed_cfg, **kwargs)
    assert sorted((e["id"], e["label"]) for e in kept) == [("mixed", 0), ("mixed", 1)]
    assert kept_stats["from_grm"] == 2 and stats["from_grm"] == 4
    assert kept_stats["grm_sample_accuracy"] == stats["grm_sample_accuracy"] == 0.75  # measured before the filter
