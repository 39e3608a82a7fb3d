"""Eq. 10 correctness and the Eq. 11 ±1 reward (usable as a TRL reward function)."""

import pickle

import pytest

from grm.correctness import is_correct
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
