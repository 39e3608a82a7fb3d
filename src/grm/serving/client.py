"""A client for a running ``grm serve`` (httpx only): ``ScoreClient`` (sync and async ``/v1/score``) and
``RemoteGRMReward``, the TRL reward function in remote mode (``grm.integrations.trl.grm_reward("http://...")``; async, so TRL runs it
concurrently with its other async rewards).

429/503 answers are retried after their ``Retry-After`` (back-pressure); 4xx errors are raised at once with the
server's message, which names the field.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from typing import Any

import httpx

from grm.method.completion_text import completion_text

RETRYABLE = (429, 502, 503, 504)


class GRMServerError(RuntimeError):
    """The server answered an error (``status``; ``param`` names the field for a 4xx)."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(f"grm serve answered HTTP {status}: {message}")
        self.status = status
        self.param = param


def _error(resp: httpx.Response) -> GRMServerError:
    try:
        err = resp.json()["error"]
        return GRMServerError(resp.status_code, err.get("message", ""), err.get("param"))
    except Exception:
        return GRMServerError(resp.status_code, resp.text[:300])


def _wait(resp: httpx.Response, attempt: int) -> float:
    try:
        return min(float(resp.headers.get("retry-after", "")), 30.0)
    except ValueError:
        return min(0.5 * 2**attempt, 30.0)


class ScoreClient:
    """Calls ``POST /v1/score`` (and ``/get_reward``) of a ``grm serve``.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000`` (default ``$GRM_URL``).
        api_key: bearer token (default ``$GRM_API_KEY``).
        timeout: seconds per request.
        max_retries: retries on 429/502/503/504 and connection errors.
    """

    def __init__(
        self, url: str | None = None, api_key: str | None = None, timeout: float = 300.0, max_retries: int = 5
    ) -> None:
        self.url = (url or os.environ.get("GRM_URL") or "http://127.0.0.1:8000").rstrip("/")
        key = api_key or os.environ.get("GRM_API_KEY")
        self.headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = timeout
        self.max_retries = max_retries
        self._async: httpx.AsyncClient | None = None
        self._async_loop: Any = None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``path`` and return the JSON answer (retrying back-pressure answers)."""
        for attempt in range(self.max_retries + 1):
            try:
                resp = httpx.post(self.url + path, json=body, headers=self.headers, timeout=self.timeout)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
                time.sleep(min(0.5 * 2**attempt, 10))
                continue
            if resp.status_code in RETRYABLE and attempt < self.max_retries:
                time.sleep(_wait(resp, attempt))
                continue
            if resp.status_code != 200:
                raise _error(resp)
            return resp.json()
        raise AssertionError("unreachable")

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:  # one pooled client per event loop
            self._async = httpx.AsyncClient(headers=self.headers, timeout=self.timeout)
            self._async_loop = loop
        return self._async

    async def apost(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``post`` for asyncio callers."""
        client = self._client()
        for attempt in range(self.max_retries + 1):
            try:
                resp = await client.post(self.url + path, json=body)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
                await asyncio.sleep(min(0.5 * 2**attempt, 10))
                continue
            if resp.status_code in RETRYABLE and attempt < self.max_retries:
                await asyncio.sleep(_wait(resp, attempt))
                continue
            if resp.status_code != 200:
                raise _error(resp)
            return resp.json()
        raise AssertionError("unreachable")

    def score(self, query: Any, responses: Sequence[str], **options: Any) -> dict[str, Any]:
        """Score one item; ``options`` are ``k``, ``k_meta``, ``temperature``, ``seed``, ``return_samples``..."""
        return self.post("/v1/score", {"query": query, "responses": list(responses), **_clean(options)})

    async def ascore(self, query: Any, responses: Sequence[str], **options: Any) -> dict[str, Any]:
        return await self.apost("/v1/score", {"query": query, "responses": list(responses), **_clean(options)})

    async def ascore_sample(self, prompt: Any, response: str, **options: Any) -> dict[str, Any]:
        """Per-sample form (group mode joins it to its prompt's group when the server has a window)."""
        return await self.apost("/v1/score", {"prompt": prompt, "response": response, **_clean(options)})

    def score_sample(self, prompt: Any, response: str, **options: Any) -> dict[str, Any]:
        return self.post("/v1/score", {"prompt": prompt, "response": response, **_clean(options)})

    async def ascore_items(
        self, items: Sequence[tuple[Any, ...]], chunk: int = 32, **options: Any
    ) -> list[dict[str, Any]]:
        """Score many items (``(query, responses)`` or ``(query, responses, principles)``), ``chunk`` per request,
        the requests concurrently (the server batches them)."""
        rows = [
            {"query": it[0], "responses": list(it[1]), **({"principles": it[2]} if len(it) > 2 and it[2] else {})}
            for it in items
        ]
        bodies = [{"items": rows[i : i + chunk], **_clean(options)} for i in range(0, len(rows), chunk)]
        answers = await asyncio.gather(*(self.apost("/v1/score", b) for b in bodies))
        return [r for a in answers for r in a["results"]]


