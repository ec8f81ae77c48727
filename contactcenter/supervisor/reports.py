"""Historical reports over a date range: calls by hour and day, the queue figures by queue and by
service type, SLA compliance of cases by agency, and CSV exports.

The figures use the same `Tally` as the live wallboard (stats.py), summed per 15 minutes, queue
and service in the interval summary (intervals.py) as calls are written, so a report of today
agrees with the wallboard and with `/api/queues`, and a year reads thousands of rows. Days are the
center's time zone (`CC_TIMEZONE`); a call belongs to the day and hour in which it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import DateTime, and_, func, literal, or_, select, type_coerce
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.cases.models import Call, CallLeg, Case, CaseSlaPause
from contactcenter.cases.store import sla_conditions, sla_tally
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor.models import CallDay, CallDayHour, CallInterval

from . import daily, intervals
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


DAILY_FROM_DAYS = 32  # ranges this long or longer read the day roll-ups (daily.py)


async def call_report(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, stats: QueueStats,
    *, daily_rollup: bool | None = None,
) -> CallReport:
    """Everything about calls in `rng`, from the interval summary (intervals.py): two
    GROUP BYs over its 15-minute buckets (by bucket; by queue and service, which gives both
    tables), never the calls. A long range (`DAILY_FROM_DAYS`, or `daily_rollup`) reads the
    same sums rolled up per local day (daily.py): per day and hour, and per day, queue and
    service, a few thousand rows for a year. Service level uses each queue's threshold as it
    was when the call was written (`stats` is kept for the signature)."""
    tz = stats.tz
    if daily_rollup is None:
        daily_rollup = len(rng.days()) >= DAILY_FROM_DAYS
    start, end = rng.bounds(tz)
    per_bucket_q: Any
    per_pair_q: Any
    if daily_rollup:
        dh, dd = CallDayHour, CallDay
        hc, dc = dh.__table__.c, dd.__table__.c
        per_bucket_q = select(dh.day, dh.hour, *(hc[n] for n in daily.COLUMNS)).where(
            dh.day >= rng.first, dh.day <= rng.last)
        per_pair_q = (select(dd.queue, dd.service, *_summed(dc))
                      .where(dd.day >= rng.first, dd.day <= rng.last, dd.queue != "")
                      .group_by(dd.queue, dd.service))
    else:
        iv = CallInterval
        in_range = (iv.bucket >= start, iv.bucket < end)
        sums = intervals.summed_columns()
        per_bucket_q = select(iv.bucket, *sums).where(*in_range).group_by(iv.bucket)
        per_pair_q = (select(iv.queue, iv.service, *sums).where(*in_range, iv.queue != "")
                      .group_by(iv.queue, iv.service))
    concurrent = parallel_reads(sessions)

    async def rows(query: Any) -> list[Any]:
        # Core rows on the session's connection: the ORM's row layer cost a third of a year
        async with sessions() as db:
            return list((await (await db.connection()).execute(query)).all())

    async with sessions() as db:
        conn = await db.connection()
        names = dict((await conn.execute(select(ServiceType.code, ServiceType.name))).all())
        if concurrent:
            # two server processes at once: a year's two scans take the time of the longer
            per_bucket, per_pair = await asyncio.gather(rows(per_bucket_q), rows(per_pair_q))
        else:  # SQLite: one file, one connection's worth of work
            per_bucket = list((await conn.execute(per_bucket_q)).all())
            per_pair = list((await conn.execute(per_pair_q)).all())
    width = len(_COLUMNS)  # the SUMS, then longest_wait (a max)
    hours: dict[tuple[date, int], list[Any]] = {}
    if daily_rollup:  # already one row per local (day, hour)
        hours = {(row[0], row[1]): [v or 0 for v in row[2:]] for row in per_bucket}
    else:
        # a year is ~35,000 buckets: summed as plain lists per local (day, hour), then per
        # hour of day, per day and in total; Tallies are made only for those (a few hundred)
        for row in per_bucket:
            local = row[0].astimezone(tz)  # 15-minute buckets: one local hour and day each
            key = (local.date(), local.hour)
            acc = hours.get(key)
            if acc is None:
                hours[key] = [v or 0 for v in row[1:]]
            else:
                _add(acc, row, 1, width)
    by_hour_acc: list[list[Any] | None] = [None] * 24
    by_day_acc: dict[date, list[Any]] = {}
    total_acc = [0] * width
    for (day, hour), acc in hours.items():
        h = by_hour_acc[hour]
        if h is None:
            by_hour_acc[hour] = list(acc)
        else:
            _add(h, acc, 0, width)
        d = by_day_acc.get(day)
        if d is None:
            by_day_acc[day] = list(acc)
        else:
            _add(d, acc, 0, width)
        _add(total_acc, acc, 0, width)
    by_queue_acc: dict[str, list[Any]] = {}
    by_service_acc: dict[str, list[Any]] = {}
    for row in per_pair:
        for key, table in ((row[0], by_queue_acc), (row[1], by_service_acc)):
            acc = table.get(key)
            if acc is None:
                table[key] = [v or 0 for v in row[2:]]
            else:
                _add(acc, row, 2, width)
    by_day = {d: Bucket() for d in rng.days()}
    for day, acc in by_day_acc.items():
        by_day[day] = _bucket(acc)
    return CallReport(
        range=rng,
        by_queue={k: _tally(v) for k, v in sorted(by_queue_acc.items())},
        by_service={k: _tally(v) for k, v in sorted(by_service_acc.items())},
        by_hour=[Bucket() if acc is None else _bucket(acc) for acc in by_hour_acc],
        by_day=by_day, total=_bucket(total_acc), service_names=names,
    )


def _summed(c: Any) -> list[Any]:
    """The sums of a GROUP BY over a roll-up's columns `c`, the longest wait their max."""
    return [*(func.sum(c[name]).label(name) for name in intervals.SUMS),
            func.max(c.longest_wait).label("longest_wait")]


