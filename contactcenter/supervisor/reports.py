"""Historical reports over a date range: calls by hour and day, the queue figures by queue and by
service type, SLA compliance of cases by agency, and CSV exports.

The figures use the same `Tally` as the live wallboard (stats.py), summed per 15 minutes, queue
and service in the interval summary (intervals.py) as calls are written, so a report of today
agrees with the wallboard and with `/api/queues`, and a year reads thousands of rows. Days are the
center's time zone (`CC_TIMEZONE`); a call belongs to the day and hour in which it started.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.cases.models import Call, Case
from contactcenter.cases.store import sla_conditions, sla_tally
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor.models import CallInterval

from . import intervals
from .services import load_facts
from .stats import CallFacts, QueueStats, Tally, clean_text

MAX_DAYS = 366
DEFAULT_DAYS = 7
CSV_TEXT_LIMIT = 200  # characters of any free text (caller name) in an export
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


class ReportError(ValueError):
    """A bad report request (the message says what to fix)."""


@dataclass(frozen=True, slots=True)
class DateRange:
    first: date
    last: date  # inclusive

    def bounds(self, tz: tzinfo) -> tuple[datetime, datetime]:
        """[local midnight of `first`, local midnight after `last`) as aware datetimes."""
        end = self.last + timedelta(days=1)
        return (
            datetime(self.first.year, self.first.month, self.first.day, tzinfo=tz),
            datetime(end.year, end.month, end.day, tzinfo=tz),
        )

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def parse_range(query: Any, today: date, *, max_days: int | None = MAX_DAYS) -> DateRange:
    """`from` and `to` (YYYY-MM-DD, inclusive); default: the last 7 days up to today.
    `max_days=None`: any length (the streamed calls CSV)."""

    def day(name: str, default: date) -> date:
        raw = (query.get(name) or "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise ReportError(f"{name!r} must be a date as YYYY-MM-DD, got {raw[:40]!r}") from None

    last = day("to", today)
    first = day("from", last - timedelta(days=DEFAULT_DAYS - 1))
    if first > last:
        raise ReportError("'from' is after 'to'")
    if max_days is not None and (last - first).days + 1 > max_days:
        raise ReportError(f"a report covers at most {max_days} days")
    return DateRange(first, last)


@dataclass(slots=True)
class Bucket:
    """One hour or day: every call (IVR-only too), and the queue figures of their queue legs."""

    calls: int = 0
    queued: Tally = field(default_factory=Tally)


@dataclass(slots=True)
class CallReport:
    range: DateRange
    by_queue: dict[str, Tally]
    by_service: dict[str, Tally]
    by_hour: list[Bucket]
    by_day: dict[date, Bucket]
    total: Bucket
    service_names: dict[str, str]


async def call_facts(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, tz: tzinfo
) -> list[tuple[CallFacts, Any]]:
    start, end = rng.bounds(tz)
    async with sessions() as db:
        return await load_facts(db, start, end)


async def call_report(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, stats: QueueStats
) -> CallReport:
    """Everything about calls in `rng`, from the interval summary (intervals.py): three
    GROUP BYs over its 15-minute buckets (by bucket, by queue, by service), so a year reads
    tens of thousands of summed rows, never the calls. Service level uses each queue's
    threshold as it was when the call was written (`stats` is kept for the signature)."""
    tz = stats.tz
    start, end = rng.bounds(tz)
    iv = CallInterval
    in_range = (iv.bucket >= start, iv.bucket < end)
    sums = intervals.summed_columns()
    async with sessions() as db:
        names = dict((await db.execute(select(ServiceType.code, ServiceType.name))).all())
        per_bucket = (await db.execute(
            select(iv.bucket, *sums).where(*in_range).group_by(iv.bucket))).all()
        per_queue = (await db.execute(
            select(iv.queue, *sums).where(*in_range, iv.queue != "").group_by(iv.queue))).all()
        per_service = (await db.execute(
            select(iv.service, *sums).where(*in_range, iv.queue != "")
            .group_by(iv.service))).all()
    by_hour = [Bucket() for _ in range(24)]
    by_day = {d: Bucket() for d in rng.days()}
    total = Bucket()
    # a year is ~35,000 buckets: first summed per local (day, hour) as plain lists (cheap),
    # then made into Tallies (a few thousand)
    width = len(sums)
    hours: dict[tuple[date, int], list[Any]] = {}
    for row in per_bucket:
        local = row[0].astimezone(tz)  # 15-minute buckets: one local hour and day each
        key = (local.date(), local.hour)
        acc = hours.get(key)
        if acc is None:
            hours[key] = [v or 0 for v in row[1:]]
        else:
            for i in range(width - 1):
                acc[i] += row[i + 1] or 0
            acc[-1] = max(acc[-1], row[width] or 0)
    columns = (*intervals.SUMS, "longest_wait")
    for (day, hour), acc in hours.items():
        values = dict(zip(columns, acc, strict=True))
        t, calls = intervals.tally_of(values), int(values["calls"])
        for b in (by_hour[hour], by_day.setdefault(day, Bucket()), total):
            b.calls += calls
            _merge(b.queued, t)
    return CallReport(
        range=rng,
        by_queue={r.queue: intervals.tally_of(r) for r in sorted(per_queue, key=_first)},
        by_service={r.service: intervals.tally_of(r) for r in sorted(per_service, key=_first)},
        by_hour=by_hour, by_day=by_day, total=total, service_names=names,
    )


def _first(row: Any) -> Any:
    return row[0]


def _merge(into: Tally, t: Tally) -> None:
    for name in ("offered", "answered", "answered_in_sl", "abandoned", "short_abandoned",
                 "timed_out", "other", "wait_sum", "wait_n", "handle_sum", "handle_n"):
        setattr(into, name, getattr(into, name) + getattr(t, name))
    into.longest_wait = max(into.longest_wait, t.longest_wait)


async def call_report_from_rows(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, stats: QueueStats
) -> CallReport:
    """The same report counted call by call in Python (the definition the summary must equal;
    tests compare the two). Thresholds per queue come from `stats`' config."""
    tz = stats.tz
    facts = [f for f, _ in await call_facts(sessions, rng, tz)]
    async with sessions() as db:
        names = dict((await db.execute(select(ServiceType.code, ServiceType.name))).all())
    by_queue: dict[str, Tally] = {}
    by_service: dict[str, Tally] = {}
    by_hour = [Bucket() for _ in range(24)]
    by_day = {d: Bucket() for d in rng.days()}
    total = Bucket()
    for f in facts:
        local = f.started_at.astimezone(tz)
        buckets = [by_hour[local.hour], by_day.setdefault(local.date(), Bucket()), total]
        for b in buckets:
            b.calls += 1
        for leg in f.legs:  # each queue counts its own legs, as the wallboard
            sl = stats.config(leg.queue).service_level_seconds
            by_queue.setdefault(leg.queue, Tally()).add(leg, sl)
            by_service.setdefault(f.service or "", Tally()).add(leg, sl)
            for b in buckets:
                b.queued.add(leg, sl)
    return CallReport(
        range=rng, by_queue=dict(sorted(by_queue.items())),
        by_service=dict(sorted(by_service.items())), by_hour=by_hour, by_day=by_day,
        total=total, service_names=names,
    )


