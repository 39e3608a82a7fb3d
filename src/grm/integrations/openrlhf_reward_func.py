"""OpenRLHF ``reward_func`` file over a running ``grm serve``: ``--remote_rm_url /path/to/openrlhf_reward_func.py``
(OpenRLHF 0.11: ``--reward.remote_url``). OpenRLHF can also call the server directly with
``--remote_rm_url http://HOST:PORT/get_reward``; this file is for setups that keep the reward in ``.py`` mode
(e.g. to add a rule-based term).

``reward_func(queries, prompts, labels, **kwargs)`` posts to ``$GRM_URL/get_reward`` (default
``http://127.0.0.1:8000``; bearer ``$GRM_API_KEY``) and returns OpenRLHF's dict: ``rewards`` in [-1, 1],
``scores`` in [0, 1] (torch tensors when torch is importable, as OpenRLHF's examples return) and ``extra_logs``.
"""

from __future__ import annotations

import os
from typing import Any

from grm.serving.client import ScoreClient


def reward_func(queries: list[str], prompts: list[str], labels: list[Any] | None = None, **kwargs: Any) -> dict:
    """Score a batch of OpenRLHF samples (``queries[i]`` = ``prompts[i]`` + response) with the GRM server."""
    client = ScoreClient(os.environ.get("GRM_URL"), os.environ.get("GRM_API_KEY"))
    body = {"query": list(queries), "prompts": list(prompts), "labels": list(labels or [""] * len(queries))}
    answer = client.post("/get_reward", body)
    try:
        import torch
    except ImportError:  # pragma: no cover - OpenRLHF always has torch
        return answer
    return {
        "rewards": torch.tensor(answer["rewards"], dtype=torch.float32),
        "scores": torch.tensor(answer["scores"], dtype=torch.float32),
        "extra_logs": {k: torch.tensor(v, dtype=torch.float32) for k, v in answer["extra_logs"].items()},
    }
