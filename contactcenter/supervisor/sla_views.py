"""The SLA report by service type and by agency (/reports/sla), with a drill-down to the cases
that are overdue now (/reports/sla/overdue, + CSV).

Every number comes from the store's one SQL definition (`cases.store.sla_conditions`, the same
conditions as the agency work queue's states, `sla_counts` and the reports page's table by
agency, all from cases/sla.py): a case is counted by its SLA outcome as of now, among the cases
created in the range. One GROUP BY (service type, agency) over the range gives both tables:
the pairs are few (services × agencies), the cases are never pulled into Python. The drill-down
pages by keyset (due time, id), most overdue first, like the work queue.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.cases.models import Case
from contactcenter.cases.store import sla_conditions, sla_tally
from contactcenter.cases.timeline import fmt_duration
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.web.auth import require_role

from . import reports
from .http import STAFF, _csv_response, _heavy, _range

Sessions = async_sessionmaker[AsyncSession]
PAGE = 50  # overdue cases per page
NO_AGENCY = "-"  # the `agency` filter for cases no agency owns
OVERDUE_COLUMNS = ("case_number", "service", "agency", "status", "opened", "due",
                   "overdue_hours")


class FilterError(ValueError):
    """An unknown service type or agency in the drill-down's filter."""


@dataclass(slots=True)
class SlaGroup:
    """One service type or agency: `code` is what the drill-down filters on ("" for the
    total), `row` the counts in the reports page's terms (reports.SlaRow: its `agency` field
    holds the display name here, and its `compliance` is the one "% within SLA")."""

    code: str
    row: reports.SlaRow


@dataclass(slots=True)
class SlaBreakdown:
    by_service: list[SlaGroup]
    by_agency: list[SlaGroup]
    total: reports.SlaRow = field(default_factory=lambda: reports.SlaRow("All cases"))


def _add(into: reports.SlaRow, counts: tuple[int, ...]) -> None:
    total, on_time, late, overdue, at_risk, no_sla = counts
    into.total += total
    into.on_time += on_time
    into.late += late
    into.overdue += overdue
    into.at_risk += at_risk
    into.no_sla += no_sla
    into.open_not_due += total - on_time - late - overdue - at_risk - no_sla


async def sla_breakdown(
    sessions: Sessions, rng: reports.DateRange, tz: tzinfo, now: datetime, zone: str = "UTC",
) -> SlaBreakdown:
    """Cases created in `rng` by SLA outcome now, per service type and per agency: one pass,
    grouped by (service type, agency) in SQL with the store's conditions."""
    start, end = rng.bounds(tz)
    async with sessions() as db:
        watch = await sla_conditions(db, now, zone)
        due = Case.sla_due_at
        closed = Case.status == "closed"
        pairs = (await db.execute(
            select(Case.service_type_id, Case.agency_id, func.count(),
                   sla_tally(and_(closed, Case.closed_at <= due)),
                   sla_tally(and_(closed, due.is_not(None),
                                  or_(Case.closed_at.is_(None), Case.closed_at > due))),
                   sla_tally(watch.overdue), sla_tally(watch.at_risk), sla_tally(due.is_(None)))
            .where(Case.created_at >= start, Case.created_at < end)
            .group_by(Case.service_type_id, Case.agency_id))).all()
        services = {i: (code, name) for i, code, name in (await db.execute(
            select(ServiceType.id, ServiceType.code, ServiceType.name))).all()}
        agencies = {i: (code, name) for i, code, name in (await db.execute(
            select(Agency.id, Agency.code, Agency.name))).all()}
    by_service: dict[str, SlaGroup] = {}
    by_agency: dict[str, SlaGroup] = {}
    out = SlaBreakdown([], [])
    for st_id, ag_id, *raw in pairs:
        counts = tuple(int(v or 0) for v in raw)
        s_code, s_name = services.get(st_id, (str(st_id), str(st_id)))
        a_code, a_name = agencies[ag_id] if ag_id in agencies else (NO_AGENCY, "(no agency)")
        _add(by_service.setdefault(s_code, SlaGroup(s_code, reports.SlaRow(s_name))).row, counts)
        _add(by_agency.setdefault(a_code, SlaGroup(a_code, reports.SlaRow(a_name))).row, counts)
        _add(out.total, counts)
    out.by_service = sorted(by_service.values(), key=_by_name)
    out.by_agency = sorted(by_agency.values(), key=_by_name)
    return out


def _by_name(g: SlaGroup) -> str:
    return g.row.agency.lower()


