"""Length groups for padded batches: the plan minimises padded tokens; the split keeps every row's tokens."""

from __future__ import annotations

import pytest

from grm.training.padding import is_right_padded, plan_groups, split_batch


def test_plan_separates_short_from_long_rows() -> None:
    assert plan_groups([70, 10, 72, 12], max_groups=2, overhead_tokens=0) == [[1, 3], [0, 2]]
    assert plan_groups([70, 10, 72, 12], max_groups=1) == [[0, 1, 2, 3]]
    assert plan_groups([], max_groups=3) == []


def test_plan_keeps_one_group_when_a_split_saves_less_than_its_overhead() -> None:
    assert plan_groups([20, 21, 22, 23], max_groups=3, overhead_tokens=256) == [[0, 1, 2, 3]]
    lengths = [11] * 20 + [60] * 20 + [75] * 24
    groups = plan_groups(lengths, max_groups=3, overhead_tokens=0)
    assert [sorted({lengths[i] for i in g}) for g in groups] == [[11], [60], [75]]
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))


def test_plan_rejects_zero_groups() -> None:
    with pytest.raises(ValueError, match="max_groups"):
        plan_groups([1, 2], max_groups=0)


def test_split_trims_each_group_to_its_longest_row() -> None:
    import torch

    ids = torch.tensor([[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]])
    mask = (ids != 0).long()
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100), "flag": True}
    assert is_right_padded(inputs)
    short, long = split_batch(inputs, [[1], [0, 2]])
    assert short["input_ids"].tolist() == [[8]] and short["labels"].tolist() == [[8]]
    assert long["input_ids"].tolist() == [[5, 6, 7, 0], [1, 2, 3, 4]] and long["flag"] is True
    assert not is_right_padded({"attention_mask": torch.tensor([[0, 1], [1, 1]])})
