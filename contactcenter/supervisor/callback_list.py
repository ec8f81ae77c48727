"""Abandoned calls with their callers, for call-back lists (/reports/abandoned, + CSV).

"Abandoned" is the wallboard's and the reports' own: a queue leg that `stats.classify` counts
as abandoned, i.e. the caller hung up after the queue's short-abandon threshold (the call
tracker writes shorter ones as `short_abandoned`, which the figures leave out, and so does this
list). A caller is *served* when a later call from the same number in the range was answered
by an operator (the call names one: `calls.agent`), or when the call-back feature already has a
call to that number (`callbacks`: under way, or made after the attempt). The default view lists
the callers not served, one line per caller (latest attempt, number of attempts).

An abandoned leg is always a call's last (abandoning is hanging up), and a call's outcome and
final queue are its last leg's (telephony/calls.py `_record`; a row without legs is its own one
leg): so the list reads `calls` alone, on `ix_calls_outcome_started`. Wait is the call's time
in the queues before hanging up. One line per caller by a window function, and "served" by
correlated look-ups on `ix_calls_caller_started` and `ix_callbacks_phone`: all in SQL.

Caller numbers are personal data: supervisors and admins only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy import and_, case, exists, func, literal, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from contactcenter.callbacks.models import Callback
from contactcenter.callbacks.policy import ACTIVE
from contactcenter.cases.models import Call, CallLeg
from contactcenter.events import LEG_OUTCOMES
from contactcenter.queues.models import Queue
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.web.auth import require_role

from . import reports
from .http import STAFF, _csv_response, _heavy, _range
from .sla_views import csv_text
from .stats import classify

Sessions = async_sessionmaker[AsyncSession]
PAGE = 100  # lines per page
# the leg outcomes the figures count as abandoned, whoever answered (stats.classify)
ABANDONED = tuple(o for o in LEG_OUTCOMES
                  if classify(o, None) == classify(o, "x") == "abandoned")
SHOWS = ("unserved", "all")
PERS = ("caller", "call")
CSV_COLUMNS = ("caller_number", "last_attempt", "queue", "wait_seconds", "language",
               "attempts", "got_through_at", "callback")
_NOT_DIGITS = ("+", "-", " ", "(", ")", ".", "/")  # what telephony puts around a number


class ListError(ValueError):
    """A bad filter (the message says what to fix)."""


@dataclass(frozen=True, slots=True)
class ListFilter:
    queue: str = ""  # "": every queue
    show: str = "unserved"  # unserved | all
    per: str = "caller"  # caller (latest attempt, attempts) | call (each abandoned call)

    @classmethod
    def parse(cls, query: Mapping[str, str]) -> ListFilter:
        show = (query.get("show") or "unserved").strip()
        per = (query.get("per") or "caller").strip()
        if show not in SHOWS:
            raise ListError(f"'show' must be one of {', '.join(SHOWS)}, got {show[:20]!r}")
        if per not in PERS:
            raise ListError(f"'per' must be one of {', '.join(PERS)}, got {per[:20]!r}")
        return cls((query.get("queue") or "").strip(), show, per)


@dataclass(frozen=True, slots=True)
class CallerLine:
    call_id: int  # the (latest) abandoned call
    number: str
    at: datetime  # when the (latest) abandoned call started
    queue: str
    wait_seconds: float | None  # in the queues before hanging up
    language: str
    attempts: int  # abandoned calls of this caller in the range (per=call: 1)
    got_through_at: datetime | None  # the first later answered call in the range
    callback: str | None  # the state of the call-back to this number, if any

    @property
    def served(self) -> bool:
        return self.got_through_at is not None or self.callback is not None


@dataclass(slots=True)
class AbandonedList:
    lines: list[CallerLine]
    total: int  # lines of this view (every page)
    unserved: int  # of which not served
    calls: int  # abandoned calls with a number, in the range and queue
    without_number: int  # abandoned calls whose caller ID was withheld (cannot be called)
    page: int
    pages: int


def _digits(column: Any) -> Any:
    """The number as the call-back feature keeps it (cases/citizens.normalize_phone: digits)."""
    for ch in _NOT_DIGITS:
        column = func.replace(column, ch, "")
    return column


async def _check_queue(db: AsyncSession, queue: str) -> None:
    if not queue:
        return
    # a queue of the store, or one that had calls (removed since): each look-up on an index
    known = (await db.execute(select(Queue.id).where(Queue.name == queue))).first() or \
        (await db.execute(select(exists().where(CallLeg.queue == queue)))).scalar() or \
        (await db.execute(select(exists().where(Call.queue == queue)))).scalar()
    if not known:
        raise ListError(f"unknown queue {queue[:80]!r}")


def _lines_query(rng: reports.DateRange, tz: tzinfo, flt: ListFilter) -> tuple[Any, Any]:
    """(one row per line with its served columns, a count of the abandoned calls without a
    number) for the range and filter."""
    start, end = rng.bounds(tz)
    queue = func.coalesce(Call.final_queue, Call.queue)
    abandoned = [Call.outcome.in_(ABANDONED), Call.started_at >= start, Call.started_at < end,
                 *([queue == flt.queue] if flt.queue else [])]
    has_number = and_(Call.caller_number.is_not(None), Call.caller_number != "")
    cols: list[Any] = [Call.id.label("call_id"), Call.caller_number.label("number"),
                       Call.started_at.label("at"), queue.label("queue"),
                       Call.wait_seconds.label("wait"), Call.language.label("language")]
    if flt.per == "caller":
        cols += [func.row_number().over(partition_by=Call.caller_number,
                                        order_by=(Call.started_at.desc(), Call.id.desc()))
                 .label("rn"),
                 func.count().over(partition_by=Call.caller_number).label("attempts")]
    else:
        cols += [literal(1).label("rn"), literal(1).label("attempts")]
    ranked = select(*cols).where(*abandoned, has_number).subquery("ranked")
    later = aliased(Call)
    through = (select(func.min(later.started_at))
               .where(later.caller_number == ranked.c.number, later.started_at > ranked.c.at,
                      later.started_at < end, later.agent.is_not(None))
               .scalar_subquery())
    callback = (select(Callback.state)
                .where(Callback.phone == _digits(ranked.c.number),
                       or_(Callback.state.in_(ACTIVE), Callback.created_at >= ranked.c.at))
                .order_by(Callback.created_at.desc(), Callback.id.desc()).limit(1)
                .scalar_subquery())
    lines = (select(ranked.c.call_id, ranked.c.number, ranked.c.at, ranked.c.queue,
                    ranked.c.wait, ranked.c.language, ranked.c.attempts,
                    through.label("through"), callback.label("callback"))
             .where(ranked.c.rn == 1)
             # computed once, then read: PostgreSQL would otherwise inline it and run both
             # look-ups again at every use of their results (the totals, the filter, the page)
             .cte("lines").prefix_with("MATERIALIZED", dialect="postgresql"))
    no_number = select(func.count()).select_from(Call).where(*abandoned, ~has_number)
    return lines, no_number


async def abandoned_list(
    sessions: Sessions, rng: reports.DateRange, tz: tzinfo, flt: ListFilter, page: int = 1,
    per_page: int | None = PAGE,
) -> AbandonedList:
    """One page of the list (`per_page` None: every line, for the CSV), newest first. The
    page and the totals come from one query (window sums over every line, then the filter),
    so "served" is looked up once per line."""
    async with sessions() as db:
        await _no_jit(db)
        await _check_queue(db, flt.queue)
        lines, no_number = _lines_query(rng, tz, flt)
        is_open = case((and_(lines.c.through.is_(None), lines.c.callback.is_(None)), 1),
                       else_=0)
        totals = select(lines, is_open.label("open"), func.count().over().label("n_all"),
                        func.sum(is_open).over().label("n_open"),
                        func.sum(lines.c.attempts).over().label("n_calls")).subquery("totals")
        query = select(totals)
        if flt.show == "unserved":
            query = query.where(totals.c.open == 1)
        query = query.order_by(totals.c.at.desc(), totals.c.call_id.desc())
        if per_page is not None:
            query = query.limit(per_page).offset((page - 1) * per_page)
        rows = (await db.execute(query)).all()
        if rows:
            n_all, n_open, n_calls = rows[0].n_all, rows[0].n_open, rows[0].n_calls
        else:  # nothing on this page: the totals alone
            n_all, n_open, n_calls = (await db.execute(
                select(func.count(), func.sum(is_open), func.sum(lines.c.attempts)))).one()
        without = int((await db.execute(no_number)).scalar_one())
    shown = int(n_all) if flt.show == "all" else int(n_open or 0)
    size = per_page or max(1, shown)
    return AbandonedList(
        [CallerLine(r.call_id, r.number, r.at, r.queue or "", r.wait, r.language or "",
                    int(r.attempts), r.through, r.callback) for r in rows],
        shown, int(n_open or 0), int(n_calls or 0), without, page, max(1, -(-shown // size)))


async def _no_jit(db: AsyncSession) -> None:
    """PostgreSQL compiles a plan this costly (thousands of index look-ups) with JIT, which
    takes longer (~150 ms) than the look-ups it cannot speed up: off for this transaction."""
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SET LOCAL jit = off"))


def _csv_rows(lines: Iterable[CallerLine], tz: tzinfo) -> Iterable[tuple[Any, ...]]:
    yield CSV_COLUMNS
    for ln in lines:
        yield (ln.number, ln.at.astimezone(tz), ln.queue,
               None if ln.wait_seconds is None else round(ln.wait_seconds, 1), ln.language,
               ln.attempts, ln.got_through_at.astimezone(tz) if ln.got_through_at else None,
               ln.callback)


async def list_work(sessions: Sessions, rng: reports.DateRange, tz: tzinfo, flt: ListFilter,
                    page: int) -> AbandonedList:
    return await abandoned_list(sessions, rng, tz, flt, page)


async def csv_work(sessions: Sessions, rng: reports.DateRange, tz: tzinfo,
                   flt: ListFilter) -> str:
    found = await abandoned_list(sessions, rng, tz, flt, per_page=None)
    return csv_text(_csv_rows(found.lines, tz))


# --- pages --------------------------------------------------------------------------------------


def _page_number(query: Mapping[str, str]) -> int:
    raw = (query.get("page") or "1").strip()
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise ListError(f"'page' must be a page number, got {raw[:20]!r}")
    return int(raw)


def _inputs(request: web.Request) -> tuple[reports.DateRange, ListFilter]:
    return _range(request), ListFilter.parse(request.query)


@require_role(*STAFF)
async def abandoned_page(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng, flt = _inputs(request)
        found = await _heavy(request, list_work, rng, svc.tz, flt,
                             _page_number(request.query))
    except (reports.ReportError, ListError) as exc:
        return aiohttp_jinja2.render_template(
            "supervisor/abandoned.html", request,
            {"error": str(exc), "query": dict(request.query), "queues": svc.stats.queues,
             "tz": svc.settings.timezone}, status=400)
    query = {"from": rng.first.isoformat(), "to": rng.last.isoformat(),
             **({"queue": flt.queue} if flt.queue else {}), "show": flt.show, "per": flt.per}
    return aiohttp_jinja2.render_template(
        "supervisor/abandoned.html", request,
        {"error": None, "found": found, "flt": flt, "rng": rng, "query": query,
         "queues": svc.stats.queues, "tz": svc.settings.timezone, "zone": svc.tz})


@require_role(*STAFF)
async def abandoned_csv(request: web.Request) -> web.Response:
    svc = request.app[SUPERVISOR].service
    try:
        rng, flt = _inputs(request)
        text = await _heavy(request, csv_work, rng, svc.tz, flt)
    except (reports.ReportError, ListError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    return _csv_response(text, f"abandoned-{rng.first}-{rng.last}.csv")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/reports/abandoned", abandoned_page, name="reports_abandoned")
    app.router.add_get("/reports/abandoned.csv", abandoned_csv, name="reports_abandoned_csv")


__all__ = ["ABANDONED", "AbandonedList", "CallerLine", "ListFilter", "abandoned_list",
           "add_routes"]
