"""``grm config`` prints the resolved config as loadable YAML with help texts and the defaults it differs from."""

from pathlib import Path

import yaml
from typer.testing import CliRunner

from grm.plan import load_pipeline
from grm_cli.app import app

CONFIGS = Path(__file__).parents[2] / "configs"


def test_grm_config_prints_a_config_that_loads_back_to_the_same_run(tmp_path):
    res = CliRunner().invoke(app, ["config", "--config", str(CONFIGS / "tiny.yaml"), "--set", "rl.max_steps=0"])
    assert res.exit_code == 0, res.output
    (tmp_path / "out.yaml").write_text(res.output, encoding="utf-8")
    expected = load_pipeline([CONFIGS / "tiny.yaml"], ["rl.max_steps=0"])
    assert load_pipeline([tmp_path / "out.yaml"]) == expected
    lines = res.output.splitlines()
    assert "  max_steps: 0  # default: 150" in lines
    assert "gate_metric: eval/world/rft/voting_k4/accuracy  # default: eval/world/rl/voting_k8/accuracy" in [
        line.strip() for line in lines
    ]
    assert any(line.strip().startswith("# group size G (paper: 4)") for line in lines)
    assert all(len(line) <= 120 for line in lines)
    assert yaml.safe_load(res.output)["name"] == "e2e-tiny"


def test_grm_config_reports_a_bad_override():
    res = CliRunner().invoke(app, ["config", "--set", "rl.max_steps=-1"])
    assert res.exit_code == 2 and "rl.max_steps=-1" in res.stderr and "Traceback" not in res.output
