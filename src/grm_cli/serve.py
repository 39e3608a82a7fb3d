"""``grm serve``: an OpenAI-compatible ``/v1/completions`` server over any sampler (tests, demos, small teams)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve(
    model: Annotated[str, typer.Option(help="sampler spec: a local model dir, world-teacher[:RATE], vllm:PATH")],
    host: Annotated[str, typer.Option(help="bind address (keep 127.0.0.1 unless behind a proxy)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    served_model_name: Annotated[str | None, typer.Option(help="name reported by /v1/models")] = None,
    num_threads: Annotated[int | None, typer.Option(help="torch CPU threads")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per forward batch")] = 16,
    chat_template: Annotated[bool, typer.Option(help="wrap prompts in the tokenizer's chat template")] = False,
    trust_remote_code: Annotated[bool, typer.Option(help="let the model repo run its own code")] = False,
) -> None:
    """Serve a GRM over the OpenAI-compatible completions API (what `vllm serve` offers on GPUs)."""
    from grm.serving import serve_command

    serve_command(
        model,
        host=host,
        port=port,
        served_model_name=served_model_name,
        num_threads=num_threads,
        batch_size=batch_size,
        chat_template=chat_template,
        trust_remote_code=trust_remote_code,
    )
