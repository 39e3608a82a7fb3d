"""The server's routes, one router per endpoint family; each route takes the shared ``ServerState`` explicitly
(``Depends(server_state)``). ``ROUTERS`` is the one list ``grm.serving.app.create_app`` mounts: a new endpoint is a
module here plus one entry in it (docs/extending.md)."""

from __future__ import annotations

from grm.serving.routes import completions, get_reward, health, invocations, score

ROUTERS = (health.router, score.router, get_reward.router, completions.router, invocations.router)

__all__ = ["ROUTERS"]
