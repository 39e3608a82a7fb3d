"""A ``ServeConfig`` turned into the app's settings (``AppConfig``: defaults, limits, engine, access); one mapping,
so a knob reaches its part by one path (uvicorn's are ``grm.serving.server.connection_limits``)."""

from __future__ import annotations

from typing import Any

from grm.serving.access import loopback_hosts
from grm.serving.engine import EngineSettings
from grm.serving.requests import Access, AppConfig, ScoringDefaults, ServerLimits
from grm.serving.serve_config import ServeConfig, failed_reward_policy
from grm.serving.texts import stop_tokens


def app_config(
    cfg: ServeConfig, api_key: str | None, stop_tokens: tuple[str, ...], template: str | None = None
) -> AppConfig:
    """The app's settings: ``api_key`` as resolved (``grm.serving.access.api_key_from_env``), ``stop_tokens`` with
    the model's own (``grm.serving.texts.stop_tokens``), ``template`` (default ``cfg.template`` or deepseek-grm)."""
    nets = tuple(cfg.trust_network)
    return AppConfig(
        model_name=cfg.served_model_name or cfg.model,
        template=template or cfg.template or "deepseek-grm",
        api_key=api_key,
        access=Access(nets, loopback_hosts(cfg.host, api_key, nets, tuple(cfg.allowed_host))),
        failed_reward=failed_reward_policy(cfg.failed_reward),
        defaults=ScoringDefaults(cfg.k, cfg.k_meta, cfg.temperature, cfg.seed, cfg.max_new_tokens),
        limits=ServerLimits(
            max_body_bytes=cfg.max_body_bytes,
            max_items=cfg.max_items,
            max_responses=cfg.max_responses,
            max_k=cfg.max_k,
            max_new_tokens=cfg.max_new_tokens_limit,
            max_text_chars=cfg.max_text_chars,
            max_principles_chars=cfg.max_principles_chars,
            body_timeout_s=cfg.body_timeout_s,
            max_in_flight=cfg.max_connections,
            max_reward_batch=cfg.max_reward_batch,
            long_texts=cfg.long_texts,
        ),
        engine=EngineSettings(
            max_batch_size=cfg.max_batch_size,
            max_wait_ms=cfg.max_wait_ms,
            batching=cfg.batching,
            max_pending_samples=cfg.max_pending_samples,
            cache_size=cfg.cache_size,
            request_timeout_s=cfg.request_timeout_s,
            group_window_ms=cfg.group_window_ms,
        ),
        stop_tokens=stop_tokens,
    )


def as_app_config(config: AppConfig | ServeConfig | None, sampler: Any) -> AppConfig:
    """``config`` as the app's settings: an ``AppConfig`` as is, a ``ServeConfig`` through ``app_config`` (its key as
    given, the model's own stop tokens added), None = the defaults."""
    if isinstance(config, ServeConfig):
        return app_config(config, config.api_key, stop_tokens(tuple(config.stop_token), sampler))
    return config or AppConfig()
