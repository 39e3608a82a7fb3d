"""The conftest guard that fails a test building a model without the ``slow`` marker."""

from __future__ import annotations

import types

import pytest

from tests import conftest


class _Item:
    def __init__(self, nodeid: str, slow: bool, fixtures: tuple[str, ...] = ()) -> None:
        self.nodeid = nodeid
        self.fixturenames = fixtures
        self._slow = slow

    def get_closest_marker(self, name: str):
        return object() if name == "slow" and self._slow else None


def _fake_transformers() -> types.ModuleType:
    module = types.ModuleType("fake_modeling_utils")

    class PreTrainedModel:
        def __init__(self, width: int) -> None:
            self.width = width

    module.PreTrainedModel = PreTrainedModel
    return module


def test_building_a_model_fails_a_test_not_marked_slow(monkeypatch: pytest.MonkeyPatch) -> None:
    module = _fake_transformers()
    conftest._guard_models(module)
    conftest._guard_models(module)  # idempotent: one wrapper, not two
    monkeypatch.setitem(conftest._current, "item", _Item("tests/unit/test_x.py::test_fast", slow=False))
    with pytest.raises(conftest.SlowMarkerError, match=r"test_x.py::test_fast builds a model \(PreTrainedModel\)"):
        module.PreTrainedModel(3)
    monkeypatch.setitem(conftest._current, "item", _Item("tests/unit/test_x.py::test_slow", slow=True))
    assert module.PreTrainedModel(3).width == 3
    monkeypatch.setitem(conftest._current, "item", None)  # outside a test (collection, bench scripts)
    assert module.PreTrainedModel(4).width == 4


def test_the_tiny_model_fixture_without_slow_is_a_collection_error() -> None:
    items = [
        _Item("a.py::test_marked", slow=True, fixtures=("tiny_model_dir",)),
        _Item("a.py::test_pure", slow=False, fixtures=("tmp_path",)),
        _Item("a.py::test_forgot", slow=False, fixtures=("tmp_path", "tiny_model_dir")),
    ]
    with pytest.raises(pytest.UsageError, match="not marked slow") as err:
        conftest.pytest_collection_modifyitems(None, items)  # type: ignore[arg-type]
    assert "a.py::test_forgot" in str(err.value) and "test_marked" not in str(err.value)
    conftest.pytest_collection_modifyitems(None, items[:2])  # type: ignore[arg-type]


def test_the_guard_is_active_in_this_session() -> None:
    """Either transformers is loaded and guarded, or the import hook waits for it."""
    import sys

    loaded = sys.modules.get(conftest.MODEL_MODULE)
    if loaded is not None:
        assert loaded.PreTrainedModel.__init__._grm_slow_guard
    else:
        assert any(type(f).__name__ == "_GuardOnImport" for f in sys.meta_path)
