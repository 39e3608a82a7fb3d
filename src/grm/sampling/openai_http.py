"""Sampler over an OpenAI-compatible ``POST /v1/completions`` endpoint (``vllm serve``, ``grm serve``, ...).

One request per prompt (``concurrency`` in flight), ``n`` samples per request when the server supports it; if a
server returns fewer choices than asked (``transformers serve`` ignores ``n``), the rest is requested with fresh
derived seeds. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff; other 4xx fail at
once with the URL, status and the server's message.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from grm.method import voting
from grm.sampling.base import check_generate_args

logger = logging.getLogger(__name__)

_MAX_RETRY_AFTER_S = 30.0


class SamplerHTTPError(RuntimeError):
    """The server answered with an error status (or garbage) that retrying will not fix."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class SamplerTimeoutError(SamplerHTTPError):
    """Every attempt timed out."""


class SamplerConnectionError(SamplerHTTPError):
    """The server could not be reached after all retries."""


@dataclass
class HTTPStats:
    """Counters over the sampler's lifetime."""

    requests: int = 0
    retries: int = 0
    choices_received: int = 0
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        """Return the counters as a plain dict."""
        return asdict(self)


def derive_seed(*parts: int) -> int:
    """A stable 31-bit seed from integers (e.g. the call seed, the prompt index, a retry round).

    ``grm.method.voting.derive_seed`` cut to the range servers accept (vLLM and OpenAI-style APIs take int32 seeds).

    Args:
        parts: integers to mix.

    Returns:
        A seed in ``[0, 2**31)``, identical across runs and platforms.
    """
    return voting.derive_seed(*(int(p) for p in parts)) & 0x7FFFFFFF


def normalize_base_url(base_url: str) -> str:
    """Strip trailing slashes and a trailing ``/v1`` so that ``{base}/v1/completions`` is the endpoint.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000`` or ``http://127.0.0.1:8000/v1/``.

    Returns:
        The server root, e.g. ``http://127.0.0.1:8000``.
    """
    url = base_url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500]
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)[:500]
    return str(body)[:500]


