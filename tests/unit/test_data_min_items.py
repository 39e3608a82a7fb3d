"""``data.min_items``: the fewest items per split, checked at load (and by GX in ``data.validate``)."""

from __future__ import annotations

import pytest

from grm.config import ConfigError, PipelineConfig
from grm.plan import load_pipeline


def _load(*overrides: str) -> PipelineConfig:
    return load_pipeline([], list(overrides))


def test_defaults_need_one_item_per_split() -> None:
    m = _load().data.min_items
    assert (m.train, m.val, m.test) == (1, 1, 1)


@pytest.mark.parametrize("split", ["train", "test"])
def test_train_and_test_cannot_be_allowed_empty(split: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=rf"data\.min_items\.{split}=0: must be an integer >= 1"):
        _load(f"data.min_items.{split}=0")


def test_val_may_be_empty_when_asked() -> None:
    cfg = _load("data.min_items.val=0", "world.n_val=0")
    assert cfg.data.min_items.val == 0 and cfg.world.n_val == 0


def test_a_world_smaller_than_the_minimum_is_refused_at_load() -> None:
    with pytest.raises((ConfigError, ValueError)) as err:
        _load("world.n_val=0")
    assert "world.n_val=0 is below data.min_items.val=1" in str(err.value)
    with pytest.raises((ConfigError, ValueError), match=r"world\.n_test=40 is below data\.min_items\.test=50"):
        _load("world.n_test=40", "data.min_items.test=50")
    _load("data.source=/nonexistent", "data.min_items.test=50")  # a folder's counts are GX's (data.validate)
