"""What ``grm run`` prints: tasks.prefect_env's logging setup (our INFO lines in, repeated library chatter out)."""

from __future__ import annotations

import logging

from tasks import prefect_env


def _record(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_completed_task_state_lines_are_dropped_and_failures_kept() -> None:
    f = prefect_env.DropCompletedTaskStates()
    assert not f.filter(_record("prefect.task_runs", logging.INFO, "Finished in state Completed()"))
    assert f.filter(_record("prefect.task_runs", logging.ERROR, "Finished in state Failed('Task run failed')"))
    assert f.filter(_record("prefect.task_runs", logging.INFO, "stage rft.train computed in 4.36 s"))


def test_configure_logging_shows_grm_info_and_quiets_library_chatter() -> None:
    prefect_env.configure_logging()
    prefect_env.configure_logging()  # idempotent: one filter, not two
    assert logging.getLogger("grm.progress").getEffectiveLevel() == logging.INFO
    assert logging.getLogger("mlflow.store.db.utils").getEffectiveLevel() == logging.WARNING
    task_runs = logging.getLogger("prefect.task_runs")
    assert sum(isinstance(f, prefect_env.DropCompletedTaskStates) for f in task_runs.filters) == 1
    assert not task_runs.filter(_record("prefect.task_runs", logging.INFO, "Finished in state Completed()"))


def test_library_progress_bars_are_off_by_default_but_the_user_wins() -> None:
    env = {"HF_HUB_DISABLE_PROGRESS_BARS": "0"}
    applied = prefect_env.configure_defaults("/tmp/proj", env)
    assert env["HF_HUB_DISABLE_PROGRESS_BARS"] == "0" and "HF_HUB_DISABLE_PROGRESS_BARS" not in applied
    assert applied["HF_DATASETS_DISABLE_PROGRESS_BARS"] == "1"
