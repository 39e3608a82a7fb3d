"""tasks/service_env.py: the project's service settings file and how runs pick it up."""

from __future__ import annotations

import stat

import pytest

from grm.errors import UserError
from tasks import prefect_env, service_env


def test_write_then_read_round_trips_with_private_mode(tmp_path):
    path = service_env.write(tmp_path, {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "AWS_ACCESS_KEY_ID": "k"})
    assert service_env.read(tmp_path) == {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "AWS_ACCESS_KEY_ID": "k"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".services.*"))  # no temp file left


def test_missing_file_means_embedded(tmp_path):
    assert service_env.read(tmp_path) == {}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("MLFLOW_TRACKING_URI=a\nPREFECT_API_URLL=b\n", ":2: unknown setting 'PREFECT_API_URLL'"),
        ("# c\nno equals sign\n", ":2: expected KEY=VALUE"),
        ("PREFECT_API_URL=a\nPREFECT_API_URL=b\n", ":2: PREFECT_API_URL is set twice"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, text, needle):
    service_env.path_of(tmp_path).parent.mkdir()
    service_env.path_of(tmp_path).write_text(text)
    with pytest.raises(UserError, match="services.env" + needle.replace("(", r"\(").replace(")", r"\)")):
        service_env.read(tmp_path)


def test_environment_wins_and_project_switch_drops_other_projects_settings(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    service_env.write(a, {"MLFLOW_TRACKING_URI": "http://a:5000", "PREFECT_API_URL": "http://a:4200/api"})
    b.mkdir()
    env = {"PREFECT_API_URL": "http://mine:4200/api"}
    monkeypatch.setattr(prefect_env, "_APPLIED", {})
    monkeypatch.setattr(prefect_env.os, "environ", env)
    prefect_env.configure_defaults()  # environ=None path uses os.environ, patched above
    # cwd is not a, so nothing of a yet; apply a explicitly
    prefect_env.configure_defaults(a)
    assert env["MLFLOW_TRACKING_URI"] == "http://a:5000"
    assert env["PREFECT_API_URL"] == "http://mine:4200/api"  # the user's own setting wins
    prefect_env.configure_defaults(b)
    assert "MLFLOW_TRACKING_URI" not in env  # a's setting does not follow into b
    assert env["PREFECT_API_URL"] == "http://mine:4200/api"