# --- SLA of cases -------------------------------------------------------------------------------


@dataclass(slots=True)
class SlaRow:
    """Cases of one agency by SLA outcome (cases/sla.py `report_bucket`): a case is on time only
    when it closed by its due time; an open case not yet due is "open, not due", never on time."""

    agency: str
    total: int = 0
    on_time: int = 0  # closed by the due time
    late: int = 0  # closed after the due time
    overdue: int = 0  # open past the due time (already a breach)
    at_risk: int = 0  # open, less than 20 % of the allowance left in the service's clock
    open_not_due: int = 0  # open (or waiting on the citizen), not yet due
    no_sla: int = 0  # no due time set

    @property
    def breached(self) -> int:
        return self.late + self.overdue

    @property
    def compliance(self) -> float | None:
        """on time / (on time + closed late + open overdue): the cases whose SLA outcome is
        known; cases still open and not yet due are left out until they close or fall due."""
        den = self.on_time + self.late + self.overdue
        return self.on_time / den if den else None


async def sla_report(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, tz: tzinfo, now: datetime,
    zone: str = "UTC",
) -> list[SlaRow]:
    """Cases created in `rng`, by agency; `zone` is the center's (agencies' business hours).
    Counted in SQL by the store's conditions (the one definition), one pass over the range."""
    start, end = rng.bounds(tz)
    async with sessions() as db:
        watch = await sla_conditions(db, now, zone)
        due = Case.sla_due_at
        closed = Case.status == "closed"
        rows = (
            await db.execute(
                select(Agency.name, func.count(),
                       sla_tally(and_(closed, Case.closed_at <= due)),
                       sla_tally(and_(closed, due.is_not(None),
                                   or_(Case.closed_at.is_(None), Case.closed_at > due))),
                       sla_tally(watch.overdue), sla_tally(watch.at_risk),
                       sla_tally(due.is_(None)))
                .select_from(Case)
                .outerjoin(Agency, Agency.id == Case.agency_id)
                .where(Case.created_at >= start, Case.created_at < end)
                .group_by(Agency.name)
            )
        ).all()
    out: list[SlaRow] = []
    for agency, total, on_time, late, overdue, at_risk, no_sla in rows:
        row = SlaRow(agency or "(no agency)", int(total), int(on_time or 0), int(late or 0),
                     int(overdue or 0), int(at_risk or 0), 0, int(no_sla or 0))
        row.open_not_due = row.total - row.on_time - row.late - row.overdue - row.at_risk \
            - row.no_sla
        out.append(row)
    return sorted(out, key=lambda r: r.agency)


