"""Rejective sampling rules: drop incorrect, drop too-easy items, hinted samples with the hint stripped."""

from grm.schemas import Item
from grm.training.rft import RFTSamplingConfig, rejective_sample
from tests.helpers.scripted import ScriptedSampler, shown_responses

ITEMS = [
    Item("easy", "easy q", ("good", "bad")),
    Item("hard", "hard q", ("good", "bad", "worse"), best=0),
    Item("mixed", "mixed q", ("bad", "good"), best=1),
    Item("single", "single q", ("good",), label=1),
]
ITEMS[0] = Item("easy", "easy q", ("good", "bad"), best=0)


def rule(prompt: str, sample: int):
    shown = shown_responses(prompt)
    if "Judge 0 or 1" in prompt:  # single-response template
        return [1]
    hinted = "The best response is" in prompt
    if prompt.startswith("Query: hard") and not hinted:
        return [2 if r == "good" else 9 for r in shown]  # always wrong without the hint
    if prompt.startswith("Query: mixed") and shown[0] == "good" and not hinted:
        return [5] * len(shown)  # a tie at the top: incorrect (Eq. 10)
    return [9 if r == "good" else 2 for r in shown]


CFG = RFTSamplingConfig(n_rft=3, template="compact", seed=1)
N_MIXED_TIED = sum(
    t.order[0] == 1
    for t in rejective_sample(ITEMS, ScriptedSampler(rule), CFG).samples
    if t.id == "mixed" and not t.hinted
)


def test_rejection_rules_on_hand_made_cases():
    result = rejective_sample(ITEMS, ScriptedSampler(rule), CFG)
    accepted = {(t.id, t.hinted) for t in result.accepted}
    # "easy" is too easy (3/3): no un-hinted sample kept, but its correct hinted sample is
    assert ("easy", False) not in accepted and ("easy", True) in accepted
    # "hard" is all wrong: only the hinted one survives
    assert [t.hinted for t in result.accepted if t.id == "hard"] == [True]
    # "mixed": samples that showed "good" first tied (rejected); the others are kept, plus the hinted one
    mixed = [t for t in result.samples if t.id == "mixed" and not t.hinted]
    tied = [t.sample for t in mixed if t.order[0] == 1]
    assert 0 < len(tied) < 3  # the seeded shuffles produce both cases
    kept = sorted(t.sample for t in result.accepted if t.id == "mixed" and not t.hinted)
    assert kept == sorted(set(range(3)) - set(tied))
    # single responses are too easy here (always right) and get no hinted pass
    assert not [t for t in result.accepted if t.id == "single"]
    assert len([t for t in result.samples if t.id == "single"]) == 3


def test_every_sample_is_kept_with_its_label_for_the_meta_rm():
    result = rejective_sample(ITEMS, ScriptedSampler(rule), CFG)
    assert len(result.samples) == 4 * 3 + 3  # 3 un-hinted per item + 1 hinted per multi-response item
    hard = [t for t in result.samples if t.id == "hard" and not t.hinted]
    assert [t.correct for t in hard] == [False, False, False]


def test_hint_is_stripped_from_the_training_prompt():
    result = rejective_sample(ITEMS, ScriptedSampler(rule), CFG)
    hinted = [t for t in result.accepted if t.hinted]
    assert hinted and all("The best response is" not in t.prompt for t in hinted)
    for t in hinted:  # the training prompt shows responses in the order the hinted sample saw
        item = next(i for i in ITEMS if i.id == t.id)
        assert shown_responses(t.prompt) == [item.responses[o] for o in t.order]


def test_statistics():
    stats = rejective_sample(ITEMS, ScriptedSampler(rule), CFG).stats
    assert stats["too_easy_rate"] == 2 / 4  # easy + single
    assert stats["all_wrong_rate"] == 1 / 4  # hard
    mixed_ok = 3 - N_MIXED_TIED
    assert stats["sample_accuracy"] == (3 + 0 + mixed_ok + 3) / 12
    assert stats["hinted_accuracy"] == 1.0
    assert stats["n_accepted"] == mixed_ok + 3  # mixed's untied samples; hinted easy, hard, mixed
    assert stats["hinted_share"] == 3 / (mixed_ok + 3)
    assert stats["parse_fail_rate"] == 0.0


def test_too_easy_filter_can_be_turned_off_and_capped():
    cfg = RFTSamplingConfig(
        n_rft=3, template="compact", drop_too_easy=False, max_kept_per_item=1, hinted=False, seed=1
    )
    result = rejective_sample(ITEMS, ScriptedSampler(rule), cfg)
    assert sorted(t.id for t in result.accepted) == ["easy", "mixed", "single"]


def test_trajectories_round_trip_through_json():
    import json

    from grm.training.rft import Trajectory

    samples = rejective_sample(ITEMS, ScriptedSampler(rule), CFG).samples
    back = [Trajectory.from_dict(json.loads(json.dumps(t.to_dict()))) for t in samples]
    assert back == samples and all(isinstance(t.order, tuple) for t in back)
