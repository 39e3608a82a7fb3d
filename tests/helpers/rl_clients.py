"""The reward clients of the RL trainers, pinned as they call a remote reward (none of the trainers is installed in
the test environment; TRL is, and is driven directly). Each reproduces what its trainer sends and how it reacts to
an error, from the trainer's source:

- OpenRLHF (``openrlhf/utils/remote_rm_utils.py``, ``request_api_wrapper``): ``requests.post(url, json={"query",
  "prompts", "labels"}, headers={"Content-Type": ...}, timeout=180)``, ``raise_for_status``, 5 tries 1 s apart
  whatever the status (``Retry-After`` ignored), ``None`` after the last; no way to add a header (the URL is all
  it is configured with).
- slime (``slime/rollout/rm_hub/__init__.py``, ``remote_rm``): one ``aiohttp`` POST per sample of
  ``{"prompt", "response", "label"}`` to ``--rm-url``, ``raise_for_status``, the JSON answer is the reward.
- verl (``verl/workers/reward_manager``): ``compute_score(data_source, solution_str, ground_truth, extra_info)``
  per sample, with the dataset's ``extra_info`` and nothing else (no ``uid``).
"""

from __future__ import annotations

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


async def slime_remote_rm(session: Any, url: str, prompt: Any, response: str, label: Any = None) -> Any:
    """slime's ``remote_rm`` for one sample (the caller owns the aiohttp session, as slime's rollout does)."""
    payload = {"prompt": prompt, "response": response, "label": label}
    async with session.post(url, json=payload) as resp:
        resp.raise_for_status()
        return await resp.json()