# --- CSV ----------------------------------------------------------------------------------------


def csv_cell(value: Any, limit: int = CSV_TEXT_LIMIT) -> str:
    """One cell, safe to open in a spreadsheet: one line, bounded, never a formula.

    A text cell starting with = + - @ (or a tab/CR, or their full-width forms) is prefixed with
    an apostrophe, as OWASP advises, so Excel/LibreOffice show it as text instead of running it.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        # the common case, fast (a million-row export): already one clean printable line
        # within the limit is exactly what clean_text would return
        if (len(value) <= limit and value.isprintable() and "  " not in value
                and value[:1] != " " and value[-1:] != " "):
            text = value
        else:
            text = clean_text(value, limit)
        return "'" + text if text.startswith(_FORMULA_START) else text
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)  # figures are rounded where they are made (Tally.figures)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = clean_text(str(value), limit)
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return text


def _csv(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
        yield buf.getvalue()
        buf.seek(0)
        buf.truncate()


CALL_COLUMNS = (
    "started_at", "ended_at", "queue", "service", "outcome", "caller_number", "caller_name",
    "agent", "ivr_seconds", "wait_seconds", "ring_seconds", "talk_seconds", "hold_seconds",
    "wrap_seconds", "case_number", "partial",
)
# Added after the original columns (a spreadsheet built on the old ones keeps working): what the
# operator recorded, the caller's language, and the number of the case the call is linked to
# (`case_number` is what the caller keyed in the IVR).
# (The issue also asks for the legs: when a call becomes one row plus its queue legs, a `legs`
# column, e.g. "sanitation>general-311", or a second export with one row per leg, goes here.)
CSV_EXTRA_COLUMNS = ("disposition", "language", "linked_case")
CSV_CHUNK_ROWS = 500  # rows per database fetch and per chunk sent: small, so the loop breathes
BYTES_PER_ROW = 180  # about, for the size warning of a long range


async def calls_csv_chunks(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, tz: tzinfo,
    *, chunk_rows: int = CSV_CHUNK_ROWS,
) -> AsyncGenerator[str, None]:
    """Every call in `rng`, one row each, times in the center's time zone: the CSV text in
    chunks of `chunk_rows` rows, read through a server-side cursor (PostgreSQL) as they are
    sent, so any range takes the same little memory and the event loop is never held long."""
    start, end = rng.bounds(tz)
    query = (
        select(*(getattr(Call, c) for c in CALL_COLUMNS), Call.disposition, Call.language,
               Case.number)
        .outerjoin(Case, Case.id == Call.case_id)
        .where(Call.started_at >= start, Call.started_at < end)
        .order_by(Call.started_at, Call.id)
        .execution_options(yield_per=chunk_rows)
    )
    yield "".join(_csv([CALL_COLUMNS + CSV_EXTRA_COLUMNS]))
    rows_csv = _CallRowsCsv(tz)
    async with sessions() as db:
        # Core rows (the session's connection, no ORM result layer): a fifth less per row
        conn = await db.connection()
        result = await conn.stream(query)
        async for part in result.partitions():
            yield rows_csv.text(part)


class _CallRowsCsv:
    """The rows of the calls CSV, as `csv_cell` would write them, several times faster: each
    column's type is known (no isinstance chain per cell) and text cells repeat (queues,
    services, outcomes, agents, numbers), so each distinct one is cleaned once."""

    _TIMES = (0, 1)
    _NUMBERS = tuple(CALL_COLUMNS.index(c) for c in (
        "ivr_seconds", "wait_seconds", "ring_seconds", "talk_seconds", "hold_seconds",
        "wrap_seconds"))
    _FLAGS = (CALL_COLUMNS.index("partial"),)
    CACHE_MAX = 50_000  # distinct text cells kept per export

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        width = len(CALL_COLUMNS) + len(CSV_EXTRA_COLUMNS)
        skip = set(self._TIMES + self._NUMBERS + self._FLAGS)
        self._texts = tuple(i for i in range(width) if i not in skip)
        self._cache: dict[str, str] = {}

    def _text(self, value: Any) -> str:
        if value is None:
            return ""
        cell = self._cache.get(value)
        if cell is None:
            if len(self._cache) >= self.CACHE_MAX:
                self._cache.clear()
            cell = self._cache[value] = csv_cell(value)
        return cell

    def text(self, rows: Iterable[Any]) -> str:
        tz, text = self.tz, self._text
        out = []
        for r in rows:
            cells = list(r)
            for i in self._TIMES:
                v = cells[i]
                cells[i] = "" if v is None else v.astimezone(tz).isoformat(timespec="seconds")
            for i in self._NUMBERS:
                v = cells[i]
                cells[i] = "" if v is None else str(v)
            for i in self._FLAGS:
                v = cells[i]
                cells[i] = "" if v is None else ("yes" if v else "no")
            for i in self._texts:
                cells[i] = text(cells[i])
            out.append(cells)
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(out)
        return buf.getvalue()


async def calls_csv(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, tz: tzinfo
) -> str:
    """The whole CSV as one string (small ranges, tests); the web route streams the chunks."""
    return "".join([chunk async for chunk in calls_csv_chunks(sessions, rng, tz)])


SUMMARY_COLUMNS = (
    "by", "name", "offered", "answered", "answered_in_sl", "abandoned", "short_abandoned",
    "timed_out", "service_level", "asa_seconds", "aht_seconds", "abandon_rate",
    "longest_wait_seconds",
)


def summary_csv(report: CallReport) -> str:
    def lines() -> Iterator[tuple[Any, ...]]:
        yield SUMMARY_COLUMNS
        for by, table in (("queue", report.by_queue), ("service", report.by_service)):
            for name, t in table.items():
                fig = t.figures()
                yield (by, name or "(none)", *(fig[c] for c in SUMMARY_COLUMNS[2:]))

    return "".join(_csv(lines()))


__all__ = [
    "CallReport",
    "DateRange",
    "ReportError",
    "SlaRow",
    "call_report",
    "call_report_from_rows",
    "calls_csv",
    "calls_csv_chunks",
    "csv_cell",
    "parse_range",
    "sla_report",
    "summary_csv",
]
