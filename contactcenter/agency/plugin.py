"""Wires the agency feature: the work queue, the case pages and their live updates (fed by
`CaseChanged` on the bus), the case search. Pages only: it runs in `all` and `web`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..events import CaseChanged, SessionEnded
from ..keys import BUS, HEALTH
from . import http, resolutions
from .keys import CASE_LIVE
from .live import CaseLive


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    live = app[CASE_LIVE] = CaseLive()
    sub = app[BUS].subscribe(live.on_event, types=(CaseChanged, SessionEnded),
                             name="agency.case_pages")

    async def check() -> dict[str, Any]:
        return {"ok": True, "case_pages": live.count(), "pushed": live.sent,
                "subscriber_backlog": sub.queue.qsize()}

    app[HEALTH]["case_pages"] = check
    try:
        yield
    finally:
        await sub.close()
        await live.close()


def setup(app: web.Application) -> None:
    http.add_routes(app)
    resolutions.add_routes(app)
    app.cleanup_ctx.append(live_ctx)
