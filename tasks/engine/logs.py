"""The pipeline's logger: Prefect's run logger inside a flow or task run, the module logger elsewhere."""

from __future__ import annotations

import logging


def logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow/task run, the module logger elsewhere (``task.fn`` in tests)."""
    try:
        from prefect import get_run_logger
        from prefect.exceptions import MissingContextError

        try:
            return get_run_logger()
        except MissingContextError:
            pass
    except ImportError:  # pragma: no cover - prefect is a dependency
        pass
    return logging.getLogger("grm.pipeline")
