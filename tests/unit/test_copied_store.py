"""A copied project's MLflow store still names the original folder for its artifacts: refused, not written into."""

from __future__ import annotations

import pytest


def test_a_copied_projects_store_is_refused_before_it_writes_into_the_original(tmp_path):
    import shutil

    from grm.errors import UserError
    from tasks.mlflow_store import default_tracking_uri
    from tasks.tracking import Tracker

    first = tmp_path / "first"
    Tracker(default_tracking_uri(first), "spct_pipeline").experiment_id()
    assert Tracker(default_tracking_uri(first), "spct_pipeline").experiment_id()  # the original is fine
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    with pytest.raises(UserError, match="copied from another project") as info:
        Tracker(default_tracking_uri(copy), "spct_pipeline").experiment_id()
    assert str(first / "mlruns" / "artifacts") in str(info.value) and "tracking.experiment" in str(info.value)
    assert Tracker(default_tracking_uri(copy), "spct_pipeline-copy").experiment_id()  # the fix it names works
