"""OpenAI-compatible ``/v1/completions`` over any ``Sampler`` (what ``OpenAICompatSampler`` talks to).

``prompt`` is a string or a list of strings; ``n``, ``temperature``, ``max_tokens``, ``seed``; ``top_p`` is refused
unless 1. Choices are ordered prompt-major: ``index = prompt_index * n + sample_index``, as in the OpenAI API.

Why not ``transformers serve``: in transformers 5.24 it needs ``transformers[serving]`` (the ``openai`` package),
ignores ``n`` (always one choice), rejects list prompts, samples only when the model's generation_config sets
``do_sample=True`` (otherwise ``temperature > 0`` is silently greedy) and seeds with a process-wide
``torch.manual_seed``.
"""

from __future__ import annotations

import math
import time
import uuid
from http import HTTPStatus
from typing import Any

from grm.sampling.base import Sampler

MAX_N = 256
MAX_PROMPTS = 1024
DEFAULT_MAX_TOKENS = 16  # the OpenAI API default


class RequestError(ValueError):
    """A client error, answered with its HTTP status and an OpenAI-style error body."""

    def __init__(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


def parse_completion_request(body: Any, model_name: str) -> dict[str, Any]:
    """Validate a ``/v1/completions`` JSON body.

    Args:
        body: the decoded JSON.
        model_name: the served model name (a different ``model`` is a 404, as in vLLM).

    Returns:
        ``{"prompts": [...], "n", "temperature", "max_tokens", "seed"}``.

    Raises:
        RequestError: the body is invalid (the message names the field).
    """
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if model is not None and model != model_name:
        raise RequestError(
            f"The model `{model}` does not exist; this server serves `{model_name}`.", HTTPStatus.NOT_FOUND, "model"
        )
    if body.get("stream"):
        raise RequestError("stream=true is not supported by grm serve; send stream=false.", param="stream")
    if body.get("echo"):
        raise RequestError("echo=true is not supported by grm serve.", param="echo")
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    else:
        raise RequestError("`prompt` must be a string or a non-empty list of strings.", param="prompt")
    if len(prompts) > MAX_PROMPTS:
        raise RequestError(f"At most {MAX_PROMPTS} prompts per request, got {len(prompts)}.", param="prompt")

    def integer(name: str, default: int, lo: int, hi: int | None = None) -> int:
        value = body.get(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise RequestError(f"`{name}` must be an integer {bound}, got {value!r}.", param=name)
        return value

    n = integer("n", 1, 1, MAX_N)
    max_tokens = integer("max_tokens", DEFAULT_MAX_TOKENS, 1)
    seed = integer("seed", 0, -(2**63), 2**63 - 1)
    temperature = body.get("temperature", 1.0)
    if temperature is None:
        temperature = 1.0
    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise RequestError(f"`temperature` must be a finite number >= 0, got {temperature!r}.", param="temperature")
    top_p = body.get("top_p")
    if top_p is not None and top_p != 1:
        raise RequestError(
            "`top_p` other than 1 is not supported by grm serve; configure it on the sampler.", param="top_p"
        )
    return {
        "prompts": prompts,
        "n": n,
        "temperature": float(temperature),
        "max_tokens": max_tokens,
        "seed": seed,
    }


class CompletionService:
    """Turns validated requests into OpenAI completion responses (the caller serialises sampler calls)."""

    def __init__(self, sampler: Sampler, model_name: str) -> None:
        """Wrap a sampler.

        Args:
            sampler: any ``Sampler``; if it has ``generate_with_details`` (``HFSampler``), usage and finish reasons
                are reported.
            model_name: the name clients put in ``model``.
        """
        self.sampler = sampler
        self.model_name = model_name
        self.created = int(time.time())

    def models(self) -> dict[str, Any]:
        """Return the ``/v1/models`` body."""
        card = {"id": self.model_name, "object": "model", "created": self.created, "owned_by": "grm"}
        return {"object": "list", "data": [card]}

    def complete(self, body: Any) -> dict[str, Any]:
        """Answer one ``/v1/completions`` request.

        Args:
            body: the decoded JSON request.

        Returns:
            The OpenAI ``text_completion`` body.
        """
        req = parse_completion_request(body, self.model_name)
        prompts, n = req["prompts"], req["n"]
        args = (prompts, n, req["temperature"], req["max_tokens"], req["seed"])
        detailed = getattr(self.sampler, "generate_with_details", None)
        if callable(detailed):
            rows = detailed(*args)
            texts = [[c.text for c in row] for row in rows]
        else:
            rows = None
            texts = self.sampler.generate(*args)
        if len(texts) != len(prompts) or any(len(row) != n for row in texts):
            raise RuntimeError(f"Sampler returned a wrong shape for {len(prompts)} prompts x n={n}")
        choices: list[dict[str, Any]] = []
        usage: dict[str, int] | None = None
        if rows is not None:
            prompt_tokens = sum(row[0].prompt_tokens for row in rows)
            completion_tokens = sum(c.completion_tokens for row in rows for c in row)
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        for i, row in enumerate(texts):
            for j, text in enumerate(row):
                finish = rows[i][j].finish_reason if rows is not None else None
                choices.append({"index": i * n + j, "text": text, "logprobs": None, "finish_reason": finish})
        out: dict[str, Any] = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
        }
        if usage is not None:
            out["usage"] = usage
        return out


def error_body(message: str, status: HTTPStatus, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": int(status)}}
