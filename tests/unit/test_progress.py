"""grm.progress: periodic log lines with counts, rate and ETA without a TTY; a tqdm bar (and no lines) on one."""

from __future__ import annotations

import logging

import pytest

from grm import progress
from grm.progress import Progress, format_seconds, track


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_without_a_tty_a_line_every_interval_with_counts_rate_and_eta(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    caplog.set_level(logging.INFO, logger="grm.progress")
    bar = Progress(100, "sampling", unit="prompt", tty=False, interval_s=15, clock=clock)
    for _ in range(100):
        clock.now += 0.5  # 2 prompts/s: a line at 15 s, 30 s, 45 s
        bar.update()
    bar.close()
    assert bar.lines == [
        "sampling: 30/100 prompt (30%), 2.00 prompt/s, ETA 35s",
        "sampling: 60/100 prompt (60%), 2.00 prompt/s, ETA 20s",
        "sampling: 90/100 prompt (90%), 2.00 prompt/s, ETA 5s",
        "sampling: 100/100 prompt in 50s (2.00 prompt/s)",
    ]
    assert [r.getMessage() for r in caplog.records if r.name == "grm.progress"] == bar.lines


def test_a_loop_shorter_than_the_interval_logs_nothing() -> None:
    clock = Clock()
    with Progress(10, "fast", tty=False, interval_s=15, clock=clock) as bar:
        for _ in range(10):
            clock.now += 1.0
            bar.update()
    assert bar.lines == [] and bar.done == 10


def test_postfix_unknown_total_and_disabled() -> None:
    clock = Clock()
    bar = Progress(None, "train", unit="step", tty=False, interval_s=1, clock=clock)
    clock.now = 2.0
    bar.update(4, loss=0.123456)
    assert bar.lines == ["train: 4 step, 2.00 step/s; loss 0.1235"]
    quiet = Progress(5, "x", tty=False, interval_s=0, enabled=False, clock=clock)
    clock.now = 9.0
    quiet.update(5)
    quiet.close()
    assert quiet.lines == [] and quiet.done == 5


def test_on_a_tty_a_tqdm_bar_and_no_log_lines(capsys: pytest.CaptureFixture[str]) -> None:
    clock = Clock()
    with Progress(3, "bar-demo", unit="prompt", tty=True, interval_s=0, clock=clock) as bar:
        for _ in range(3):
            clock.now += 20
            bar.update()
    assert bar.lines == []
    assert "bar-demo" in capsys.readouterr().err  # tqdm drew on stderr


def test_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.ENV_INTERVAL, "60")
    assert Progress(1, "x", tty=False).interval_s == 60.0
    monkeypatch.setenv(progress.ENV_INTERVAL, "soon")
    with pytest.raises(ValueError, match=r"GRM_PROGRESS_INTERVAL_S='soon': must be a number of seconds >= 0"):
        Progress(1, "x", tty=False)


def test_track_counts_and_format_seconds() -> None:
    assert list(track(range(3), "t", enabled=False)) == [0, 1, 2]
    assert [format_seconds(s) for s in (0, 59.4, 60, 3599, 3600)] == ["0s", "59s", "1m00s", "59m59s", "1h00m"]