_COLUMNS = (*intervals.SUMS, "longest_wait")


def parallel_reads(sessions: async_sessionmaker[AsyncSession]) -> bool:
    """Several reads of a report may run at once, each in its own session: PostgreSQL (a
    server process each); not SQLite (one file, and an in-memory one is one connection)."""
    bind = sessions.kw.get("bind")
    return bind is not None and bind.dialect.name == "postgresql"


def _add(acc: list[Any], values: Any, offset: int, width: int) -> None:
    """acc += values[offset:] (sums), the last one (longest wait) the larger."""
    for i in range(width - 1):
        acc[i] += values[offset + i] or 0
    acc[-1] = max(acc[-1], values[offset + width - 1] or 0)


def _tally(acc: list[Any]) -> Tally:
    return intervals.tally_of(dict(zip(_COLUMNS, acc, strict=True)))


def _bucket(acc: list[Any]) -> Bucket:
    return Bucket(int(acc[0]), _tally(acc))


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
    Counted in SQL by the store's conditions (the one definition), grouped by agency id (names
    joined here) so PostgreSQL can split a pass between worker processes: the closed cases
    (nearly all of a long range: three counts each, from ix_cases_created alone), the open
    ones (the open-case index), and the overdue ones waiting on the citizen (a correlated
    look-up that would make a pass serial) apart, from the few cases with an open pause."""
    start, end = rng.bounds(tz)
    in_range = (Case.created_at >= start, Case.created_at < end)
    async with sessions() as db:
        watch = await sla_conditions(db, now, zone)
        names: dict[int | None, str | None] = dict(
            (await db.execute(select(Agency.id, Agency.name))).all())
    due = Case.sla_due_at
    closed = Case.status == "closed"
    # closed cases (nearly all of a long range): on time, or without a due time, or else late
    closed_q = (select(Case.agency_id, func.count(),
                       func.count().filter(Case.closed_at <= due),
                       func.count().filter(due.is_(None)))
                .where(*in_range, closed).group_by(Case.agency_id))
    open_q = (select(Case.agency_id, func.count(),
                     sla_tally(and_(closed, Case.closed_at <= due)),
                     sla_tally(and_(closed, due.is_not(None),
                                    or_(Case.closed_at.is_(None), Case.closed_at > due))),
                     sla_tally(watch.overdue_live), sla_tally(watch.at_risk),
                     sla_tally(due.is_(None)))
              .where(*in_range, Case.status != "closed").group_by(Case.agency_id))
    waiting_q = (select(Case.agency_id, func.count())
                 .where(*in_range, watch.late_waiting,
                        Case.id.in_(select(CaseSlaPause.case_id)
                                    .where(CaseSlaPause.ended_at.is_(None))))
                 .group_by(Case.agency_id))

    async def rows(query: Any) -> list[Any]:
        async with sessions() as db:
            conn = await db.connection()
            if conn.dialect.name == "postgresql":
                # compiling the plan (JIT) costs more than it saves on a pass of this size
                await conn.execute(sql("SET LOCAL jit = off"))
            return list((await conn.execute(query)).all())

    if parallel_reads(sessions):
        done, bulk, waiting = await asyncio.gather(rows(closed_q), rows(open_q), rows(waiting_q))
    else:
        done, bulk, waiting = await rows(closed_q), await rows(open_q), await rows(waiting_q)
    # closed: late = closed with a due time, not closed by it (closed_at NULL too)
    bulk += [(agency_id, n, on_time, n - on_time - no_sla, 0, 0, no_sla)
             for agency_id, n, on_time, no_sla in done]
    late_waiting: dict[str | None, int] = {}
    for agency_id, n in waiting:
        name = names.get(agency_id)
        late_waiting[name] = late_waiting.get(name, 0) + int(n)
    merged: dict[str | None, list[int]] = {}
    for agency_id, *counts in bulk:
        acc = merged.setdefault(names.get(agency_id), [0] * 6)
        for i, v in enumerate(counts):
            acc[i] += int(v or 0)
    for name, n in late_waiting.items():  # disjoint from the open overdue ones
        merged.setdefault(name, [0] * 6)[3] += n
    out: list[SlaRow] = []
    for agency, (total, on_time, late, overdue, at_risk, no_sla) in merged.items():
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
# operator recorded, the caller's language, the number of the case the call is linked to
# (`case_number` is what the caller keyed in the IVR), and the queues the call went through in
# order ("sanitation>general-311"; a call recorded without its legs: its queue).
CSV_EXTRA_COLUMNS = ("disposition", "language", "linked_case", "legs")
CSV_CHUNK_ROWS = 1000  # rows per database fetch and per chunk sent: a few ms of CPU each
BYTES_PER_ROW = 190  # about, for the size warning of a long range
LEGS_SEPARATOR = ">"


def _legs_column(dialect: str) -> Any:
    """The call's queue legs in order, joined by ">" (NULL when it has none), one indexed
    look-up per call (uq_call_legs_call_id_seq)."""
    leg = CallLeg
    mine = (leg.call_id == Call.id, leg.kind == "queue", leg.queue.is_not(None))
    if dialect == "postgresql":
        order = aggregate_order_by(literal(LEGS_SEPARATOR), leg.seq)
        return select(func.string_agg(leg.queue, order)).where(*mine).scalar_subquery()
    # SQLite (3.40) has no ORDER BY inside an aggregate: group_concat reads its subquery's rows
    # in the subquery's order
    ordered = select(leg.queue.label("q")).where(*mine).order_by(leg.seq).correlate(Call)
    inner = ordered.subquery()
    return select(func.group_concat(inner.c.q, LEGS_SEPARATOR)).scalar_subquery()


def _calls_query(dialect: str, start: datetime, end: datetime) -> Any:
    times: list[Any]
    if dialect == "postgresql":
        # asyncpg gives aware datetimes already: the store's UTC type adds a call per cell
        times = [type_coerce(Call.started_at, DateTime(timezone=True)),
                 type_coerce(Call.ended_at, DateTime(timezone=True))]
    else:
        times = [Call.started_at, Call.ended_at]
    # the linked case's number per call, by its primary key: a join made PostgreSQL hash the
    # whole cases table for each export
    linked = select(Case.number).where(Case.id == Call.case_id).scalar_subquery()
    return (
        select(*times, *(getattr(Call, c) for c in CALL_COLUMNS[2:]), Call.disposition,
               Call.language, linked, _legs_column(dialect))
        .where(Call.started_at >= start, Call.started_at < end)
        .order_by(Call.started_at, Call.id)
    )


async def calls_csv_chunks(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, tz: tzinfo,
    *, chunk_rows: int = CSV_CHUNK_ROWS,
) -> AsyncGenerator[str, None]:
    """Every call in `rng`, one row each, times in the center's time zone: the CSV text in
    chunks of `chunk_rows` rows, read through a server-side cursor (PostgreSQL) as they are
    sent, so any range takes the same little memory and the event loop is never held long.

    A task reads the next chunks while this one is written (at most `_READ_AHEAD` chunks
    ahead): the database works on them while Python formats, instead of each waiting."""
    start, end = rng.bounds(tz)
    yield "".join(_csv([CALL_COLUMNS + CSV_EXTRA_COLUMNS]))
    rows_csv = _CallRowsCsv(tz)
    async with sessions() as db:
        # Core rows (the session's connection, no ORM result layer): a fifth less per row
        conn = await db.connection()
        if conn.dialect.name == "postgresql":
            # the per-call look-ups make the plan look costly enough for PostgreSQL to compile
            # it (JIT): tens of ms at 1M calls, more at 10M, for a plain index walk
            await conn.execute(sql("SET LOCAL jit = off"))
        query = _calls_query(conn.dialect.name, start, end).execution_options(
            yield_per=chunk_rows)
        parts: asyncio.Queue[Sequence[Any] | BaseException | None] = asyncio.Queue(_READ_AHEAD)

        async def read() -> None:
            try:
                result = await conn.stream(query)
                async for part in result.partitions():
                    await parts.put(part)
                await parts.put(None)
            except Exception as exc:  # raised where the chunks are consumed
                await parts.put(exc)

        reader = asyncio.create_task(read())
        try:
            while (part := await parts.get()) is not None:
                if isinstance(part, BaseException):
                    raise part
                # let the reader ask for the next rows before this chunk is formatted (a get
                # from a non-empty queue does not give the loop to anyone)
                await asyncio.sleep(0)
                yield rows_csv.text(part)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


_READ_AHEAD = 2  # chunks read ahead of the one being written


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_QUARTER = 900  # seconds: a UTC quarter-hour is within one local hour in every real zone
_MMSS = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]


class _CallRowsCsv:
    """The rows of the calls CSV, as `csv_cell` would write them, several times faster: the
    work is done column by column (a comprehension per column, not a call per cell), each
    column's type is known, text cells that repeat (queues, services, outcomes, agents) are
    cleaned once, and times are formatted from a per-quarter-hour prefix.

    What `csv.writer` writes by itself is left to it: None is an empty cell, a float its
    `repr` (= `str`, as `csv_cell` writes it)."""

    _TIMES = (0, 1)
    _QUEUE = CALL_COLUMNS.index("queue")
    _FLAGS = (CALL_COLUMNS.index("partial"),)
    # few distinct values: cleaned once per export (bounded cache)
    _REPEATING = tuple(CALL_COLUMNS.index(c) for c in ("queue", "service", "outcome", "agent")) \
        + tuple(len(CALL_COLUMNS) + i for i in range(4))
    # (nearly) all distinct: cleaned every time, with a fast path for a clean value
    _VARYING = tuple(CALL_COLUMNS.index(c) for c in ("caller_number", "caller_name",
                                                      "case_number"))
    CACHE_MAX = 50_000  # distinct repeating cells kept per export
    _FLAG_CELLS = {None: "", True: "yes", False: "no"}

    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz
        self._cells = _CellCache()
        self._quarters: dict[int, tuple[str, int, str]] = {}

    def _quarter(self, q: int) -> tuple[str, int, str] | None:
        """The local "YYYY-MM-DDTHH:" of the quarter-hour starting at q * 900 s, the index of
        its first second in _MMSS, and its UTC offset "+HH:MM"; None for an offset that is not
        whole quarter-hours (local mean times of the 19th century)."""
        if len(self._quarters) > 10_000:
            self._quarters.clear()
        local = (_EPOCH + timedelta(seconds=q * _QUARTER)).astimezone(self.tz)
        text = local.isoformat(timespec="seconds")  # 2026-11-03T10:15:00-05:00
        if local.second or local.minute % 15 or len(text) != 25:
            return None
        got = self._quarters[q] = (text[:14], local.minute * 60, text[19:])
        return got

    def _times(self, column: Iterable[datetime | None]) -> list[str]:
        out = []
        quarters, quarter, tz = self._quarters, self._quarter, self.tz
        for v in column:
            if v is None:
                out.append("")
                continue
            seconds = (v - _EPOCH) // _SECOND  # whole seconds, as isoformat(timespec="seconds")
            q, rest = divmod(seconds, _QUARTER)
            got = quarters.get(q) or quarter(q)
            if got is None:
                out.append(v.astimezone(tz).isoformat(timespec="seconds"))
            else:
                out.append(got[0] + _MMSS[got[1] + rest] + got[2])
        return out

    def text(self, rows: Iterable[Any]) -> str:
        columns: list[Any] = list(zip(*rows, strict=True))
        if not columns:
            return ""
        legs = columns[-1]
        # no legs recorded (calls written before legs were, or loaded in bulk): its one queue
        columns[-1] = [q if lg is None else lg for lg, q in zip(legs, columns[self._QUEUE],
                                                                   strict=True)]
        for i in self._TIMES:
            columns[i] = self._times(columns[i])
        flags = self._FLAG_CELLS
        for i in self._FLAGS:
            columns[i] = [flags[bool(v)] if v is not None else "" for v in columns[i]]
        cell = self._cells.__getitem__
        if len(self._cells) > self.CACHE_MAX:
            self._cells.clear()
        for i in self._REPEATING:
            columns[i] = list(map(cell, columns[i]))
        for i in self._VARYING:
            columns[i] = [_clean_cell(v) for v in columns[i]]
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows(zip(*columns, strict=True))
        return buf.getvalue()


class _CellCache(dict[Any, str]):
    """csv_cell of each distinct value, computed on first use (None: an empty cell)."""

    def __missing__(self, value: Any) -> str:
        cell = self[value] = "" if value is None else csv_cell(value)
        return cell


def _clean_cell(value: str | None) -> str | None:
    """csv_cell of a text cell, the common clean case inline (None stays None: empty)."""
    if value is None:
        return None
    if (len(value) <= CSV_TEXT_LIMIT and value.isprintable() and "  " not in value
            and value[:1] not in _NOT_FIRST and value[-1:] != " "):
        return value
    return csv_cell(value)


# a cell starting with one of these is not the plain case (a formula, or a space to strip)
_NOT_FIRST = frozenset((*_FORMULA_START, " "))


# --- the calls CSV written by PostgreSQL (COPY) -------------------------------------------------
# The same bytes as _CallRowsCsv, made by the database server: COPY ... TO STDOUT (FORMAT csv)
# quotes exactly as csv.writer's QUOTE_MINIMAL does for cells that clean_text has made one line
# (a comma or a double quote), a NULL is an empty unquoted cell, and an empty string is turned into
# NULL (COPY would write it as ""). The Python process only forwards the bytes: a fraction of a
# microsecond per row instead of ~12, and no row objects for the garbage collector.


@functools.cache
def _not_printable_class() -> str:
    """A regex bracket expression of every character `str.isprintable` rejects (this Python's
    Unicode tables; NUL and surrogates cannot be in a PostgreSQL text), to clean as clean_text."""
    ranges: list[str] = []
    start: int | None = None
    for code in range(1, sys.maxunicode + 2):
        bad = code <= sys.maxunicode and not (0xD800 <= code < 0xE000) \
            and not chr(code).isprintable()
        if bad and start is None:
            start = code
        elif not bad and start is not None:
            last = code - 1
            ranges.append(chr(start) if start == last else f"{chr(start)}-{chr(last)}")
            start = None
    return "[" + "".join(ranges) + "]"


_FORMULA_SQL = ", ".join(f"'{c}'" if c.isprintable() else f"chr({ord(c)})" for c in _FORMULA_START)


def _text_cell_sql(v: str) -> str:
    """csv_cell of the text expression `v` (a column, evaluated a few times) in SQL, NULL for an
    empty cell: a plain printable ASCII line (nearly every cell) by one regex test, anything else
    cleaned as clean_text does (controls to spaces, runs of spaces to one, cut with an ellipsis)."""
    limit = CSV_TEXT_LIMIT
    cleaned = (f"btrim(regexp_replace(regexp_replace(left({v}, {limit * 4}), $3, ' ', 'g'),"
               f" ' {{2,}}', ' ', 'g'), ' ')")
    slow = (f"(SELECT CASE WHEN left(x, 1) IN ({_FORMULA_SQL}) THEN '''' || x"
            f" ELSE NULLIF(x, '') END FROM (SELECT CASE WHEN char_length(t) <= {limit} THEN t"
            f" ELSE left(t, {limit - 1}) || '…' END AS x FROM (SELECT {cleaned} AS t) s1) s2)")
    return (f"CASE WHEN {v} IS NULL THEN NULL"
            f" WHEN {v} ~ '^[!-~]([ -~]*[!-~])?$' AND char_length({v}) <= {limit}"
            f" AND strpos({v}, '  ') = 0 THEN CASE WHEN left({v}, 1) IN ('=', '+', '-', '@')"
            f" THEN '''' || {v} ELSE {v} END ELSE {slow} END")


def _float_cell_sql(v: str) -> str:
    """A float8 as Python's repr: PostgreSQL's shortest text, with ".0" on a whole number, Python's
    names of the special values, and no exponent below 1e16 (PostgreSQL's starts at 1e15)."""
    return (f"CASE WHEN {v} IS NULL THEN NULL WHEN abs({v}) < 1e15 THEN CASE WHEN {v} = trunc({v})"
            f" THEN {v}::text || '.0' ELSE {v}::text END"
            f" WHEN {v} = 'NaN' THEN 'nan' WHEN {v} = 'Infinity' THEN 'inf'"
            f" WHEN {v} = '-Infinity' THEN '-inf' WHEN abs({v}) >= 1e16 THEN {v}::text"
            f" ELSE (SELECT CASE WHEN strpos(n, '.') > 0 THEN n ELSE n || '.0' END"
            f" FROM (SELECT ({v}::text)::numeric::text AS n) s) END")


# a row none of whose text cells csv_cell changes (all but a few): its cells joined by chr(1)
# hold only printable ASCII, no cell starts like a formula or with a space or ends with one, no
# two spaces meet; and there are exactly as many chr(1) as joins (none came from a cell)
_NOT_PLAIN = "[^ -~\\x01]|(^|\\x01)[ =+@-]| (\\x01|$)|  "
_TEXT_COLUMNS = ("queue", "service", "outcome", "caller_number", "caller_name", "agent",
                 "case_number", "disposition", "language", "linked_case", "legs")


def _copy_calls_sql() -> str:
    """The SELECT of the COPY: $1, $2 the range's bounds, $3 the not-printable class; the times
    in the session's time zone (set to the center's in the transaction, DateStyle ISO).

    The innermost query reads each call once with its look-ups, the middle one tests the whole
    row's text at once (nearly every row is plain: then no cell needs more than NULLIF), the
    outer one formats. OFFSET 0 keeps each level's values from being computed again per use."""
    inner = [f"c.{name}" for name in CALL_COLUMNS if name not in ("started_at", "ended_at")]
    inner += ["c.disposition", "c.language",
              # the linked case by its primary key, only when there is one (a join made
              # PostgreSQL hash the whole cases table)
              f"CASE WHEN c.case_id IS NOT NULL THEN (SELECT k.number FROM {Case.__tablename__} k"
              f" WHERE k.id = c.case_id) END AS linked_case",
              "coalesce(lg.legs, c.queue) AS legs"]  # no legs recorded: the call's queue
    inner += [f"date_trunc('second', c.{name})::text AS {name}" for name in ("started_at",
                                                                              "ended_at")]
    reads = (
        f"SELECT {', '.join(inner)} FROM {Call.__tablename__} c"
        f" LEFT JOIN LATERAL (SELECT string_agg(l.queue, '{LEGS_SEPARATOR}' ORDER BY l.seq) AS legs"
        f" FROM {CallLeg.__tablename__} l WHERE l.call_id = c.id AND l.kind = 'queue'"
        f" AND l.queue IS NOT NULL OFFSET 0) lg ON true"
        f" WHERE c.started_at >= $1 AND c.started_at < $2 ORDER BY c.started_at, c.id OFFSET 0"
    )
    joined = f"concat({', chr(1), '.join(f'i.{n}' for n in _TEXT_COLUMNS)})"
    tested = (f"SELECT i.*, (j !~ '{_NOT_PLAIN}' AND octet_length(j) - octet_length(replace(j,"
              f" chr(1), '')) = {len(_TEXT_COLUMNS) - 1} AND coalesce(octet_length(i.legs), 0)"
              f" <= {CSV_TEXT_LIMIT}) AS plain FROM ({reads}) i,"
              f" LATERAL (SELECT {joined} AS j OFFSET 0) jj OFFSET 0")
    cells: list[str] = []
    for name in (*CALL_COLUMNS, *CSV_EXTRA_COLUMNS):
        if name in ("started_at", "ended_at"):
            # isoformat(timespec="seconds"): "2026-11-03 10:15:00-05" to "2026-11-03T10:15:00-05:00"
            cells.append(f"replace(r.{name}, ' ', 'T')"
                         f" || CASE WHEN length(r.{name}) = 22 THEN ':00' ELSE '' END")
        elif name.endswith("_seconds"):
            cells.append(_float_cell_sql(f"r.{name}"))
        elif name == "partial":
            cells.append("CASE WHEN r.partial THEN 'yes' WHEN NOT r.partial THEN 'no' END")
        else:
            cells.append(f"CASE WHEN r.plain THEN NULLIF(r.{name}, '')"
                         f" ELSE {_text_cell_sql(f'r.{name}')} END")
    return f"SELECT {', '.join(cells)} FROM ({tested}) r"


def _zone_name(tz: tzinfo) -> str | None:
    """The IANA name of the center's zone (PostgreSQL's tz database knows it), if it has one."""
    if tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None)
    return key if isinstance(key, str) else None


