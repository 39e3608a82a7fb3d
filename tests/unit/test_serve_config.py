"""ServeConfig: one definition of every ``grm serve`` knob, read by the CLI, the core and the app; a bad value
exits 2 with one message naming the option, before any model is loaded."""

from __future__ import annotations

import dataclasses

import pytest
import typer
from typer.testing import CliRunner

from grm.serving.engine import EngineSettings
from grm.serving.requests import AppConfig, ScoringDefaults, ServerLimits
from grm.serving.serve_config import DEFAULTS, ServeConfig, ServeConfigError, option
from grm.serving.server import ConnectionLimits, connection_limits
from grm_cli.app import app
from grm_cli.serve import serve

runner = CliRunner()


def test_every_cli_option_is_a_knob_with_its_default_and_help():
    group = typer.main.get_command(app)
    command = group.get_command(group.context_class(group), "serve")  # type: ignore[attr-defined]
    options = {p.name: p for p in command.params if p.param_type_name == "option" and p.name != "help"}
    knobs = {f.name: f for f in dataclasses.fields(ServeConfig)}
    assert set(options) == set(knobs)
    for name, f in knobs.items():
        assert options[name].help == f.metadata["help"] and options[name].help
        assert option(name) in options[name].opts
        if f.default is not dataclasses.MISSING and f.default != ():
            assert options[name].default == f.default, name
    assert options["model"].required and options["trust_network"].multiple


def test_the_components_take_their_defaults_from_the_knobs():
    from grm.serving.assemble import app_config

    built = app_config(ServeConfig(model="m"), None, ())
    assert built.limits == ServerLimits() and built.defaults == ScoringDefaults() and built.engine == EngineSettings()
    assert built.failed_reward == AppConfig().failed_reward and connection_limits(ServeConfig(model="m")) == (
        ConnectionLimits()
    )
    assert ServerLimits().max_in_flight == DEFAULTS["max_connections"] == 8192


def test_a_knob_reaches_its_component():
    from grm.serving.assemble import app_config

    cfg = ServeConfig(model="m", max_items=3, max_connections=7, max_new_tokens_limit=999, group_window_ms=5.0)
    built = app_config(cfg, "key", ("</s>",))
    assert (built.limits.max_items, built.limits.max_in_flight, built.limits.max_new_tokens) == (3, 7, 999)
    assert built.engine.group_window_ms == 5.0 and built.api_key == "key" and built.stop_tokens == ("</s>",)


@pytest.mark.parametrize(
    ("flags", "named", "says"),
    [
        (["--max-k", "0"], "--max-k", ">= 1"),
        (["--k", "40"], "--k", "above --max-k 32"),
        (["--temperature", "-1"], "--temperature", ">= 0"),
        (["--failed-reward", "maybe"], "--failed-reward", "mid, null or a number"),
        (["--failed-reward", "3"], "--failed-reward", "[-1, 1]"),
        (["--long-texts", "drop"], "--long-texts", "truncate, refuse"),
        (["--template", "chatml"], "--template", "deepseek-grm, compact"),
        (["--port", "70000"], "--port", "TCP port"),
        (["--request-timeout-s", "0"], "--request-timeout-s", "> 0"),
        (["--k-meta", "2"], "--k-meta", "--meta-rm"),
        (["--host", "0.0.0.0"], "--host", "API key"),
        (["--trust-network", "10.0.0/33"], "--trust-network", "CIDR"),
        (["--api-key-file", "/nonexistent/key"], "--api-key-file", "/nonexistent/key"),
    ],
)
def test_a_bad_knob_exits_2_naming_the_option_before_loading_a_model(flags, named, says, monkeypatch):
    import grm.sampling

    monkeypatch.delenv("GRM_API_KEY", raising=False)
    monkeypatch.setattr(grm.sampling, "build_sampler", lambda *a, **k: pytest.fail("a model was loaded"))
    result = runner.invoke(app, ["serve", "--model", "world-teacher", *flags])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(f"error: {named}") and says in result.output, result.output
    assert "Traceback" not in result.output


def test_the_core_refuses_bad_values_too():
    with pytest.raises(ServeConfigError, match="--max-items"):
        ServeConfig(model="m", max_items=0)
    with pytest.raises(ValueError, match="--cache-size"):  # ServeConfigError is a ValueError for library callers
        ServeConfig(model="m", cache_size=-1)


def test_the_cli_passes_every_knob_to_the_core(monkeypatch):
    import grm.serving

    got: list[ServeConfig] = []
    monkeypatch.setattr(grm.serving, "serve_command", got.append)
    flags = ["--max-items", "5", "--trust-network", "10.0.0.0/8", "--trust-network", "192.168.0.0/16", "--no-batching"]
    result = runner.invoke(app, ["serve", "--model", "world-teacher", *flags])
    assert result.exit_code == 0, result.output
    (cfg,) = got
    assert cfg.max_items == 5 and cfg.trust_network == ("10.0.0.0/8", "192.168.0.0/16") and cfg.batching is False
    assert cfg.served_model_name == "world-teacher" and cfg.k == DEFAULTS["k"]
    assert serve.__name__ == "serve"


def test_a_server_started_from_a_serve_config_applies_its_knobs():
    import httpx

    from grm.sampling import build_sampler
    from grm.serving.server import start_in_thread

    cfg = ServeConfig(model="world-teacher", template="compact", max_items=1, k=2, served_model_name="teacher")
    server = start_in_thread(build_sampler("world-teacher"), config=cfg)
    try:
        item = {"query": "3 + 18 ?", "responses": ["21", "31"]}
        one = httpx.post(f"{server.url}/v1/score", json={"items": [item]}, timeout=30).json()
        assert one["model"] == "teacher" and one["results"][0]["k"] == 2 and one["results"][0]["best"] == 0
        two = httpx.post(f"{server.url}/v1/score", json={"items": [item, item]}, timeout=30)
        assert two.status_code == 400 and two.json()["error"]["param"] == "items" and "--max-items" in two.text
    finally:
        server.shutdown()
