"""``grm serve``: the GRM as a reward service (FastAPI on uvicorn) over any sampler.

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

__all__ = ["CompletionService", "RequestError", "parse_completion_request", "start_in_thread", "serve_command"]


def start_in_thread(*args: Any, **kwargs: Any) -> Any:
    """See ``grm.serving.server.start_in_thread``."""
    from grm.serving.server import start_in_thread as _start

    return _start(*args, **kwargs)


def serve_command(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_model_name: str | None = None,
    *,
    meta_rm: str | None = None,
    template: str | None = None,
    api_key: str | None = None,
    api_key_file: str | None = None,
    trust_networks: tuple[str, ...] = (),
    allowed_hosts: tuple[str, ...] = (),
    stop_tokens: tuple[str, ...] = (),
    failed_reward: str = "mid",
    max_reward_batch: int = 8192,
    long_texts: str = "truncate",
    keep_alive_s: float = 600.0,
    k: int = 4,
    k_meta: int | None = None,
    temperature: float = 0.5,
    seed: int = 0,
    max_new_tokens: int = 512,
    max_batch_size: int = 64,
    max_wait_ms: float = 10.0,
    batching: bool = True,
    cache_size: int = 1024,
    max_pending_samples: int = 8192,
    request_timeout_s: float = 300.0,
    group_window_ms: float = 0.0,
    max_body_bytes: int = 4 * 1024 * 1024,
    max_items: int = 64,
    max_responses: int = 16,
    max_k: int = 32,
    max_text_chars: int = 32_000,
    max_principles_chars: int = 4000,
    header_timeout_s: float = 10.0,
    body_timeout_s: float = 30.0,
    max_connections: int = 8192,
    sampler_options: dict[str, Any] | None = None,
) -> None:
    """Entry point of ``grm serve``: build the sampler (``build_sampler(model)``) and the meta RM, then serve.

    Args:
        model: a sampler spec (model dir, ``world-teacher[:RATE]``, ``http://...`` upstream, ``vllm:PATH``).
        host / port: bind address (non-local needs an API key).
        served_model_name: name in ``/v1/models`` (default: the spec).
        meta_rm: a trained meta-RM directory (enables MetaRM@k).
        template: prompt template; None = the model's own (``compact`` for the world teacher, else ``deepseek-grm``;
            ``grm serve`` passes the one the registry recorded for ``champion``/``challenger``).
        api_key / api_key_file: the key required on every route but ``/health`` (``GRM_API_KEY`` when neither);
            a header, a ``/key/KEY/`` path prefix or ``?api_key=``.
        trust_networks: CIDRs served without a key (an explicit choice for a private cluster network).
        allowed_hosts: extra ``Host`` names a key-less loopback server answers.
        stop_tokens: control tokens stripped from responses besides the defaults and the model's own.
        failed_reward: what a sample with no parsed judgement gets (``mid``, ``null`` or a reward in [-1, 1]).
        max_reward_batch / long_texts: samples per ``/get_reward`` request; ``truncate`` or ``refuse`` long texts.
        keep_alive_s: idle keep-alive connection timeout.
        k / k_meta / temperature / seed / max_new_tokens: defaults for requests that leave them out.
        max_batch_size / max_wait_ms / batching / cache_size / max_pending_samples / request_timeout_s /
            group_window_ms: engine settings (``grm.serving.engine.EngineSettings``).
        max_body_bytes / max_items / max_responses / max_k / max_text_chars / max_principles_chars /
            body_timeout_s: request limits.
        header_timeout_s / max_connections: connection limits.
        sampler_options: options for ``build_sampler`` (device, num_threads, batch_size, ...).
    """
    from grm.prompts import TEMPLATES
    from grm.sampling import build_sampler
    from grm.serving.engine import EngineSettings
    from grm.serving.requests import Access, AppConfig, ScoringDefaults, ServerLimits, failed_reward_policy
    from grm.serving.server import ConnectionLimits, api_key_from_env, check_bind, loopback_hosts, serve
    from grm.serving.texts import stop_tokens as all_stop_tokens

    template = template or default_template(model)
    if template not in TEMPLATES:
        raise ValueError(f"--template {template!r}: use one of {', '.join(TEMPLATES)}")
    key = api_key_from_env(api_key, api_key_file)
    check_bind(host, key, tuple(trust_networks))  # before loading a model
    failed = failed_reward_policy(failed_reward)
    config = AppConfig(
        model_name=served_model_name or model,
        template=template,
        api_key=key,
        access=Access(tuple(trust_networks), loopback_hosts(host, key, tuple(trust_networks), tuple(allowed_hosts))),
        failed_reward=failed,
        defaults=ScoringDefaults(k, k_meta, temperature, seed, max_new_tokens),
        limits=ServerLimits(
            max_body_bytes=max_body_bytes,
            max_items=max_items,
            max_responses=max_responses,
            max_k=max_k,
            max_text_chars=max_text_chars,
            max_principles_chars=max_principles_chars,
            body_timeout_s=body_timeout_s,
            max_in_flight=max_connections,
            max_reward_batch=max_reward_batch,
            long_texts=long_texts,
        ),
        engine=EngineSettings(
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            batching=batching,
            max_pending_samples=max_pending_samples,
            cache_size=cache_size,
            request_timeout_s=request_timeout_s,
            group_window_ms=group_window_ms,
        ),
    )
    if k_meta is not None and meta_rm is None:
        raise ValueError("--k-meta needs --meta-rm DIR (a trained meta RM)")
    sampler = build_sampler(model, **{"progress": False, **(sampler_options or {})})
    config.stop_tokens = all_stop_tokens(stop_tokens, sampler)
    meta = None
    if meta_rm is not None:
        from grm.meta_rm import load_meta_scorer

        meta = load_meta_scorer(meta_rm)
    serve(config, sampler, host, port, meta, ConnectionLimits(header_timeout_s, keep_alive_s=keep_alive_s))


def default_template(model: str) -> str:
    """The template a sampler spec implies: ``compact`` for the embedded world's teacher, else ``deepseek-grm``."""
    return "compact" if is_world_teacher(model) else "deepseek-grm"
