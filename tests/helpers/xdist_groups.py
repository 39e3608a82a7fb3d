"""Keep shared fixtures built once when the suite runs on every core (``make test``: pytest-xdist, ``-n auto
--dist loadgroup``). Loaded by tests/conftest.py; does nothing without xdist's ``loadgroup`` distribution.

A test that uses a fixture shared beyond itself (scope module or class, defined in its test module: a server stack,
a trained model, a killed-and-resumed run) gets the xdist group of its module, so the module's shared fixtures are
built on one worker, once. The tests that use the session's one plain tiny run (``uninterrupted``,
tests/e2e/conftest.py: minutes to build) and the grouped tests of their modules form one group, so that run is made
once. Every other test goes to whichever worker is free. Cheap session fixtures (``tiny_model_dir``,
``prefect_server``) are built once per worker."""

from __future__ import annotations

import pytest

SHARED_RUN = "uninterrupted"


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def shared_group(item: pytest.Item) -> str | None:
    """The group that keeps ``item`` with the tests sharing its expensive fixture (None: any worker will do)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    if SHARED_RUN in info.names_closure:
        return SHARED_RUN
    for defs in info.name2fixturedefs.values():
        if any(d.scope != "function" and d.baseid.endswith(".py") for d in defs):
            return _module(item)
    return None


@pytest.hookimpl(wrapper=True)  # a wrapper runs before every plain hook, xdist's (marks -> node id suffixes) too
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    if getattr(config.option, "loadgroup", False):  # set on xdist's workers (where collection runs) by loadgroup
        _mark_groups(items)
    return (yield)


def _mark_groups(items: list[pytest.Item]) -> None:
    groups = {item.nodeid: shared_group(item) for item in items}
    joined = {_module(item) for item in items if groups[item.nodeid] == SHARED_RUN}
    for item in items:
        group = groups[item.nodeid]
        if group is not None and _module(item) in joined:
            group = SHARED_RUN
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
            _suffix(item, group)


def _suffix(item: pytest.Item, group: str) -> None:
    """xdist's loadgroup schedules by a ``@group`` suffix of the node id, which pytest-xdist 3.8 writes into
    ``item._nodeid``; pytest 9 reads the id from ``item._id``, so that suffix is lost and the groups with it. Set it
    where pytest 9 reads it (xdist's own write, where it still works, finds it already there)."""
    if "@" in item.nodeid.rsplit("::", 1)[-1] or not hasattr(item, "_id"):
        return
    from _pytest.nodeid import coerce_node_id

    item._id = coerce_node_id(f"{item.nodeid}@{group}")
