"""TRL reward functions: the GRM judging in process (``grm.rewards.GRMReward``, a local sampler) or over a running
``grm serve`` (``grm.serving.client.RemoteGRMReward``, async so TRL gathers it with its other rewards).

Both take ``(prompts, completions, **columns)`` and return one reward per completion (``None``: TRL skips it).
``grm_reward`` picks one from its first argument, so a recipe can name either a model or a server::

    from grm.integrations.trl import grm_reward
    trainer = GRPOTrainer(..., reward_funcs=[grm_reward("http://127.0.0.1:8000", k=4, group_size=8)])
"""

from __future__ import annotations

from typing import Any

from grm.rewards import GRMReward
from grm.serving.client import RemoteGRMReward

TRLReward = GRMReward | RemoteGRMReward
"""What ``grm_reward`` returns: an in-process ``GRMReward`` or a remote ``RemoteGRMReward``."""

_LOCAL_ONLY = ("template", "sampler_options", "remote")


def grm_reward(grm: Any, **options: Any) -> TRLReward:
    """A GRM reward for TRL: ``RemoteGRMReward(grm, ...)`` for an ``http(s)://`` URL of a running ``grm serve``,
    else ``GRMReward(grm, ...)`` (a sampler, a model folder, ``world-teacher``, ``vllm:PATH``).

    Args:
        grm: the server URL, or the sampler / sampler spec.
        options: the chosen class's keyword options (``k``, ``temperature``, ``group_size``, ``seed``,
            ``normalize``...). ``template`` and ``sampler_options`` apply only in process (the server has its own);
            ``api_key``, ``timeout``, ``k_meta`` and ``principle_mode`` only remotely.

    Raises:
        TypeError: an option the chosen class does not take.
    """
    if isinstance(grm, str) and grm.startswith(("http://", "https://")):
        return RemoteGRMReward(grm, **{k: v for k, v in options.items() if k not in _LOCAL_ONLY})
    return GRMReward(grm, **options)
