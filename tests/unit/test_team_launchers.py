"""tasks/team without services: bind rules, a project's settings, MLflow's allowed hosts, the pid-file lifecycle of
a background service (a real ``sleep`` process), an unknown service."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from grm.errors import UserError
from tasks.team import mlflow_server, processes, project, stack


def test_listening_on_every_interface_needs_the_name_clients_use() -> None:
    with pytest.raises(UserError, match="--advertise"):
        stack.check_bind("0.0.0.0", "")
    stack.check_bind("0.0.0.0", "gpu-box.lan")  # every service authenticates; clients get the advertised name
    stack.check_bind("127.0.0.1", "")


def test_project_settings_name_the_servers_and_accounts_but_no_s3_keys() -> None:
    state = stack.StackState(
        ports={"mlflow": 5001, "prefect": 4201, "s3": 8334},
        mlflow_password="pw",
        prefect_auth="grm:secret",
        s3_access_key="AK",
        s3_secret_key="SK",
        advertise="gpu-box.lan",
    )
    settings = project.settings(state)
    assert settings["MLFLOW_TRACKING_URI"] == "http://gpu-box.lan:5001"
    assert settings["PREFECT_API_URL"] == "http://gpu-box.lan:4201/api"
    assert settings["PREFECT_API_AUTH_STRING"] == "grm:secret"
    assert "SK" not in settings.values() and "AK" not in settings.values()  # DVC's keys go to .dvc/config.local


def test_mlflow_allows_the_advertised_name_with_and_without_port() -> None:
    hosts = mlflow_server.allowed_hosts("0.0.0.0", 5000, ("gpu-box.lan",)).split(",")
    assert {"gpu-box.lan:5000", "gpu-box.lan", "127.0.0.1:5000", "localhost:5000"} <= set(hosts)


def test_a_service_is_started_detached_recorded_and_stopped(tmp_path: Path) -> None:
    pid = processes.start(tmp_path, "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], env={})
    assert processes.running_pid(tmp_path, "sleeper") == pid
    assert processes.stop(tmp_path, "sleeper", grace_s=5)
    assert processes.running_pid(tmp_path, "sleeper") is None
    assert not processes.stop(tmp_path, "sleeper")  # already stopped: nothing to do
    assert "start:" in processes.log_file(tmp_path, "sleeper").read_text()


def test_a_service_that_exits_while_starting_names_its_log(tmp_path: Path) -> None:
    processes.start(tmp_path, "broken", [sys.executable, "-c", "print('bad flag'); raise SystemExit(3)"], env={})
    with pytest.raises(UserError, match=r"exited while starting; see .*broken\.log(.|\n)*bad flag"):
        processes.wait_until(lambda: False, "the broken service", 20, tmp_path, "broken")


def test_stopping_an_unknown_service_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="known: postgres, objectstore, mlflow, prefect, worker"):
        stack.stop_service(tmp_path, "redis")


def test_a_folder_without_a_stack_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="grm team up --dir"):
        stack.load(tmp_path)


def test_up_does_not_turn_a_folder_that_is_no_project_into_one(tmp_path: Path) -> None:
    state = stack.StackState(ports={"mlflow": 1, "prefect": 2, "s3": 3})
    with pytest.raises(UserError, match="not a project .*--no-connect"):
        project.connect(tmp_path, state)
    assert not (tmp_path / ".grm").exists() and not (tmp_path / ".dvc").exists()
