"""``pipeline_run`` refuses a data folder with missing files before it opens a run or computes anything."""

import pytest
from prefect import get_run_logger  # noqa: F401  (pipeline_run's logger() imports it: pay that at collection)

from grm.config import ConfigError
from tasks.engine.runtime import pipeline_run


@pytest.mark.parametrize(("flow", "refused"), [("spct_pipeline", True), ("evaluate", False)])
def test_missing_general_data_stops_the_training_flow_at_load(tmp_path, flow, refused):
    folder = tmp_path / "mine"
    folder.mkdir()
    for split in ("train", "val", "test"):
        (folder / f"{split}.jsonl").write_text("", encoding="utf-8")
    overrides = ["data.source=mine", "tracking.enabled=false"]
    if refused:
        with (
            pytest.raises(ConfigError, match="general.jsonl does not exist"),
            pipeline_run(flow, None, overrides, tmp_path),
        ):
            pytest.fail("the flow body must not run")
        assert not (tmp_path / "artifacts").exists()
    else:
        with pipeline_run(flow, None, overrides, tmp_path) as ctx:
            assert ctx.cfg.data.source == "mine"