def _clean(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if v is not None}


class RemoteGRMReward:
    """``GRMReward`` over a running ``grm serve``: the same items (pointwise, or ``group_size`` consecutive
    completions of one prompt judged together) sent to ``/v1/score``; the reward is the mean voted score scaled to
    [0, 1] (``normalize``) or on 1..10, ``None`` (TRL: skip) when no sample parsed. ``await reward(prompts=...,
    completions=...)`` (TRL calls it so); ``reward.sync(...)`` outside an event loop.

    Args:
        url: the server.
        k / k_meta / temperature / max_new_tokens: sent with each request (None = the server's defaults).
        seed: base seed; each call advances it so successive batches get fresh shuffles.
        group_size: judge groups of this many consecutive completions together; None = pointwise.
        normalize: map 1..10 to [0, 1].
        principle_mode: ``query_only``: the server writes principles once per prompt (None = its default).
        api_key / timeout: client settings.

    A ``principles`` keyword (TRL passes dataset columns so: one entry per completion) gives each item the
    principles of its first completion (None or empty: the GRM writes its own).
    """

    __name__ = "grm_reward"

    def __init__(
        self,
        url: str,
        k: int | None = 4,
        temperature: float | None = 0.5,
        max_new_tokens: int | None = 512,
        seed: int = 0,
        group_size: int | None = None,
        normalize: bool = True,
        k_meta: int | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        principle_mode: str | None = None,
    ) -> None:
        if group_size is not None and group_size < 2:
            raise ValueError(f"GRMReward group_size={group_size}: use None for pointwise scoring or >= 2")
        self.client = ScoreClient(url, api_key=api_key, timeout=timeout)
        self.options = {
            "k": k,
            "k_meta": k_meta,
            "temperature": temperature,
            "max_new_tokens": max_new_tokens,
            "principle_mode": principle_mode,
        }
        self.seed = seed
        self.group_size = group_size
        self.normalize = normalize
        self._calls = 0

    def _items(self, prompts: Sequence[Any], completions: Sequence[Any]) -> list[tuple[Any, list[str]]]:
        texts = [completion_text(c) for c in completions]
        queries = [p if isinstance(p, str) else list(p) for p in prompts]
        size = self.group_size or 1
        if len(texts) % size:
            raise ValueError(f"{len(texts)} completions do not split into groups of group_size={size}")
        items = []
        for g in range(0, len(texts), size):
            if len({str(q) for q in queries[g : g + size]}) != 1:
                raise ValueError(f"completions {g}..{g + size - 1} do not share one prompt; check group_size")
            items.append((queries[g], texts[g : g + size]))
        return items

    def _rewards(self, results: list[dict[str, Any]]) -> list[float | None]:
        out: list[float | None] = []
        for res in results:
            for i in range(res["n"]):
                score = None if res["scores"] is None else res["scores"][i]
                out.append(None if score is None else ((score - 1) / 9 if self.normalize else score))
        return out

    async def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        items: list[tuple[Any, ...]] = list(self._items(prompts, completions))
        principles = kwargs.get("principles")
        if principles is not None:
            size = self.group_size or 1
            items = [(q, r, principles[i * size]) for i, (q, r) in enumerate(items)]
        self._calls += 1
        results = await self.client.ascore_items(items, seed=self.seed + self._calls, **self.options)
        return self._rewards(results)

    def sync(self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        """The same outside an event loop."""
        return asyncio.run(self(prompts, completions, **kwargs))
