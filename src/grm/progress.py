"""Progress of long loops (sampling, judging, training): a tqdm bar on a terminal, periodic log lines elsewhere.

On a TTY (stderr) the user gets a tqdm bar that disappears when the loop ends. Without one (CI, a Prefect worker,
``make run > log``) a bar would print a line per refresh, so the loop instead logs one line every
``interval_s`` seconds (15 by default, ``$GRM_PROGRESS_INTERVAL_S``) with done/total, rate and ETA, then one closing line with the total time;
a loop shorter than ``interval_s`` logs nothing (the stage's end line already gives its time).

Example:
    >>> ticks = iter(range(0, 100, 10))  # a clock that advances 10 s per reading
    >>> with Progress(4, "sampling", unit="prompt", tty=False, interval_s=15, clock=lambda: next(ticks)) as bar:
    ...     for _ in range(4):
    ...         bar.update()
    >>> bar.lines
    ['sampling: 2/4 prompt (50%), 0.10 prompt/s, ETA 20s', 'sampling: 4/4 prompt in 50s (0.08 prompt/s)']
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)
INTERVAL_S = 15.0
ENV_INTERVAL = "GRM_PROGRESS_INTERVAL_S"  # overrides INTERVAL_S (e.g. 60 for a quieter CI log, 0 for every update)


def default_interval() -> float:
    """``$GRM_PROGRESS_INTERVAL_S`` or ``INTERVAL_S``.

    Raises:
        ValueError: the variable is not a number >= 0.
    """
    raw = os.environ.get(ENV_INTERVAL)
    if raw is None or not raw.strip():
        return INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ValueError(f"${ENV_INTERVAL}={raw!r}: must be a number of seconds >= 0 (unset it for {INTERVAL_S:g})")
    return value


def stderr_is_tty() -> bool:
    """True when stderr is an interactive terminal (where a live bar renders)."""
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def format_seconds(seconds: float) -> str:
    """``59s``, ``1m05s``, ``2h03m``.

    >>> format_seconds(65.2), format_seconds(7380)
    ('1m05s', '2h03m')
    """
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class Progress:
    """Count ``done`` of ``total`` units; render as a tqdm bar (TTY) or periodic ``logging`` lines (no TTY)."""

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        enabled: bool = True,
        tty: bool | None = None,
        interval_s: float | None = None,
        log: logging.Logger | logging.LoggerAdapter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Start counting.

        Args:
            total: units expected (None: unknown; no percentage or ETA).
            desc: what is counted, first word of every line ("sampling", "rft.train").
            unit: unit name ("prompt", "step").
            enabled: False = silent (tests, nested loops).
            tty: force the bar (True) or the log lines (False); None = ``stderr_is_tty()``.
            interval_s: seconds between log lines without a TTY (None: ``default_interval()``).
            log: logger for the lines (default ``grm.progress``).
            clock: monotonic seconds (injectable for tests).
        """
        self.total = total
        self.desc = desc
        self.unit = unit
        self.enabled = enabled
        self.interval_s = default_interval() if interval_s is None else interval_s
        self.log = log or logger
        self.clock = clock
        self.done = 0
        self.postfix: dict[str, Any] = {}
        self.lines: list[str] = []  # the log lines emitted (kept for tests and callers)
        self._start = clock()
        self._last = self._start
        self._bar: Any = None
        if enabled and (stderr_is_tty() if tty is None else tty):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Add ``n`` done units; ``postfix`` (e.g. ``loss=0.41``) is shown on the bar / appended to the line."""
        self.done += n
        self.postfix.update(postfix)
        if not self.enabled:
            return
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(self.postfix, refresh=False)
            self._bar.update(n)
            return
        now = self.clock()
        if now - self._last >= self.interval_s and (self.total is None or self.done < self.total):
            self._last = now
            self._emit(self._line(now))

    def close(self) -> None:
        """End the bar, or log the closing line when at least one periodic line was logged."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.enabled and self.lines:
            now = self.clock()
            elapsed = now - self._start
            rate = self.done / elapsed if elapsed > 0 else 0.0
            total = f"/{self.total}" if self.total is not None else ""
            self._emit(
                f"{self.desc}: {self.done}{total} {self.unit} in {format_seconds(elapsed)} "
                f"({rate:.2f} {self.unit}/s){self._postfix()}"
            )
        self.enabled = False

    def _line(self, now: float) -> str:
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        if self.total is None:
            return f"{self.desc}: {self.done} {self.unit}, {rate:.2f} {self.unit}/s{self._postfix()}"
        pct = 100.0 * self.done / self.total if self.total else 100.0
        eta = format_seconds((self.total - self.done) / rate) if rate > 0 else "?"
        return (
            f"{self.desc}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {rate:.2f} {self.unit}/s, "
            f"ETA {eta}{self._postfix()}"
        )

    def _postfix(self) -> str:
        if not self.postfix:
            return ""
        parts = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.postfix.items()]
        return "; " + ", ".join(parts)

    def _emit(self, line: str) -> None:
        self.lines.append(line)
        self.log.info("%s", line)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def track(
    items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it", enabled: bool = True
) -> Iterator[T]:
    """Yield ``items`` while counting them with a ``Progress`` (``total`` defaults to ``len(items)``).

    >>> list(track([1, 2, 3], "demo", enabled=False))
    [1, 2, 3]
    """
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit=unit, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update()


def trainer_callback(desc: str, *, enabled: bool = True) -> Any:
    """A ``transformers.TrainerCallback`` that reports optimizer steps through ``Progress`` (latest loss shown).

    Use it instead of the Trainer's own ``ProgressCallback`` / ``PrinterCallback`` (remove those: they print a bar
    or raw log dicts to stdout): ``trainer.remove_callback(PrinterCallback)``, ``add_callback(trainer_callback(...))``.
    """
    from transformers import TrainerCallback

    class ProgressReporter(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.progress = Progress(state.max_steps or None, desc, unit="step", enabled=enabled)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.update(state.global_step - self.progress.done)

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any):
            if self.progress is not None and logs and "loss" in logs:
                self.progress.postfix["loss"] = float(logs["loss"])

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.close()
                self.progress = None

    return ProgressReporter()


def use_progress_callback(trainer: Any, desc: str, *, enabled: bool = True) -> None:
    """Swap the Trainer's stdout progress/printer callbacks for ``trainer_callback(desc)``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(trainer_callback(desc, enabled=enabled))
