"""The text of one policy completion as trainers pass it: a plain string (TRL's standard datasets) or chat messages
(``[{"role": "assistant", "content": ...}]``, its conversational ones). Shared by the in-process reward
(``grm.rewards``) and the remote one (``grm.serving.client``), below both so neither imports the other."""

from __future__ import annotations

from typing import Any


def completion_text(completion: Any) -> str:
    """The completion's text (the last message's ``content`` for chat form).

    Raises:
        TypeError: neither a string nor a list of messages.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content", ""))
    raise TypeError(f"unsupported completion type {type(completion).__name__}")
