"""Shared pytest fixtures, and the guard that keeps the ``slow`` marker honest.

Every test that builds, loads, trains or samples a real model must be marked ``slow`` (``make test-fast`` leaves
them out). Two checks enforce it, so a new test cannot forget the marker silently:

- at collection: a test that asks for the ``tiny_model_dir`` fixture without ``slow`` is a collection error;
- at run time: constructing any ``transformers.PreTrainedModel`` (``from_pretrained``, ``LlamaForCausalLM(cfg)``,
  every trainer and sampler goes through it) inside a test that is not ``slow`` fails that test. The hook is
  installed when ``transformers.modeling_utils`` is first imported, so tests that never touch transformers pay
  nothing for it.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytest_plugins = ["tests.helpers.xdist_groups"]  # `make test` on every core: shared fixtures built once

MODEL_MODULE = "transformers.modeling_utils"
_current: dict[str, Any] = {"item": None}  # the test whose setup or call is running (None outside of one)


class SlowMarkerError(AssertionError):
    """A test that builds or loads a model is not marked ``slow``."""


def _is_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


def _guard_models(module: ModuleType) -> None:
    """Wrap ``PreTrainedModel.__init__`` so that a non-slow test constructing a model fails, naming itself."""
    cls = module.PreTrainedModel
    if getattr(cls.__init__, "_grm_slow_guard", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def guarded(self: Any, *args: Any, **kwargs: Any) -> None:
        item = _current["item"]
        if item is not None and not _is_slow(item):
            raise SlowMarkerError(
                f"{item.nodeid} builds a model ({type(self).__name__}) but is not marked slow: "
                "add @pytest.mark.slow (or a module-level pytestmark = pytest.mark.slow)"
            )
        original(self, *args, **kwargs)

    guarded._grm_slow_guard = True  # type: ignore[attr-defined]
    cls.__init__ = guarded


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Install ``_guard_models`` right after ``transformers.modeling_utils`` is executed (whoever imports it)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != MODEL_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            original_exec(module)
            _guard_models(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def pytest_configure(config: pytest.Config) -> None:
    if MODEL_MODULE in sys.modules:
        _guard_models(sys.modules[MODEL_MODULE])
    elif not any(isinstance(f, _GuardOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _GuardOnImport())


@pytest.hookimpl(trylast=True)  # after tests/gpu/conftest.py has added its markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    bad = [it.nodeid for it in items if "tiny_model_dir" in getattr(it, "fixturenames", ()) and not _is_slow(it)]
    if bad:
        raise pytest.UsageError(
            "these tests use the tiny_model_dir fixture (a real model) but are not marked slow; add "
            "@pytest.mark.slow:\n  " + "\n  ".join(bad)
        )


def _watching(item: pytest.Item):
    _current["item"] = item
    try:
        return (yield)
    finally:
        _current["item"] = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):  # fixtures that load a model count too
    return (yield from _watching(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from _watching(item))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama causal LM (hidden 32, 2 layers, 64-word vocabulary) saved with safetensors."""
    from tests.helpers.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny_model") / "model")
