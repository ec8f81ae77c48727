"""Wires the IVR: its services (menus, queues, cases) and engine, the FastAGI script `/ivr` that
telephony's FastAGI server dispatches to, and the `"ivr"` part of /health and its counters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..cases.estimates import Estimates
from ..keys import AGI_ROUTES, BUS, CLOCK, COUNTERS, HEALTH, SESSIONS, SETTINGS
from ..queues.directory import QUEUE_DIRECTORY
from .channel import IvrChannel
from .engine import IvrEngine
from .keys import IVR_ENGINE
from .services import IvrServices

# the dialplan's AGI(agi://host:4573/ivr)
SCRIPT = "/ivr"


async def ivr_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    # the IVR's own estimates table, refreshed beside the calls (the bridge role has no cases
    # feature): "expected by" reads it without waiting
    estimates = Estimates(app[SESSIONS], app[CLOCK].now,
                          min_closed=settings.estimate_min_closed)
    refresher = asyncio.get_running_loop().create_task(estimates.refresh_forever(),
                                                       name="ivr:estimates")
    services = IvrServices(app[SESSIONS], general_queue=settings.general_queue,
                           queues=app[QUEUE_DIRECTORY], bus=app[BUS],
                           timezone=settings.timezone,
                           db_timeout=settings.ivr_db_timeout_ms / 1000, estimates=estimates)
    directory = app[QUEUE_DIRECTORY]

    def queue_timeout(name: str) -> int:
        info = directory.get(name)
        return info.max_wait_seconds if info is not None else 0

    engine = IvrEngine(services, app[BUS].publish, general_queue=settings.general_queue,
                       clock=app[CLOCK].now, queue_timeout=queue_timeout)
    app[IVR_ENGINE] = engine

    async def session(channel: IvrChannel) -> None:
        await engine.run(channel)

    app[AGI_ROUTES][SCRIPT] = session

    async def check() -> dict[str, Any]:
        # callers are being sent to the general queue for want of a recording: degraded until
        # none has gone missing for MISSING_PROMPT_WINDOW seconds
        failing = engine.prompts_failing()
        return {
            "ok": not failing,
            "sessions": engine.sessions,
            "fallbacks": engine.fallbacks,
            "last_error": engine.last_error,
            "missing_prompts": engine.missing_prompts,
            "last_missing_prompt": engine.last_missing_prompt,
            "missing_prompts_recently": failing,
            "db_timeouts": services.timeouts,
            "last_db_timeout": services.last_timeout,
        }

    if settings.agi_enabled:
        app[HEALTH]["ivr"] = check
    app[COUNTERS]["cc_ivr_missing_prompts"] = (
        "IVR prompts that could not play (file missing) while the caller was on the line",
        lambda: float(engine.missing_prompts),
    )
    app[COUNTERS]["cc_ivr_db_timeouts"] = (
        "IVR database calls that ran out of time (CC_IVR_DB_TIMEOUT_MS); each sent a caller to "
        "an operator", lambda: float(services.timeouts),
    )
    app[COUNTERS]["cc_ivr_fallbacks"] = (
        "IVR sessions that ended in the general queue because something failed",
        lambda: float(engine.fallbacks),
    )
    try:
        yield
    finally:
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await services.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(ivr_ctx)


__all__ = ["SCRIPT", "setup"]
