"""Runs the FastAGI server (when `agi_enabled`) and dispatches each session by its request path
(`agi://host:4573/ivr` -> "/ivr") to the script a feature registered in `keys.AGI_ROUTES` (the IVR:
ivr/plugin.py). The `"agi"` part of /health is the server's.

`AgiChannel` implements the IVR's `ivr.channel.IvrChannel`, so no feature imports telephony/."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..keys import AGI_ROUTES, HEALTH, SETTINGS
from .agi import AgiChannel, FastAgiServer
from .keys import AGI_SERVER

log = logging.getLogger(__name__)

def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(agi_ctx)


async def agi_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.agi_enabled:

        async def disabled() -> dict[str, Any]:
            return {"ok": True, "enabled": False}

        app[HEALTH]["agi"] = disabled
        yield
        return
    routes = app[AGI_ROUTES]

    async def handle(channel: AgiChannel) -> None:
        script = routes.get(script_of(channel.request.path))
        if script is None:
            # the dialplan's fallback (AGISTATUS / empty QUEUE) takes the caller to a queue
            log.error("FastAGI: unknown script %r from %s", channel.request.path,
                      channel.request.channel)
            await channel.verbose(f"contactcenter: unknown AGI script {channel.request.path}", 1)
            return
        await script(channel)

    server = FastAgiServer(
        handle, settings.agi_host, settings.agi_port, allowed=settings.agi_networks(),
        max_sessions=settings.agi_max_sessions, media_timeout=settings.agi_media_timeout,
        session_timeout=settings.agi_session_timeout,
    )
    await server.start()
    app[AGI_SERVER] = server

    async def check() -> dict[str, Any]:
        return server.health()

    app[HEALTH]["agi"] = check
    try:
        yield
    finally:
        await server.close()


def script_of(path: str) -> str:
    """`/ivr`, `ivr` and `/ivr/` name the same script."""
    return "/" + path.strip("/")
