"""Wires the figures: a cached `FiguresService` over the store, whose calls-by-day come from the
supervisor's report (one definition of service level, the wallboard's), and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from zoneinfo import ZoneInfo

from aiohttp import web

from contactcenter.keys import CLOCK, SESSIONS, SETTINGS
from contactcenter.supervisor import reports
from contactcenter.supervisor.keys import SUPERVISOR

from . import http
from .keys import FIGURES
from .service import DayCalls, FiguresService


async def figures_ctx(app: web.Application) -> AsyncIterator[None]:
    sessions = app[SESSIONS]
    settings = app[SETTINGS]

    async def days(first: date, last: date) -> list[DayCalls]:
        stats = app[SUPERVISOR].service.stats
        report = await reports.call_report(sessions, reports.DateRange(first, last), stats)
        return [DayCalls(d, b.calls, b.queued.offered, b.queued.answered,
                         b.queued.answered_in_sl, b.queued.abandoned, b.queued.service_level)
                for d, b in sorted(report.by_day.items())]

    app[FIGURES] = FiguresService(sessions, app[CLOCK].now, ZoneInfo(settings.timezone),
                                  settings.timezone, days)
    yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(figures_ctx)
    http.add_routes(app)
