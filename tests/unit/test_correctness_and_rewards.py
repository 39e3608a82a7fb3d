"""Eq. 10 correctness and the Eq. 11 ±1 reward (usable as a TRL reward function)."""

import pickle

import pytest

from grm.method.correctness import is_correct
from grm.rewards import CorrectnessReward, correctness_reward


@pytest.mark.parametrize(
    ("scores", "best", "label", "expected"),
    [
        ([8, 3], 0, None, True),  # best strictly above
        ([8, 8], 0, None, False),  # a tie at the top is wrong
        ([3, 8], 0, None, False),  # other response wins
        ([5, 9, 9], 1, None, False),  # tie between best and another
        ([5, 9, 7, 1], 1, None, True),  # four responses
        ([1], None, 1, True),  # single response equals its label
        ([0], None, 1, False),
        (None, 0, None, False),  # parse failure is incorrect
        (None, None, 0, False),
    ],
)
def test_is_correct_follows_eq10(scores, best, label, expected):
    assert is_correct(scores, best=best, label=label) is expected


def test_is_correct_names_the_missing_ground_truth():
    with pytest.raises(ValueError, match="best"):
        is_correct([1, 2])
    with pytest.raises(ValueError, match="label"):
        is_correct([1])


def test_reward_is_plus_one_when_correct_and_minus_one_otherwise():
    completions = [
        "Analysis: a. Scores: \\boxed{9, 2}",  # correct, best at position 0
        "Analysis: a. Scores: \\boxed{9, 9}",  # tie at the top
        "Analysis: a. Scores: \\boxed{2, 9}",  # wrong
        "Analysis: no scores",  # parse failure
        "Scores: \\boxed{1}",  # single response, label 1
        "Scores: \\boxed{7}",  # single response: out of the 0/1 range -> failure
    ]
    rewards = correctness_reward(
        completions, best=[0, 0, 0, 0, -1, -1], label=[-1, -1, -1, -1, 1, 1], n=[2, 2, 2, 2, 1, 1]
    )
    assert rewards == [1.0, -1.0, -1.0, -1.0, 1.0, -1.0]


def test_reward_accepts_chat_style_completions_and_is_picklable():
    reward = pickle.loads(pickle.dumps(CorrectnessReward(correct=2.0, incorrect=0.0)))
    out = reward([[{"role": "assistant", "content": "Scores: \\boxed{3, 7}"}]], best=[1], label=[None], n=[2])
    assert out == [2.0]
    assert reward.__name__ == "correctness_reward"


def test_reward_requires_n_column():
    with pytest.raises(ValueError, match="'n'"):
        correctness_reward(["Scores: \\boxed{1, 2}"], best=[1])


def _good_is_nine(prompt, sample):
    from tests.helpers.scripted import shown_responses

    if "query-fails" in prompt:
        return None  # every sample fails to parse
    return [9 if r == "good" else 3 for r in shown_responses(prompt)]


def test_grm_reward_pointwise_scores_each_completion():
    from grm.rewards import GRMReward
    from tests.helpers.scripted import ScriptedSampler

    reward = GRMReward(ScriptedSampler(_good_is_nine), k=3, template="compact")
    assert reward(["q1", "q2", "query-fails"], ["good", "bad", "good"]) == [8 / 9, 2 / 9, None]
    assert GRMReward(ScriptedSampler(_good_is_nine), k=2, template="compact", normalize=False)(["q"], ["good"]) == [
        9.0
    ]


def test_grm_reward_groups_are_judged_together_and_mapped_back_to_order():
    from grm.rewards import GRMReward
    from tests.helpers.scripted import ScriptedSampler

    sampler = ScriptedSampler(_good_is_nine)
    reward = GRMReward(sampler, k=8, group_size=3, template="compact", normalize=False)
    # 8 shuffled samples: each completion keeps its own score only if every sample is mapped back correctly
    assert reward(["q"] * 3, ["bad", "good", "bad"]) == [3.0, 9.0, 3.0]
    assert any(n > 1 for _, n in sampler.calls) or len(sampler.calls) > 1
    with pytest.raises(ValueError, match="share one prompt"):
        reward(["q", "q", "other"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="groups of group_size=3"):
        reward(["q", "q"], ["a", "b"])