# --- the drill-down -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverdueFilter:
    service: str = ""  # a service type's code; "": every one
    agency: str = ""  # an agency's code, NO_AGENCY, or "": every one


@dataclass(frozen=True, slots=True)
class OverdueCase:
    id: int
    number: str
    service: str
    agency: str
    status: str
    opened: datetime
    due: datetime
    late_seconds: float  # now - due

    @property
    def late(self) -> str:
        return fmt_duration(self.late_seconds)


@dataclass(slots=True)
class OverduePage:
    cases: list[OverdueCase]
    total: int  # overdue cases matching the filter (every page)
    next_cursor: str | None
    service_name: str = ""
    agency_name: str = ""


def _cursor(c: OverdueCase) -> str:
    return f"{c.due.isoformat()}~{c.id}"


def _decode(raw: str) -> tuple[datetime, int]:
    due, _, ident = raw.partition("~")
    try:
        return datetime.fromisoformat(due), int(ident)
    except ValueError:
        raise FilterError("that page link is broken; start from the first page") from None


async def _overdue_query(db: AsyncSession, rng: reports.DateRange, tz: tzinfo, now: datetime,
                         zone: str, flt: OverdueFilter) -> tuple[list[Any], str, str]:
    """The WHERE of the overdue cases in the range and filter (+ the filter's names)."""
    start, end = rng.bounds(tz)
    watch = await sla_conditions(db, now, zone)
    # "not closed" (implied by overdue) spelled as ix_cases_open_due's predicate, its value
    # inline, so both engines see they may walk that index instead of every case ever due
    open_ = Case.status != bindparam("closed", "closed", literal_execute=True)
    where: list[Any] = [*watch.scope, watch.overdue, open_, Case.created_at >= start,
                        Case.created_at < end]
    service_name = agency_name = ""
    if flt.service:
        found = (await db.execute(select(ServiceType.id, ServiceType.name).where(
            ServiceType.code == flt.service))).first()
        if found is None:
            raise FilterError(f"unknown service type {flt.service[:80]!r}")
        where.append(Case.service_type_id == found[0])
        service_name = found[1]
    if flt.agency == NO_AGENCY:
        where.append(Case.agency_id.is_(None))
        agency_name = "(no agency)"
    elif flt.agency:
        found = (await db.execute(select(Agency.id, Agency.name).where(
            Agency.code == flt.agency))).first()
        if found is None:
            raise FilterError(f"unknown agency {flt.agency[:80]!r}")
        where.append(Case.agency_id == found[0])
        agency_name = found[1]
    return where, service_name, agency_name


def _select_cases() -> Any:
    return (select(Case.id, Case.number, ServiceType.name, Agency.name, Case.status,
                   Case.created_at, Case.sla_due_at)
            .join(ServiceType, ServiceType.id == Case.service_type_id)
            .outerjoin(Agency, Agency.id == Case.agency_id))


def _case(row: Any, now: datetime) -> OverdueCase:
    ident, number, service, agency, status, opened, due = row
    return OverdueCase(ident, number, service, agency or "(no agency)", status, opened, due,
                       (now - due).total_seconds())


async def overdue_page(
    sessions: Sessions, rng: reports.DateRange, tz: tzinfo, now: datetime, zone: str,
    flt: OverdueFilter, after: str | None = None, limit: int = PAGE,
) -> OverduePage:
    """One page of the overdue cases created in `rng`, most overdue first (due time, id)."""
    async with sessions() as db:
        where, service_name, agency_name = await _overdue_query(db, rng, tz, now, zone, flt)
        total = int((await db.execute(
            select(func.count()).select_from(Case).where(*where))).scalar_one())
        query = _select_cases().where(*where)
        if after:
            due, ident = _decode(after)
            query = query.where(or_(Case.sla_due_at > due,
                                    and_(Case.sla_due_at == due, Case.id > ident)))
        rows = (await db.execute(
            query.order_by(Case.sla_due_at, Case.id).limit(limit + 1))).all()
    cases = [_case(r, now) for r in rows[:limit]]
    more = len(rows) > limit
    return OverduePage(cases, total, _cursor(cases[-1]) if more and cases else None,
                       service_name, agency_name)


