"""The registry of evaluation protocols: name -> ``base.EvalProtocol``.

``grm.eval.run.evaluate`` looks the benchmark's protocol up here (``BenchmarkSpec.protocol``, or
``EvalSpec.protocol``). To add one: a module in this folder with a ``PROTOCOL = EvalProtocol(...)``, listed below, and
its name in ``grm.benchmarks.registry.PROTOCOLS`` (the names a benchmark may declare; a test keeps both equal).
"""

from __future__ import annotations

from grm.eval.protocols import standard, style_matrix, two_game
from grm.eval.protocols.base import EvalProtocol

PROTOCOLS: dict[str, EvalProtocol] = {p.name: p for p in (standard.PROTOCOL, two_game.PROTOCOL, style_matrix.PROTOCOL)}


def get_protocol(name: str) -> EvalProtocol:
    """The registered protocol ``name``; ``ValueError`` naming the available ones otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise ValueError(f"Unknown protocol {name!r}. Available: {', '.join(PROTOCOLS)}") from None
