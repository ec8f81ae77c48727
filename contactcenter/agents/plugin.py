"""Wires the operator console: presence, pops, the page and its websocket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from contactcenter.agents.keys import CONSOLE, SIM_PHONES
from contactcenter.cases.keys import CASE_STORE

from ..keys import BUS, CLOCK, COUNTERS, HEALTH, PBX, SESSIONS, SETTINGS
from ..queues.directory import QUEUE_DIRECTORY, QueueDirectory
from . import http, pause_codes
from .console import SUBSCRIBED, ConsoleHub
from .presence import Presence
from .presence_store import PresenceStore
from .services import CallerHistory, CallWork, OperatorService

log = logging.getLogger(__name__)


def _wrapup_seconds(directory: QueueDirectory) -> dict[str, int]:
    return {q.name: q.wrapup_seconds for q in directory.all()}


async def console_ctx(app: web.Application) -> AsyncIterator[None]:
    directory = app[QUEUE_DIRECTORY]
    presence = Presence(_wrapup_seconds(directory))

    def wrapups_changed(d: QueueDirectory) -> None:
        # an admin's new wrap-up time applies to the next wrap-up (a running one keeps its end)
        presence.wrapup_seconds = _wrapup_seconds(d)

    directory.on_change(wrapups_changed)
    bus = app[BUS]
    hub = ConsoleHub(
        presence,
        OperatorService(presence, lambda: app.get(PBX),
                        routed_languages=tuple(app[SETTINGS].languages_routed()),
                        store=PresenceStore(app[SESSIONS]), clock=app[CLOCK].now),
        CallerHistory(app[SESSIONS], timezone=app[SETTINGS].timezone),
        CallWork(app[SESSIONS], app[CASE_STORE]),
        phones=lambda: app.get(SIM_PHONES),
        publish=bus.publish,
        claim=bus.claim,
        clock=app[CLOCK].now,
    )
    app[CONSOLE] = hub
    # who was logged in before this process started: put back if Asterisk lost them too
    await hub.operators.load()
    await hub.operators.refresh_pause_reasons()
    sub = bus.subscribe(hub.on_event, types=SUBSCRIBED, name="console",
                        on_drop=hub.events_dropped)
    ticker = asyncio.get_running_loop().create_task(hub.run_ticker(), name="console:ticker")

    async def check() -> dict[str, object]:
        return {"ok": True, "sockets": len(hub.conns), "pending_call_data": len(hub.work.pending),
                "stale": hub.stale, "dropped_events": hub.dropped}

    app[HEALTH]["console"] = check

    async def presence_check() -> dict[str, object]:
        # Degraded when operators believe they are logged in and Asterisk has none of their
        # queues (known once Asterisk's member list was seen by this process).
        ops = hub.operators
        missing = ops.mismatches(app[CLOCK].now()) if hub.synced else []
        return {"ok": not missing, "synced": hub.synced, "logged_in": len(ops.logged_in),
                "mismatch": len(missing), "missing": missing[:20], "restored": ops.restored,
                "store_errors": ops.store_errors}

    app[HEALTH]["presence"] = presence_check
    app[COUNTERS]["cc_presence_restored"] = (
        "Operators put back into Asterisk's queues (with their pause) after it lost them",
        lambda: float(hub.operators.restored))
    app[COUNTERS]["cc_presence_store_errors"] = (
        "Presence changes that could not be recorded in the database",
        lambda: float(hub.operators.store_errors))
    yield
    ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticker
    await sub.close()
    await hub.close()


async def _on_shutdown(app: web.Application) -> None:
    hub = app.get(CONSOLE)
    if hub is not None:
        await hub.shutdown()  # GOING_AWAY to every console before the server stops


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(console_ctx)
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/console", http.console_page, name="console")
    app.router.add_get("/console/ws", http.console_ws, name="console_ws")
    app.router.add_get("/reports/agents", http.agents_report, name="agents_report")
    pause_codes.add_routes(app)