async def overdue_csv(
    sessions: Sessions, rng: reports.DateRange, tz: tzinfo, now: datetime, zone: str,
    flt: OverdueFilter,
) -> str:
    """Every overdue case of the filter, one row each, formula-safe (reports.csv_cell)."""
    async with sessions() as db:
        where, _, _ = await _overdue_query(db, rng, tz, now, zone, flt)
        rows = (await db.execute(
            _select_cases().where(*where).order_by(Case.sla_due_at, Case.id))).all()
    return csv_text(_csv_rows((_case(r, now) for r in rows), tz))


def csv_text(rows: Iterable[Iterable[Any]]) -> str:
    """Rows as CSV text, each cell through reports.csv_cell (one line, never a formula)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows([reports.csv_cell(v) for v in row] for row in rows)
    return buf.getvalue()


def _csv_rows(cases: Iterable[OverdueCase], tz: tzinfo) -> Iterable[tuple[Any, ...]]:
    yield OVERDUE_COLUMNS
    for c in cases:
        yield (c.number, c.service, c.agency, c.status, c.opened.astimezone(tz),
               c.due.astimezone(tz), round(c.late_seconds / 3600, 1))


# --- pages --------------------------------------------------------------------------------------


def _zone(tz: tzinfo) -> str:
    return str(tz)  # a ZoneInfo's key: agencies' business hours are read in the center's zone


async def breakdown_work(sessions: Sessions, rng: reports.DateRange, tz: tzinfo,
                         now: datetime) -> SlaBreakdown:
    return await sla_breakdown(sessions, rng, tz, now, _zone(tz))


async def overdue_work(sessions: Sessions, rng: reports.DateRange, tz: tzinfo, now: datetime,
                       flt: OverdueFilter, after: str | None) -> OverduePage:
    return await overdue_page(sessions, rng, tz, now, _zone(tz), flt, after)


async def overdue_csv_work(sessions: Sessions, rng: reports.DateRange, tz: tzinfo,
                           now: datetime, flt: OverdueFilter) -> str:
    return await overdue_csv(sessions, rng, tz, now, _zone(tz), flt)


def _query(rng: reports.DateRange, **extra: str) -> dict[str, str]:
    return {"from": rng.first.isoformat(), "to": rng.last.isoformat(),
            **{k: v for k, v in extra.items() if v}}


def _bad(request: web.Request, template: str, message: str) -> web.Response:
    return aiohttp_jinja2.render_template(
        template, request, {"error": message, "query": dict(request.query),
                            "tz": request.app[SUPERVISOR].service.settings.timezone},
        status=400)


@require_role(*STAFF)
async def sla_page(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng = _range(request)
    except reports.ReportError as exc:
        return _bad(request, "supervisor/sla.html", str(exc))
    breakdown = await _heavy(request, breakdown_work, rng, svc.tz, svc.clock())
    return aiohttp_jinja2.render_template(
        "supervisor/sla.html", request,
        {"error": None, "sla": breakdown, "rng": rng, "query": _query(rng),
         "tz": svc.settings.timezone, "no_agency": NO_AGENCY})


def _filter(request: web.Request) -> OverdueFilter:
    q = request.query
    return OverdueFilter(service=(q.get("service") or "").strip(),
                         agency=(q.get("agency") or "").strip())


@require_role(*STAFF)
async def overdue_list(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng = _range(request)
        flt = _filter(request)
        page = await _heavy(request, overdue_work, rng, svc.tz, svc.clock(), flt,
                            request.query.get("after") or None)
    except (reports.ReportError, FilterError) as exc:
        return _bad(request, "supervisor/sla_overdue.html", str(exc))
    query = _query(rng, service=flt.service, agency=flt.agency)
    return aiohttp_jinja2.render_template(
        "supervisor/sla_overdue.html", request,
        {"error": None, "page": page, "rng": rng, "query": query, "tz": svc.settings.timezone,
         "zone": svc.tz, "after": request.query.get("after") or ""})


@require_role(*STAFF)
async def overdue_csv_download(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng = _range(request)
        flt = _filter(request)
        text = await _heavy(request, overdue_csv_work, rng, svc.tz, svc.clock(), flt)
    except (reports.ReportError, FilterError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _csv_response(text, f"overdue-{rng.first}-{rng.last}.csv")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/reports/sla", sla_page, name="reports_sla")
    r.add_get("/reports/sla/overdue", overdue_list, name="reports_sla_overdue")
    r.add_get("/reports/sla/overdue.csv", overdue_csv_download, name="reports_sla_overdue_csv")


__all__ = ["SlaBreakdown", "SlaGroup", "add_routes", "overdue_csv", "overdue_page",
           "sla_breakdown"]
