"""The error a request gets from the scoring engine (or a route that schedules work): a status and, for
back-pressure, when to retry. Below the engine, the group window and the principles generator, which all raise it."""

from __future__ import annotations


class EngineError(Exception):
    """A request the engine refuses or could not finish: ``status`` (429, 503, 504, 400, 500) and
    ``retry_after`` seconds when retrying later can help."""

    def __init__(self, message: str, status: int, retry_after: int | None = None, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.param = param
