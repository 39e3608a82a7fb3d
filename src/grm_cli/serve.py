"""``grm serve``: the GRM as a reward service (``/v1/score``, OpenRLHF ``/get_reward``, OpenAI ``/v1/completions``)."""

from __future__ import annotations

from typing import Annotated

import typer

PERF = "Throughput"
LIMITS = "Limits"
REGISTRY = "Registry"


def serve(
    model: Annotated[
        str,
        typer.Option(
            help="a local model dir, world-teacher[:RATE], http://HOST:PORT (vllm serve), vllm:PATH, or from the "
            "MLflow registry: champion, challenger, models:/NAME@ALIAS (with its registered meta RM)"
        ),
    ],
    host: Annotated[str, typer.Option(help="bind address; any other than 127.0.0.1 needs --api-key")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    served_model_name: Annotated[str | None, typer.Option(help="name reported by /v1/models")] = None,
    meta_rm: Annotated[str | None, typer.Option(help="trained meta-RM dir: enables MetaRM@k (k_meta)")] = None,
    template: Annotated[
        str | None,
        typer.Option(
            help="prompt template (deepseek-grm, compact); default: the one the registry recorded for champion/"
            "challenger, compact for world-teacher, else deepseek-grm"
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="the key required on every route but /health; prefer $GRM_API_KEY or --api-key-file (a command "
            "line is readable by local users). Clients send it as a Bearer header, a /key/KEY/ path prefix or "
            "?api_key=KEY"
        ),
    ] = None,
    api_key_file: Annotated[str | None, typer.Option(help="read the key from this file's first line")] = None,
    trust_network: Annotated[
        list[str] | None,
        typer.Option(help="serve clients in this CIDR without a key (repeatable; e.g. 10.0.0.0/8 for the cluster)"),
    ] = None,
    allowed_host: Annotated[
        list[str] | None, typer.Option(help="extra Host name a key-less loopback server answers (repeatable)")
    ] = None,
    stop_token: Annotated[
        list[str] | None,
        typer.Option(help="control token stripped from responses, besides common ones and the model's (repeatable)"),
    ] = None,
    failed_reward: Annotated[
        str,
        typer.Option(help="reward of a sample with no parsed judgement: mid (0), null, or a number in [-1, 1]"),
    ] = "mid",
    k: Annotated[int, typer.Option(help="default samples per item (Voting@k)")] = 4,
    k_meta: Annotated[int | None, typer.Option(help="default MetaRM@k kept samples (needs --meta-rm)")] = None,
    temperature: Annotated[float, typer.Option(help="default sampling temperature")] = 0.5,
    seed: Annotated[int, typer.Option(help="default seed (shuffles and sampling)")] = 0,
    max_new_tokens: Annotated[int, typer.Option(help="default generation budget per judgement")] = 512,
    max_batch_size: Annotated[int, typer.Option(help="generations per sampler cycle", rich_help_panel=PERF)] = 64,
    max_wait_ms: Annotated[
        float, typer.Option(help="how long a request waits for others to batch with", rich_help_panel=PERF)
    ] = 10.0,
    batching: Annotated[
        bool, typer.Option(help="merge concurrent requests into shared calls", rich_help_panel=PERF)
    ] = (True),
    cache_size: Annotated[int, typer.Option(help="cached results of identical requests", rich_help_panel=PERF)] = 1024,
    group_window_ms: Annotated[
        float,
        typer.Option(
            help="group mode: judge per-sample requests of one prompt together (0 = off)", rich_help_panel=PERF
        ),
    ] = 0.0,
    max_pending_samples: Annotated[
        int, typer.Option(help="queued generations before 429 + Retry-After", rich_help_panel=LIMITS)
    ] = 8192,
    request_timeout_s: Annotated[float, typer.Option(help="504 after this long", rich_help_panel=LIMITS)] = 300.0,
    max_body_bytes: Annotated[int, typer.Option(help="request body limit (413)", rich_help_panel=LIMITS)] = 4 << 20,
    max_items: Annotated[
        int,
        typer.Option(help="items per /v1/score batch (and per job of a /get_reward batch)", rich_help_panel=LIMITS),
    ] = 64,
    max_reward_batch: Annotated[
        int,
        typer.Option(help="samples per /get_reward request (a whole OpenRLHF rollout)", rich_help_panel=LIMITS),
    ] = 8192,
    long_texts: Annotated[
        str, typer.Option(help="over --max-text-chars: truncate (reported) or refuse (400)", rich_help_panel=LIMITS)
    ] = "truncate",
    keep_alive_s: Annotated[
        float, typer.Option(help="idle keep-alive connection timeout (seconds)", rich_help_panel=LIMITS)
    ] = 600.0,
    max_responses: Annotated[int, typer.Option(help="responses per item", rich_help_panel=LIMITS)] = 16,
    max_k: Annotated[int, typer.Option(help="largest k a request may ask for", rich_help_panel=LIMITS)] = 32,
    max_text_chars: Annotated[int, typer.Option(help="characters per query/response", rich_help_panel=LIMITS)] = 32000,
    max_principles_chars: Annotated[
        int, typer.Option(help="characters of caller-supplied principles per item", rich_help_panel=LIMITS)
    ] = 4000,
    header_timeout_s: Annotated[float, typer.Option(help="request head deadline", rich_help_panel=LIMITS)] = 10.0,
    body_timeout_s: Annotated[float, typer.Option(help="request body deadline (408)", rich_help_panel=LIMITS)] = 30.0,
    max_connections: Annotated[
        int, typer.Option(help="requests in flight (503 + Retry-After beyond)", rich_help_panel=LIMITS)
    ] = 8192,
    device: Annotated[str, typer.Option(help="torch device for a local model")] = "cpu",
    num_threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per forward batch (local model)")] = 16,
    chat_template: Annotated[bool, typer.Option(help="wrap prompts in the tokenizer's chat template")] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="let the model repo run its own code")] = False,
    project_dir: Annotated[
        str, typer.Option(help="project whose MLflow store holds the registry", rich_help_panel=REGISTRY)
    ] = ".",
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default: the project's)", rich_help_panel=REGISTRY)
    ] = None,
    registry_model_name: Annotated[str, typer.Option(help="registered GRM name", rich_help_panel=REGISTRY)] = "grm",
    registry_meta_name: Annotated[str, typer.Option(help="registered meta-RM name", rich_help_panel=REGISTRY)] = (
        "grm-meta-rm"
    ),
) -> None:
    """Serve a GRM as a reward: POST /v1/score (Voting@k, MetaRM@k), /get_reward (OpenRLHF), /v1/completions."""
    from grm.serving import serve_command
    from grm_cli.models import resolve_model

    spec = model
    resolved = resolve_model(model, project_dir, tracking_uri, registry_model_name, registry_meta_name)
    model, meta_rm, template = resolved.model, meta_rm or resolved.meta_rm, template or resolved.template

    options = {
        "device": device,
        "num_threads": num_threads,
        "batch_size": batch_size,
        "chat_template": chat_template,
        "trust_remote_code": trust_remote_code,
    }
    serve_command(
        model,
        host=host,
        port=port,
        served_model_name=served_model_name or spec,
        meta_rm=meta_rm,
        template=template,
        api_key=api_key,
        api_key_file=api_key_file,
        trust_networks=tuple(trust_network or ()),
        allowed_hosts=tuple(allowed_host or ()),
        stop_tokens=tuple(stop_token or ()),
        failed_reward=failed_reward,
        max_reward_batch=max_reward_batch,
        long_texts=long_texts,
        keep_alive_s=keep_alive_s,
        k=k,
        k_meta=k_meta,
        temperature=temperature,
        seed=seed,
        max_new_tokens=max_new_tokens,
        max_batch_size=max_batch_size,
        max_wait_ms=max_wait_ms,
        batching=batching,
        cache_size=cache_size,
        max_pending_samples=max_pending_samples,
        request_timeout_s=request_timeout_s,
        group_window_ms=group_window_ms,
        max_body_bytes=max_body_bytes,
        max_items=max_items,
        max_responses=max_responses,
        max_k=max_k,
        max_text_chars=max_text_chars,
        max_principles_chars=max_principles_chars,
        header_timeout_s=header_timeout_s,
        body_timeout_s=body_timeout_s,
        max_connections=max_connections,
        sampler_options=options,
    )
