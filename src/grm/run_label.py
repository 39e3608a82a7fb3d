"""Run names that say what a run changed: the resolved config diffed against the config it started from.

A parent MLflow run is named after the keys its ``--set`` overrides really changed (``rl.beta=0.02,seed=3``), so two
runs side by side in the runs table or on the compare page say how they differ; a run that changed nothing is named
after its config (``tiny``). Pure: the tracker adds a suffix when the name is taken (``tasks.summary``).

Example:
    >>> diff = config_diff({"rl.beta": 0.04, "seed": 0, "name": "tiny"}, {"rl.beta": 0.02, "seed": 0, "name": "tiny"})
    >>> diff, run_label(diff, "tiny")
    ({'rl.beta': 0.02}, 'rl.beta=0.02')
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

MAX_VALUE_CHARS = 24  # one value in a name; paths keep their last part
MAX_LABEL_CHARS = 60  # MLflow's runs table shows about this much of a name


def config_diff(base: Mapping[str, Any], resolved: Mapping[str, Any]) -> dict[str, Any]:
    """Flattened keys (``rl.beta``) whose value in ``resolved`` differs from ``base``, in ``resolved``'s order."""
    return {k: v for k, v in resolved.items() if k not in base or base[k] != v}


def _short(value: Any) -> str:
    text = json.dumps(value) if isinstance(value, list | tuple | dict) else str(value)
    if "/" in text and " " not in text:  # a folder: its last part names it
        text = PurePath(text).name or text
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def run_label(diff: Mapping[str, Any], fallback: str, max_chars: int = MAX_LABEL_CHARS) -> str:
    """``key=value`` pairs of ``diff`` joined by commas, cut to ``max_chars`` with ``+N more``; ``fallback`` when
    ``diff`` is empty.

    Example:
        >>> run_label({f"k{i}": i for i in range(30)}, "x", 20)
        'k0=0,k1=1 +28 more'
        >>> run_label({"data.source": "/srv/drops/2026-w50"}, "x")
        'data.source=2026-w50'
    """
    if not diff:
        return fallback
    pairs = [f"{k}={_short(v)}" for k, v in diff.items()]
    label = ""
    for i, pair in enumerate(pairs):
        rest = len(pairs) - i - 1
        more = f" +{rest} more" if rest else ""
        candidate = f"{label},{pair}" if label else pair
        if len(candidate + more) > max_chars and label:
            return f"{label} +{len(pairs) - i} more"
        label = candidate
    return label


def diff_text(diff: Mapping[str, Any]) -> str:
    """The whole diff as one ``key=value`` per line (the ``grm.config_diff`` tag; empty: nothing changed)."""
    return "\n".join(f"{k}={json.dumps(v) if isinstance(v, list | tuple | dict) else v}" for k, v in diff.items())
