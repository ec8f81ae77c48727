"""Wires the figures: a cached `FiguresService` over the store, whose calls-by-day come from the
supervisor's report (one definition of service level, the wallboard's), and the routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

from aiohttp import web

from contactcenter.keys import CLOCK, SESSIONS, SETTINGS
from contactcenter.supervisor import reports
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.supervisor.offloop import Sessions
from contactcenter.supervisor.stats import QueueConfig, QueueStats

from . import http
from .keys import FIGURES
from .service import DayCalls, DaysLoader, Figures, FiguresService, compute_figures

StatsSpec = tuple[tzinfo, QueueConfig, tuple[QueueConfig, ...]]


def _days_loader(sessions: Sessions, stats: QueueStats) -> DaysLoader:
    async def days(first: date, last: date) -> list[DayCalls]:
        report = await reports.call_report(sessions, reports.DateRange(first, last), stats)
        return [DayCalls(d, b.calls, b.queued.offered, b.queued.answered,
                         b.queued.answered_in_sl, b.queued.abandoned, b.queued.service_level)
                for d, b in sorted(report.by_day.items())]
    return days


async def figures_work(sessions: Sessions, now: datetime, tz_name: str,
                       spec: StatsSpec) -> Figures:
    """The figures, in the report worker process (picklable arguments only)."""
    tz, default, queues = spec
    stats = QueueStats(queues, tz=tz, default=default)
    return await compute_figures(sessions, now, tz, tz_name, _days_loader(sessions, stats))


async def figures_ctx(app: web.Application) -> AsyncIterator[None]:
    sessions = app[SESSIONS]
    settings = app[SETTINGS]
    tz = ZoneInfo(settings.timezone)

    async def days(first: date, last: date) -> list[DayCalls]:
        return await _days_loader(sessions, app[SUPERVISOR].service.stats)(first, last)

    async def compute(now: datetime) -> Figures:
        # a year of cases counted in Python: in the report worker, off the loop that serves
        # callers (seconds at a million calls), as the reports page
        feature = app[SUPERVISOR]
        if feature.offloop is None:  # an in-memory database no other process can see
            return await compute_figures(sessions, now, tz, settings.timezone, days)
        stats = feature.service.stats
        spec = (stats.tz, stats.default, tuple(stats.queues.values()))
        return await feature.offloop.run(figures_work, now, settings.timezone, spec)

    app[FIGURES] = FiguresService(sessions, app[CLOCK].now, tz, settings.timezone, days,
                                  compute=compute)
    yield


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(figures_ctx)
    http.add_routes(app)