async def write_calls_csv(
    sessions: async_sessionmaker[AsyncSession], rng: DateRange, tz: tzinfo,
    write: Callable[[bytes], Awaitable[None]], *, use_copy: bool = True,
) -> None:
    """The calls CSV of `rng` (UTF-8 bytes) handed to `write` piece by piece, each awaited before
    the next is read (backpressure: memory stays flat whatever the range). PostgreSQL writes the
    rows itself (COPY); SQLite, or `use_copy=False`, the Python chunks of calls_csv_chunks."""
    zone = _zone_name(tz)
    bind = sessions.kw.get("bind")
    if not use_copy or bind is None or bind.dialect.name != "postgresql" or zone is None:
        async for chunk in calls_csv_chunks(sessions, rng, tz):
            await write(chunk.encode())
        return
    async with sessions() as db:
        conn = await db.connection()
        start, end = rng.bounds(tz)
        await write("".join(_csv([CALL_COLUMNS + CSV_EXTRA_COLUMNS])).encode())
        # the plan's look-ups make it look costly enough to compile (JIT): tens of ms for a walk
        await conn.execute(sql("SET LOCAL jit = off"))
        await conn.execute(sql("SELECT set_config('TimeZone', :zone, true),"
                               " set_config('DateStyle', 'ISO, MDY', true)"), {"zone": zone})
        raw = (await conn.get_raw_connection()).driver_connection
        assert raw is not None

        async def out(data: bytes) -> None:
            # COPY ends rows with "\n" and csv.writer with "\r\n"; no cell has a line break
            # (clean_text), so every "\n" ends a row
            await write(data.replace(b"\n", b"\r\n"))

        # made once per process, off the loop: a pass over every code point (~0.1 s)
        not_printable = await asyncio.to_thread(_not_printable_class)
        await raw.copy_from_query(_copy_calls_sql(), start, end, not_printable, output=out,
                                  format="csv")


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
    "parallel_reads",
    "parse_range",
    "sla_report",
    "summary_csv",
    "write_calls_csv",
]
