"""The console's page and its websocket."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import WSMsgType, web

from contactcenter.agents.keys import CONSOLE

from ..keys import CLOCK, SESSIONS, SETTINGS
from ..web.auth import origin_ok, require_role, require_user
from . import agent_report, queries

log = logging.getLogger(__name__)

HEARTBEAT = 20.0  # seconds between pings; a peer silent for half of that is dropped
MAX_FRAME = 1024 * 1024  # aiohttp closes above this; parse_command answers above 64 kB


@require_role("operator")
@aiohttp_jinja2.template("console.html")
async def console_page(request: web.Request) -> dict[str, Any]:
    async with request.app[SESSIONS]() as db:
        services = await queries.service_types(db)
    return {"services": services}


@require_role("operator")
async def console_ws(request: web.Request) -> web.WebSocketResponse:
    if not origin_ok(request):
        log.warning("console websocket from a foreign origin %r refused",
                    request.headers.get("Origin"))
        raise web.HTTPForbidden(text="cross-origin websocket refused")
    user = require_user(request)
    hub = request.app[CONSOLE]
    if hub.closing:
        raise web.HTTPServiceUnavailable(text="shutting down")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT, max_msg_size=MAX_FRAME)
    await ws.prepare(request)
    conn = hub.connect(ws, user)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                conn.send_json(await hub.handle(conn, msg.data))
            elif msg.type == WSMsgType.BINARY:
                conn.send_json({"type": "error", "error": "send JSON text frames, not binary"})
            elif msg.type == WSMsgType.ERROR:
                log.info("console socket of %s: %s", user.username, ws.exception())
                break
    finally:
        await hub.disconnect(conn)
    return ws


def _hm(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    m = round(seconds / 60)
    return f"{m // 60}:{m % 60:02d}"


@require_role("supervisor", "admin")
async def agents_report(request: web.Request) -> web.StreamResponse:
    """`/reports/agents?day=YYYY-MM-DD` (the center's day; today by default): each operator's
    logged-in, ready, on-call, wrap-up and paused time (by reason), calls answered, AHT and
    occupancy, from the presence history. `&format=json` for the figures as JSON."""
    settings = request.app[SETTINGS]
    clock = request.app[CLOCK]
    raw = request.query.get("day", "")
    try:
        day = date.fromisoformat(raw) if raw else clock.today(ZoneInfo(settings.timezone))
    except ValueError:
        raise web.HTTPBadRequest(text=f"day must be YYYY-MM-DD, not {raw[:20]!r}") from None
    async with request.app[SESSIONS]() as db:
        rows = await agent_report.load(db, day, settings.timezone, clock.now())
    if request.query.get("format") == "json":
        return web.json_response({"day": day.isoformat(), "timezone": settings.timezone,
                                  "agents": [r.to_dict() for r in rows]})
    return aiohttp_jinja2.render_template("agents_report.html", request, {
        "day": day, "rows": [r.to_dict() for r in rows], "hm": _hm,
        "prev": day - timedelta(days=1), "next": day + timedelta(days=1)})