def list_models(
    base_url: str, *, api_key: str | None = None, timeout: float = 10.0, client: httpx.Client | None = None
) -> list[str]:
    """Return the model ids served at ``GET {base_url}/v1/models``.

    Args:
        base_url: server root (a trailing ``/v1`` is accepted).
        api_key: bearer token, if the server needs one.
        timeout: seconds.
        client: an existing client to reuse (``base_url`` must then be absolute anyway).

    Returns:
        The ids, in the server's order.
    """
    url = f"{normalize_base_url(base_url)}/v1/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        if client is not None:
            response = client.get(url, headers=headers, timeout=timeout)
        else:
            response = httpx.get(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise SamplerConnectionError(
            f"Cannot reach {url}: {exc!r}. Is the server running (e.g. `vllm serve MODEL` or `grm serve`)?", url=url
        ) from exc
    if response.status_code != 200:
        raise SamplerHTTPError(
            f"GET {url} returned HTTP {response.status_code}: {_error_detail(response)}",
            url=url,
            status=response.status_code,
        )
    data = response.json().get("data", [])
    return [str(m["id"]) for m in data if isinstance(m, dict) and "id" in m]


class OpenAICompatSampler:
    """``Sampler`` over an OpenAI-compatible completions server (vLLM's ``vllm serve``, ``grm serve``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        supports_n: bool = True,
        concurrency: int = 4,
        top_p: float | None = None,
        extra_body: dict[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """Create the HTTP client (no request is sent here).

        Args:
            base_url: server root, e.g. ``http://127.0.0.1:8000`` (a trailing ``/v1`` is accepted).
            model: model name to put in each request (as listed by ``/v1/models``).
            api_key: bearer token; the caller reads it from wherever it lives (not from env vars here).
            timeout: seconds per request (connect + read).
            max_retries: retries after the first attempt on connection errors, timeouts, 429 and 5xx.
            backoff: first retry delay in seconds, doubled at each retry (a ``Retry-After`` header wins).
            supports_n: send ``n`` in one request; False sends one request per sample.
            concurrency: requests in flight at once.
            top_p: nucleus threshold to send (None = server default).
            extra_body: extra JSON fields merged into every request (e.g. ``{"top_k": 20}`` for vLLM).
            transport: custom httpx transport (tests).
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.base_url = normalize_base_url(base_url)
        self.url = f"{self.base_url}/v1/completions"
        self.model = model
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.supports_n = supports_n
        self.concurrency = concurrency
        self.top_p = top_p
        self.extra_body = dict(extra_body or {})
        self.stats = HTTPStats()
        self._stats_lock = threading.Lock()
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> OpenAICompatSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(
        self, prompts: Sequence[str], n: int, temperature: float, max_new_tokens: int, seed: int
    ) -> list[list[str]]:
        """Sample ``n`` completions per prompt from the server.

        Args:
            prompts: prompt texts (sent as is; apply chat templates before, or use the server's chat endpoint).
            n: samples per prompt.
            temperature: 0 = greedy (one request, copied ``n`` times).
            max_new_tokens: ``max_tokens`` of each request.
            seed: base seed; prompt ``i`` uses ``derive_seed(seed, i)``.

        Returns:
            ``n`` generated texts per prompt, in prompt order.
        """
        if isinstance(prompts, str):
            raise TypeError("prompts must be a sequence of strings, not a single string; wrap it in a list.")
        check_generate_args(n, temperature, max_new_tokens)
        start = time.perf_counter()
        jobs = list(enumerate(prompts))

        def one(job: tuple[int, str]) -> list[str]:
            i, prompt = job
            return self._sample_prompt(prompt, n, temperature, max_new_tokens, derive_seed(seed, i))

        if self.concurrency == 1 or len(jobs) <= 1:
            out = [one(j) for j in jobs]
        else:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="grm-http") as pool:
                out = list(pool.map(one, jobs))
        with self._stats_lock:
            self.stats.wall_seconds += time.perf_counter() - start
        return out

    # ----- internals -----

    def _sample_prompt(self, prompt: str, n: int, temperature: float, max_tokens: int, seed: int) -> list[str]:
        if temperature == 0.0:
            # Greedy samples are identical: one sample, copied.
            return self._request(prompt, 1, temperature, max_tokens, seed)[:1] * n
        texts: list[str] = []
        rounds = 0
        while len(texts) < n:
            want = n - len(texts) if self.supports_n else 1
            got = self._request(
                prompt, want, temperature, max_tokens, seed if rounds == 0 else derive_seed(seed, rounds)
            )
            if not got:
                raise SamplerHTTPError(
                    f"POST {self.url} returned no choices for a request with n={want}", url=self.url
                )
            if self.supports_n and len(got) < want and rounds == 0:
                logger.warning(
                    "%s returned %d of %d requested choices; requesting the rest (pass supports_n=False for this server)",
                    self.url,
                    len(got),
                    want,
                )
            texts.extend(got[:want])
            rounds += 1
        return texts

    def _request(self, prompt: str, n: int, temperature: float, max_tokens: int, seed: int) -> list[str]:
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }
        if n != 1:
            body["n"] = n
        if self.top_p is not None and temperature > 0:
            body["top_p"] = self.top_p
        body.update(self.extra_body)
        response = self._post_with_retries(body)
        try:
            payload = response.json()
            choices = sorted(payload["choices"], key=lambda c: int(c.get("index", 0)))
            texts = [str(c["text"]) for c in choices]
        except (ValueError, KeyError, TypeError) as exc:
            raise SamplerHTTPError(
                f"POST {self.url} returned an unexpected body (no choices[].text): {response.text[:300]!r}",
                url=self.url,
                status=response.status_code,
            ) from exc
        with self._stats_lock:
            self.stats.choices_received += len(texts)
        return texts

    def _post_with_retries(self, body: dict[str, Any]) -> httpx.Response:
        last: str = ""
        last_status: int | None = None
        kind: type[SamplerHTTPError] = SamplerHTTPError
        for attempt in range(self.max_retries + 1):
            if attempt:
                with self._stats_lock:
                    self.stats.retries += 1
            with self._stats_lock:
                self.stats.requests += 1
            retry_after: float | None = None
            try:
                response = self._client.post(self.url, json=body)
            except httpx.TimeoutException as exc:
                last, last_status = f"timed out after {self.timeout:g}s ({type(exc).__name__})", None
                kind = SamplerTimeoutError
            except httpx.TransportError as exc:
                last, last_status = f"connection failed ({exc!r})", None
                kind = SamplerConnectionError
            else:
                if response.status_code == 200:
                    return response
                detail = _error_detail(response)
                if response.status_code != 429 and response.status_code < 500:
                    raise SamplerHTTPError(
                        f"POST {self.url} returned HTTP {response.status_code}: {detail}. "
                        "Check the model name (GET /v1/models lists it) and the request fields.",
                        url=self.url,
                        status=response.status_code,
                    )
                last, last_status = f"HTTP {response.status_code}: {detail}", response.status_code
                kind = SamplerHTTPError
                retry_after = _parse_retry_after(response.headers.get("retry-after"))
            if attempt == self.max_retries:
                break
            delay = retry_after if retry_after is not None else self.backoff * (2**attempt)
            logger.warning("POST %s %s; retry %d/%d in %.2fs", self.url, last, attempt + 1, self.max_retries, delay)
            time.sleep(delay)
        hint = {
            SamplerTimeoutError: "raise timeout= or lower max_new_tokens",
            SamplerConnectionError: "check that the server is running and base_url is right",
        }.get(kind, "the server keeps failing; check its logs")
        raise kind(
            f"POST {self.url} failed after {self.max_retries + 1} attempt(s): {last}; {hint}.",
            url=self.url,
            status=last_status,
        )


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S)
    except ValueError:
        return None
