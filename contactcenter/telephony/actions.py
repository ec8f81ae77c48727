"""The `Pbx` of a web process (`serve --role web`): its own AMI session per Asterisk, for actions.

Why an actions-only AMI session and not commands routed to the bridge over Redis:
- An operator's Pause/Ready is a request that needs an answer (Asterisk's own `Error` message
  shown on the console, or a timeout). AMI already matches replies by `ActionID`; over Redis we
  would rebuild that request/reply layer (correlation ids, a reply channel, timeouts on both
  sides) and add a hop and a second failure point: a bridge that is restarting would turn every
  click into a timeout, while Asterisk itself is up and could have answered.
- The session logs in with `Events: off`: Asterisk sends it no events at all, so it costs
  Asterisk one idle TCP session per web process and the web process nothing on the read path;
  the bridge stays the only event consumer and the only writer of call records.
- The same `AmiPbx` runs in the bridge and in `--role all`, so the console and the wallboard
  see one behaviour and one set of error messages whatever the shape.
The cost: `manager.conf` must let every web host log in (`permit=` per host, and
`allowmultiplelogin=yes` when they share the bridge's account, or one account per web host).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..keys import HEALTH, PBX, SETTINGS
from .ami import AmiClient, AmiPbx


async def actions_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    clients = {
        ep.name: AmiClient(
            ep.host, ep.port, settings.ami_username, settings.ami_secret, name=ep.name,
            action_timeout=settings.ami_action_timeout, events=False,
        )
        for ep in settings.ami_endpoints()
    }
    for client in clients.values():
        await client.start()
    app[PBX] = AmiPbx(clients)

    async def check() -> dict[str, Any]:
        servers = {name: c.health() for name, c in clients.items()}
        return {"ok": all(s["logged_in"] for s in servers.values()), "mode": "actions only",
                "servers": servers}

    app[HEALTH]["ami"] = check
    try:
        yield
    finally:
        for client in clients.values():
            await client.close()


async def _disabled() -> dict[str, Any]:
    return {"ok": True, "state": "disabled"}


def setup(app: web.Application) -> None:
    if app[SETTINGS].ami_enabled:
        app.cleanup_ctx.append(actions_ctx)
    else:
        app[PBX] = AmiPbx({})  # every action raises PbxError("... AMI is disabled")
        app[HEALTH]["ami"] = _disabled
