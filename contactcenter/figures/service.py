"""The figures a city publishes and the agencies' scorecard, read from the store and cached.

The published figures change slowly and are read by anyone, so they are computed at most every
`CACHE_SECONDS` by one request while the others wait for that result (no stampede on the store).
Nothing personal is read beyond what is needed to count: no name, phone, e-mail, address or free
text ever leaves this module (only codes, names of services and agencies, counts and durations).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.cases.models import Call, Case
from contactcenter.queues.models import ServiceType

from .measure import AgencyMonth, first_contact, month_bounds, months_ending

CACHE_SECONDS = 900.0
MONTHS = 12  # agencies' figures: this many months, the current one included
DAYS = 30  # calls by day


@dataclass(frozen=True, slots=True)
class DayCalls:
    """One day of the phone line, with the wallboard's definitions (supervisor/stats.Tally)."""

    day: date
    calls: int  # every call, IVR-only ones too
    offered: int  # reached a queue
    answered: int
    answered_in_sl: int
    abandoned: int
    service_level: float | None  # answered within the queue's target / (answered + abandoned)


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    service: str
    service_name: str
    status: str
    cases: int


@dataclass(frozen=True, slots=True)
class Figures:
    generated_at: datetime
    timezone: str
    days: list[DayCalls]
    services: list[ServiceStatus]
    months: list[AgencyMonth]

    def agencies(self) -> list[tuple[str, str]]:
        seen: dict[str, str] = {}
        for m in self.months:
            seen.setdefault(m.agency, m.agency_name)
        return sorted(seen.items(), key=lambda kv: kv[1].lower())

    def month_list(self) -> list[date]:
        return sorted({m.month for m in self.months})

    def cell(self, agency: str, month: date) -> AgencyMonth | None:
        for m in self.months:
            if m.agency == agency and m.month == month:
                return m
        return None


DaysLoader = Callable[[date, date], Awaitable[list[DayCalls]]]


async def agency_months(sessions: async_sessionmaker[AsyncSession], months: list[date],
                        tz: tzinfo, now: datetime) -> list[AgencyMonth]:
    """Cases received per agency and month, with their resolution times, and the chase calls
    made in each month charged to the agency owning the case."""
    first_call = (select(func.min(Call.started_at)).where(Call.case_id == Case.id)
                  .correlate(Case).scalar_subquery())
    out: dict[tuple[str, date], AgencyMonth] = {}

    def cell(code: str | None, name: str | None, month: date) -> AgencyMonth:
        key = (code or "", month)
        if key not in out:
            out[key] = AgencyMonth(code or "", name or "(no agency)", month)
        return out[key]

    async with sessions() as db:
        for month in months:
            start, end = month_bounds(month, tz)
            rows = await db.execute(
                select(Agency.code, Agency.name, Case.status, Case.created_at, Case.closed_at,
                       Case.sla_due_at, first_call)
                .select_from(Case).outerjoin(Agency, Agency.id == Case.agency_id)
                .where(Case.created_at >= start, Case.created_at < end)
            )
            for code, name, status, created, closed, due, call in rows:
                cell(code, name, month).add_case(
                    status=status, contact=first_contact(created, call), closed_at=closed,
                    due=due, now=now)
            chases = await db.execute(
                select(Agency.code, Agency.name, func.count(),
                       func.sum(func.coalesce(Call.handle_seconds, Call.talk_seconds, 0.0)))
                .select_from(Call).join(Case, Case.id == Call.case_id)
                .outerjoin(Agency, Agency.id == Case.agency_id)
                .where(Call.started_at >= start, Call.started_at < end,
                       Call.started_at > Case.created_at)
                .group_by(Agency.code, Agency.name)
            )
            for code, name, count, seconds in chases:
                m = cell(code, name, month)
                m.chase_calls += int(count)
                m.chase_seconds += float(seconds or 0.0)
    return sorted(out.values(), key=lambda m: (m.agency_name.lower(), m.month))


