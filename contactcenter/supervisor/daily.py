"""Daily roll-ups of the interval summary (intervals.py), for long report ranges.

A 366-day report read from 15-minute buckets sums ~35,000 buckets × queue × service rows
(440,000 at 10M calls); its page shows days, hours of the day, queues and services only. So
the same sums are also kept per local day (the center's time zone, `CC_TIMEZONE`):

* `call_days`: per day × queue × service (the queue and service tables, and the days);
* `call_day_hours`: per day × local hour, every queue and service together (the charts).

A 15-minute bucket lies within one local hour in every real zone (offsets are whole quarter
hours), so each bucket adds to exactly one day and hour: the roll-ups hold the same figures as
the buckets, summed earlier. They are kept with the buckets (the case writer's transaction, a
wrap-up recorded later) and restated from them by `contactcenter reports rebuild`, which is
also what to run after changing `CC_TIMEZONE` (days are those of the zone they were written in).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from contactcenter.supervisor.models import CallDay, CallDayHour, CallInterval

from .intervals import SUMS, Key, Row, bucket_of
from .stats import CallFacts

COLUMNS = (*SUMS, "longest_wait")  # the sums, then the longest wait (a max)
DayKey = tuple[date, str, str]  # (local day, queue, service)
HourKey = tuple[date, int]  # (local day, local hour)


def _add(acc: list[Any], values: Iterable[Any]) -> None:
    """acc += values (sums); the last one (longest wait) the larger."""
    for i, v in enumerate(values):
        if i == len(acc) - 1:
            acc[i] = max(acc[i], v or 0)
        else:
            acc[i] += v or 0


def fold(
    rows: Iterable[tuple[datetime, str, str, Iterable[Any]]], tz: tzinfo
) -> tuple[dict[DayKey, list[Any]], dict[HourKey, list[Any]]]:
    """(bucket, queue, service, values in COLUMNS order) rows -> the two roll-ups' rows (pure).
    Locals are computed once per bucket."""
    days: dict[DayKey, list[Any]] = {}
    hours: dict[HourKey, list[Any]] = {}
    local_of: dict[datetime, tuple[date, int]] = {}
    for bucket, queue, service, values in rows:
        vals = list(values)
        local = local_of.get(bucket)
        if local is None:
            at = bucket.astimezone(tz)
            local = local_of[bucket] = (at.date(), at.hour)
        day_key = (local[0], queue, service)
        acc = days.get(day_key)
        if acc is None:
            days[day_key] = [v or 0 for v in vals]
        else:
            _add(acc, vals)
        acc = hours.get(local)
        if acc is None:
            hours[local] = [v or 0 for v in vals]
        else:
            _add(acc, vals)
    return days, hours


def from_summary(rows: dict[Key, Row], tz: tzinfo) -> tuple[dict[DayKey, list[Any]],
                                                             dict[HourKey, list[Any]]]:
    """The roll-ups' rows of what `intervals.summarize` adds to the buckets."""
    return fold(((b, q, s, [v[c] for c in COLUMNS])
                 for (b, q, s), row in rows.items() for v in (row.values(),)), tz)


async def _upsert(conn: AsyncConnection, model: Any, keys: tuple[str, ...],
                  rows: dict[Any, list[Any]]) -> None:
    if not rows:
        return
    ins: Any = (postgresql.insert(model) if conn.dialect.name == "postgresql"
                else sqlite.insert(model))
    c, new = model.__table__.c, ins.excluded
    stmt = ins.on_conflict_do_update(
        index_elements=list(keys),
        set_={
            **{name: c[name] + new[name] for name in SUMS},
            "longest_wait": case((new.longest_wait > c.longest_wait, new.longest_wait),
                                 else_=c.longest_wait),
        },
    )
    await conn.execute(stmt, [{**dict(zip(keys, key, strict=True)),
                               **dict(zip(COLUMNS, acc, strict=True))}
                              for key, acc in sorted(rows.items())])


async def upsert(conn: AsyncConnection, rows: dict[Key, Row], tz: tzinfo) -> None:
    """Add what `rows` add to the buckets to the day roll-ups (the writer's transaction)."""
    days, hours = from_summary(rows, tz)
    await _upsert(conn, CallDay, ("day", "queue", "service"), days)
    await _upsert(conn, CallDayHour, ("day", "hour"), hours)


async def add_wrap(db: AsyncSession, facts: CallFacts, queue: str, delta: float,
                   tz: tzinfo) -> None:
    """`intervals.add_wrap` moved the handle time of (the call's bucket, `queue`, service) by
    `delta`: the same in the day roll-ups."""
    at = bucket_of(facts.started_at).astimezone(tz)
    day = at.date()
    await db.execute(update(CallDay).where(
        CallDay.day == day, CallDay.queue == queue, CallDay.service == (facts.service or "")
    ).values(handle_sum=CallDay.handle_sum + delta))
    await db.execute(update(CallDayHour).where(
        CallDayHour.day == day, CallDayHour.hour == at.hour
    ).values(handle_sum=CallDayHour.handle_sum + delta))


def day_bounds(first: date, last: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[local midnight of `first`, local midnight after `last`)."""
    end = last + timedelta(days=1)
    return (datetime(first.year, first.month, first.day, tzinfo=tz),
            datetime(end.year, end.month, end.day, tzinfo=tz))


async def rebuild(
    sessions: async_sessionmaker[AsyncSession], tz: tzinfo,
    start: datetime | None = None, end: datetime | None = None, *, step_days: int = 31,
) -> int:
    """Restate the roll-ups of the local days touching [start, end) (default: every bucket's)
    from the interval summary, `step_days` per transaction. Returns the buckets' rows read."""
    async with sessions() as db:
        first_b, last_b = (await db.execute(
            select(CallInterval.bucket).order_by(CallInterval.bucket).limit(1)
        )).scalar(), (await db.execute(
            select(CallInterval.bucket).order_by(CallInterval.bucket.desc()).limit(1)
        )).scalar()
    lo_t = start if start is not None else first_b
    hi_t = end if end is not None else (last_b + timedelta(minutes=15) if last_b else None)
    if lo_t is None or hi_t is None or hi_t <= lo_t:
        return 0
    day = lo_t.astimezone(tz).date()
    last = (hi_t - timedelta(microseconds=1)).astimezone(tz).date()
    read = 0
    iv = CallInterval
    while day <= last:
        upto = min(day + timedelta(days=step_days - 1), last)
        lo, hi = day_bounds(day, upto, tz)
        async with sessions() as db, db.begin():
            conn = await db.connection()
            await conn.execute(delete(CallDay).where(CallDay.day >= day, CallDay.day <= upto))
            await conn.execute(delete(CallDayHour).where(
                CallDayHour.day >= day, CallDayHour.day <= upto))
            found = (await conn.execute(
                select(iv.bucket, iv.queue, iv.service,
                       *(iv.__table__.c[name] for name in COLUMNS))
                .where(iv.bucket >= lo, iv.bucket < hi))).all()
            days, hours = fold(((r[0], r[1], r[2], r[3:]) for r in found), tz)
            await _upsert(conn, CallDay, ("day", "queue", "service"), days)
            await _upsert(conn, CallDayHour, ("day", "hour"), hours)
            read += len(found)
        day = upto + timedelta(days=1)
    async with sessions() as db:
        if (await db.connection()).dialect.name == "postgresql":
            await db.execute(text("ANALYZE call_days"))
            await db.execute(text("ANALYZE call_day_hours"))
            await db.commit()
    return read


__all__ = ["COLUMNS", "add_wrap", "day_bounds", "fold", "rebuild", "upsert"]
