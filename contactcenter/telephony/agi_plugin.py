"""Wires the IVR to Asterisk: a cleanup context that runs the FastAGI server (when `agi_enabled`)
with the IVR engine playing the active menu on each session, and the `"agi"` part of `/health`.

It lives in telephony/ because it is the protocol edge: `AgiChannel` implements the IVR's
`ivr.channel.IvrChannel`, so `ivr/` never imports telephony/."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from contactcenter.ivr.keys import IVR_ENGINE
from contactcenter.telephony.keys import AGI_SERVER

from ..ivr.engine import IvrEngine
from ..ivr.services import IvrServices
from ..keys import BUS, CLOCK, COUNTERS, HEALTH, SESSIONS, SETTINGS
from ..queues.directory import QUEUE_DIRECTORY
from .agi import AgiChannel, FastAgiServer

log = logging.getLogger(__name__)

# FastAGI request paths the IVR answers (agi://host:4573/ivr in the dialplan)
IVR_PATHS = ("/ivr", "/ivr/", "ivr")


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
    services = IvrServices(app[SESSIONS], general_queue=settings.general_queue,
                           queues=app[QUEUE_DIRECTORY],
                           bus=app[BUS])
    engine = IvrEngine(services, app[BUS].publish, general_queue=settings.general_queue,
                       clock=app[CLOCK].now)

    async def handle(channel: AgiChannel) -> None:
        if channel.request.path not in IVR_PATHS:
            # the dialplan's fallback (AGISTATUS / empty QUEUE) takes the caller to a queue
            log.error("FastAGI: unknown script %r from %s", channel.request.path,
                      channel.request.channel)
            await channel.verbose(f"contactcenter: unknown AGI script {channel.request.path}", 1)
            return
        await engine.run(channel)

    server = FastAgiServer(
        handle, settings.agi_host, settings.agi_port, allowed=settings.agi_networks(),
        max_sessions=settings.agi_max_sessions, media_timeout=settings.agi_media_timeout,
        session_timeout=settings.agi_session_timeout,
    )
    await server.start()
    app[AGI_SERVER] = server
    app[IVR_ENGINE] = engine

    async def check() -> dict[str, Any]:
        health = server.health()
        # callers are being sent to the general queue for want of a recording: degraded until
        # none has gone missing for MISSING_PROMPT_WINDOW seconds
        failing = engine.prompts_failing()
        return {
            **health,
            "ok": health["ok"] and not failing,
            "ivr_sessions": engine.sessions,
            "ivr_fallbacks": engine.fallbacks,
            "ivr_last_error": engine.last_error,
            "ivr": {
                "missing_prompts": engine.missing_prompts,
                "last_missing_prompt": engine.last_missing_prompt,
                "missing_prompts_recently": failing,
            },
        }

    app[HEALTH]["agi"] = check
    app[COUNTERS]["cc_ivr_missing_prompts"] = (
        "IVR prompts that could not play (file missing) while the caller was on the line",
        lambda: float(engine.missing_prompts),
    )
    app[COUNTERS]["cc_ivr_fallbacks"] = (
        "IVR sessions that ended in the general queue because something failed",
        lambda: float(engine.fallbacks),
    )
    try:
        yield
    finally:
        await server.close()
        await services.close()