async def services_by_status(sessions: async_sessionmaker[AsyncSession]) -> list[ServiceStatus]:
    async with sessions() as db:
        rows = await db.execute(
            select(ServiceType.code, ServiceType.name, Case.status, func.count())
            .select_from(Case).join(ServiceType, ServiceType.id == Case.service_type_id)
            .group_by(ServiceType.code, ServiceType.name, Case.status)
            .order_by(ServiceType.code, Case.status)
        )
        return [ServiceStatus(code, name, status, int(n)) for code, name, status, n in rows]


async def compute_figures(sessions: async_sessionmaker[AsyncSession], now: datetime, tz: tzinfo,
                          tz_name: str, days: DaysLoader) -> Figures:
    """Every published figure as of `now`: a year of cases is read and counted, so the plugin
    runs this in the report worker process (supervisor/offloop.py) when there is one."""
    today = now.astimezone(tz).date()
    day_calls = await days(today - timedelta(days=DAYS - 1), today)
    months = await agency_months(sessions, months_ending(today, MONTHS), tz, now)
    for m in months:
        m.settle()
    services = await services_by_status(sessions)
    return Figures(now, tz_name, day_calls, services, months)


Compute = Callable[[datetime], Awaitable[Figures]]


class FiguresService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], datetime],
                 tz: tzinfo, tz_name: str, days: DaysLoader,
                 cache_seconds: float = CACHE_SECONDS, *, compute: Compute | None = None) -> None:
        """`compute(now)`: where the figures are computed (default: here, on this loop)."""
        self.sessions = sessions
        self.clock = clock
        self.tz = tz
        self.tz_name = tz_name
        self._days = days
        self._compute_at = compute
        self.cache_seconds = cache_seconds
        self._cached: Figures | None = None
        self._cached_at = 0.0  # monotonic
        self._lock = asyncio.Lock()

    async def figures(self) -> Figures:
        async with self._lock:
            fresh = time.monotonic() - self._cached_at < self.cache_seconds
            if self._cached is not None and fresh:
                return self._cached
            self._cached = await self._compute()
            self._cached_at = time.monotonic()
            return self._cached

    def forget(self) -> None:
        self._cached = None

    async def _compute(self) -> Figures:
        now = self.clock()
        if self._compute_at is not None:
            return await self._compute_at(now)
        return await compute_figures(self.sessions, now, self.tz, self.tz_name, self._days)


# --- the open-data export: the only shapes that leave ------------------------------------------

def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def day_rows(f: Figures) -> list[dict[str, Any]]:
    return [{"date": d.day.isoformat(), "calls": d.calls, "offered": d.offered,
             "answered": d.answered, "answered_within_target": d.answered_in_sl,
             "abandoned": d.abandoned, "service_level": _round(d.service_level)}
            for d in f.days]


def service_rows(f: Figures) -> list[dict[str, Any]]:
    return [{"service_code": s.service, "service_name": s.service_name, "status": s.status,
             "cases": s.cases} for s in f.services]


def month_rows(f: Figures) -> list[dict[str, Any]]:
    return [{"month": m.month.strftime("%Y-%m"), "agency_code": m.agency,
             "agency_name": m.agency_name, "cases_received": m.received,
             "cases_closed": m.closed, "closed_on_time": m.closed_on_time,
             "decided": m.decided, "on_time_rate": _round(m.on_time_rate),
             "median_contact_to_resolution_hours": _round(
                 None if m.median_resolution is None else m.median_resolution / 3600, 2),
             "p90_contact_to_resolution_hours": _round(
                 None if m.p90_resolution is None else m.p90_resolution / 3600, 2),
             "chase_calls": m.chase_calls,
             "chase_calls_per_100_cases": _round(m.chase_per_100, 2),
             "chase_call_operator_minutes": round(m.chase_seconds / 60, 1)}
            for m in f.months]


TABLES: dict[str, Callable[[Figures], list[dict[str, Any]]]] = {
    "calls-by-day": day_rows,
    "cases-by-service": service_rows,
    "agencies-by-month": month_rows,
}
