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
