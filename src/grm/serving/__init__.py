"""``grm serve``: the GRM as a reward service (FastAPI on uvicorn) over any sampler.

- ``grm.serving.serve_config``: ``ServeConfig``, every knob of ``grm serve`` (name, type, default, help, check).
- ``grm.serving.assemble``: a ``ServeConfig`` as the settings of each part (app, engine, limits, uvicorn).
- ``grm.serving.scoring``: jobs, units, Voting@k / MetaRM@k results (no web framework).
- ``grm.serving.engine``: asyncio dynamic batching, fairness, cache, back-pressure, group mode.
- ``grm.serving.app``: the FastAPI app (``/v1/score``, ``/get_reward``, ``/v1/completions``, ``/health``,
  ``/v1/models``, ``/metrics``, ``/docs``) and its limits.
- ``grm.serving.server``: uvicorn with header timeouts, ``start_in_thread`` and ``serve``.
- ``grm.serving.completions``: the OpenAI completions request parser and service.
- ``grm.serving.texts``: what trainers send made judgeable (tolerant prompt/response split, stop tokens, cuts).

Importing this package is cheap: FastAPI and uvicorn load only when a server is built.
"""

from __future__ import annotations

from typing import Any

from grm.sampling.spec import is_world_teacher
from grm.serving.completions import CompletionService, RequestError, parse_completion_request
from grm.serving.serve_config import ServeConfig, ServeConfigError

__all__ = [
    "CompletionService",
    "RequestError",
    "ServeConfig",
    "ServeConfigError",
    "parse_completion_request",
    "serve_command",
    "start_in_thread",
]


def start_in_thread(*args: Any, **kwargs: Any) -> Any:
    """See ``grm.serving.server.start_in_thread``."""
    from grm.serving.server import start_in_thread as _start

    return _start(*args, **kwargs)


def serve_command(config: ServeConfig) -> None:
    """Entry point of ``grm serve``: resolve the key, check the bind, build the sampler (``build_sampler``) and the
    meta RM, then serve until interrupted.

    Args:
        config: every knob (``grm.serving.serve_config.ServeConfig``, already checked); ``model`` is a sampler spec
            (the CLI resolves registry names first). ``template`` None = the model's own (``default_template``).

    Raises:
        ServeConfigError: a bind, key file or ``--k-meta`` the server cannot use (before a model is loaded).
    """
    from grm.sampling import build_sampler
    from grm.serving.access import api_key_from_env, check_bind
    from grm.serving.assemble import app_config
    from grm.serving.server import connection_limits, serve
    from grm.serving.texts import stop_tokens

    key = api_key_from_env(config.api_key, config.api_key_file)
    check_bind(config.host, key, tuple(config.trust_network))  # before loading a model
    if config.k_meta is not None and config.meta_rm is None:
        raise ServeConfigError("needs --meta-rm DIR (a trained meta RM)", field="--k-meta")
    sampler = build_sampler(config.model, **{"progress": False, **config.sampler_options()})
    template = config.template or default_template(config.model)
    app = app_config(config, key, stop_tokens(tuple(config.stop_token), sampler), template)
    meta = None
    if config.meta_rm is not None:
        from grm.meta_rm import load_meta_scorer

        meta = load_meta_scorer(config.meta_rm)
    serve(app, sampler, config.host, config.port, meta, connection_limits(config))


def default_template(model: str) -> str:
    """The template a sampler spec implies: ``compact`` for the embedded world's teacher, else ``deepseek-grm``."""
    return "compact" if is_world_teacher(model) else "deepseek-grm"
