"""Group mode (``--group-window-ms``): single-response requests with the same query (or the same ``group_id``) and
settings that arrive within the window are judged together as one multi-response item, and each caller gets its own
response's view (``member_view``). A group with a ``group_size`` is sent as soon as it is full; when the window
closes first it falls back to pointwise scoring of each member. Without ``group_size`` the window decides: two or
more members are judged together, a lone one pointwise. The engine owns one ``GroupWindow``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from grm.serving.metrics import Metrics
from grm.serving.scoring import ScoreSettings, item_key

ScoreItems = Callable[[list[tuple[Any, list[str], str | None]], list[str | None], ScoreSettings], Awaitable[list]]


@dataclass(eq=False)
class _Group:
    key: str
    query: Any
    settings: ScoreSettings
    size: int | None
    members: list[tuple[str, str | None, asyncio.Future]] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None
    principles: str | None = None


class GroupWindow:
    """The open groups of one engine: ``score`` one response of a group; ``score_items`` is the engine's
    ``score`` (items, ids, settings), ``window_s`` the window (0 = every sample pointwise)."""

    def __init__(self, score_items: ScoreItems, window_s: float, metrics: Metrics) -> None:
        self.score_items = score_items
        self.window_s = window_s
        self.metrics = metrics
        self.open: dict[str, _Group] = {}

    async def score(
        self,
        query: Any,
        response: str,
        sample_id: str | None,
        settings: ScoreSettings,
        group_id: str | None = None,
        group_size: int | None = None,
        max_group: int | None = None,
        principles: str | None = None,
    ) -> dict[str, Any]:
        """Score one response of a group (see the module doc); the result is for this response alone. A group is
        never judged with more than ``max_group`` responses (``--max-responses``): a larger ``group_size`` is cut
        into sub-groups of that many (the last one closes with the window). Only samples with the same
        ``principles`` (the caller's, or None) are grouped."""
        window = self.window_s
        if window <= 0:
            return await self._pointwise(query, response, sample_id, settings, "pointwise", principles)
        base = group_id if group_id is not None else item_key(query, [])
        key = json.dumps(
            [base, group_size, query if group_id is not None else None, settings.__dict__, principles], default=str
        )
        loop = asyncio.get_running_loop()
        group = self.open.get(key)
        if group is None:
            size = group_size if group_size is not None and (max_group is None or group_size <= max_group) else None
            group = _Group(key, query, settings, size, principles=principles)
            self.open[key] = group
            group.timer = loop.call_later(window, self._close, group, True)
        future: asyncio.Future = loop.create_future()
        group.members.append((response, sample_id, future))
        full = group_size if group_size is not None and (max_group is None or group_size <= max_group) else max_group
        if full is not None and len(group.members) >= full:
            if group_size is not None and full < group_size:
                group.size = None  # a sub-group of a larger group: complete at max_group
            self._close(group, False)
        return await future

    def _close(self, group: _Group, expired: bool) -> None:
        if self.open.get(group.key) is group:
            del self.open[group.key]
        if group.timer is not None:
            group.timer.cancel()
        members = group.members
        together = len(members) >= 2 and (group.size is None or len(members) >= group.size)
        if together:
            self.metrics.count("groups", "grouped")
            asyncio.ensure_future(self._run(group))
            return
        self.metrics.count("groups", "fallback" if expired and group.size else "single")
        for response, sample_id, future in members:
            asyncio.ensure_future(
                _forward(
                    self._pointwise(group.query, response, sample_id, group.settings, "pointwise", group.principles),
                    future,
                )
            )

    async def _run(self, group: _Group) -> None:
        responses = [m[0] for m in group.members]
        try:
            (result,) = await self.score_items([(group.query, responses, group.principles)], [None], group.settings)
        except Exception as exc:
            for _, _, future in group.members:
                if not future.done():
                    future.set_exception(exc)
            return
        for index, (_, sample_id, future) in enumerate(group.members):
            if not future.done():
                future.set_result(member_view(result, index, sample_id, "group"))

    async def _pointwise(
        self,
        query: Any,
        response: str,
        sample_id: str | None,
        settings: ScoreSettings,
        mode: str,
        principles: str | None = None,
    ) -> dict[str, Any]:
        (result,) = await self.score_items([(query, [response], principles)], [None], settings)
        return member_view(result, 0, sample_id, mode)


def member_view(result: dict[str, Any], index: int, sample_id: str | None, mode: str) -> dict[str, Any]:
    """One response's view of an item result (group mode and per-sample requests)."""
    scores, votes = result["scores"], result["votes"]
    score = None if scores is None else scores[index]
    low, high = 1, 10
    return {
        "id": sample_id,
        "score": score,
        "reward": None if score is None else (score - low) / (high - low),
        "vote": None if votes is None else votes[index],
        "k": result["k"],
        "k_meta": result["k_meta"],
        "method": result["method"],
        "n_parsed": result["n_parsed"],
        "n_voted": result["n_voted"],
        "parse_failures": result["parse_failures"],
        "group": {
            "mode": mode,
            "size": result["n"],
            "index": index,
            "best": result["best"] == index if result["n"] > 1 else None,
        },
        **({"principles": result["principles"]} if "principles" in result else {}),
        **({"samples": result["samples"]} if "samples" in result else {}),
    }


async def _forward(coro: Any, future: asyncio.Future) -> None:
    try:
        value = await coro
    except Exception as exc:
        if not future.done():
            future.set_exception(exc)
    else:
        if not future.done():
            future.set_result(value)
