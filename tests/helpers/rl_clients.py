"""The reward clients of the RL trainers that cannot be installed here, reproduced from their source as they call a
remote reward. The installable ones run as their packages: OpenRLHF 0.11.2's ``SingleTurnAgentExecutor`` and verl
0.9.1's reward loop (``tests/integration/test_rl_client_packages.py``, ``requirements-rl-clients.txt``), TRL's
``GRPOTrainer``. What stays reproduced, and why:

- OpenRLHF <= 0.9 (``openrlhf/utils/remote_rm_utils.py``, ``request_api_wrapper``; the whole rollout in one POST):
  one version of a package per environment, and 0.11.2 (the current release) is the one installed.
  ``requests.post(url, json={"query", "prompts", "labels"}, headers={"Content-Type": ...}, timeout=180)``,
  ``raise_for_status``, 5 tries 1 s apart whatever the status (``Retry-After`` ignored), ``None`` after the last; no
  way to add a header (the URL is all it is configured with).
- slime (THUDM/slime ``slime/rollout/rm_hub/__init__.py``, ``remote_rm``, at commit 0b420f1): not on PyPI (``pip
  install slime`` gets an unrelated 2020 package, "Simple linear mixed effects model"); installed from git with
  Megatron and SGLang. One POST per sample of ``{"prompt", "response", "label"}`` to ``--rm-url`` on a shared
  ``aiohttp`` session (64 connections, 120 s total timeout), ``raise_for_status``, the JSON answer is the reward;
  up to 10 tries with a backoff of ``min(2 ** attempt, 30) + random()`` seconds, then the error is raised.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import requests


def openrlhf_remote_rm(url: str, queries: list[str], prompts: list[str], labels: list[Any] | None = None) -> Any:
    """OpenRLHF's remote reward call: the ``rewards`` list, or None when every try failed."""
    data = {"query": queries, "prompts": prompts, "labels": labels or [""] * len(queries)}
    for _ in range(5):
        try:
            response = requests.post(url=url, json=data, headers={"Content-Type": "application/json"}, timeout=180)
            response.raise_for_status()
            body = response.json()
            assert "rewards" in body, f"rewards not in {body}"
            return body["rewards"]
        except requests.RequestException:
            pass
        except Exception:
            pass
        time.sleep(1)
    return None


async def slime_remote_rm(
    session: Any, url: str, prompt: Any, response: str, label: Any = None, max_retries: int = 10
) -> Any:
    """slime's ``remote_rm`` for one sample (the caller owns the aiohttp session, as slime's module-level shared
    session); ``max_retries=1`` shows what a first attempt gets."""
    payload = {"prompt": prompt, "response": response, "label": label}
    for attempt in range(max_retries):
        try:
            async with session.post(url, json=payload) as resp:
                resp.raise_for_status()
                return await resp.json()
        except Exception:
            if attempt + 1 >= max_retries:
                raise
            await asyncio.sleep(min(2**attempt, 30) + random.random())
