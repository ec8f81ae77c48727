"""The interval summary: the report figures' additive sums per 15 minutes, queue and service.

A report over any range reads these buckets (thousands of rows for a year) instead of every
call. 15-minute buckets (start in UTC) align with every real time zone's offset, so the hour
and the day of a bucket in the center's zone are those of each call in it.

Rules (the same as the wallboard's, stats.py, because the sums come from `Tally.add`):

* A call counts in the bucket of its ``started_at``. Each queue leg adds to the row of
  (bucket, its queue, the call's service); the call itself (``calls``, IVR-only calls too) is
  counted once, in the row of its first queue ("" when it reached none).
* ``answered_in_sl`` uses the queue's service-level threshold *when the call is written*: a
  threshold changed by an admin applies from then on, as the wallboard shows it. To restate
  history under the new threshold, run ``contactcenter reports rebuild --from ...``. (A wait
  histogram in fixed bins would give only the thresholds on its bin edges exactly; thresholds
  are free numbers, so the summary keeps the exact count for the threshold in force.)
* The call's wrap-up, learned after the call is written (the console), is added to the
  handle time of its last answered leg's row when it is recorded (`add_wrap`).
* Retention erases personal data, never figures: the summary keeps the counts of calls
  whose rows are purged. A rebuild restates a range from the rows that still exist.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import case, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from contactcenter.cases.models import Call
from contactcenter.queues.models import Queue
from contactcenter.supervisor.models import CallInterval

from .services import load_facts
from .stats import CallFacts, Tally

BUCKET = timedelta(minutes=15)
COUNTS = ("offered", "answered", "answered_in_sl", "abandoned", "short_abandoned",
          "timed_out", "other", "wait_n", "handle_n")
SUMS = ("calls", *COUNTS, "wait_sum", "handle_sum")

Key = tuple[datetime, str, str]  # (bucket, queue, service)


def bucket_of(t: datetime) -> datetime:
    """The start (UTC) of the 15-minute bucket holding `t` (aware)."""
    u = t.astimezone(UTC)
    return u.replace(minute=u.minute - u.minute % 15, second=0, microsecond=0)


@dataclass(slots=True)
class Row:
    calls: int = 0
    tally: Tally = field(default_factory=Tally)

    def values(self) -> dict[str, Any]:
        t = self.tally
        out: dict[str, Any] = {name: getattr(t, name) for name in COUNTS}
        out.update(calls=self.calls, wait_sum=t.wait_sum, handle_sum=t.handle_sum,
                   longest_wait=t.longest_wait)
        return out


def summarize(facts: Iterable[CallFacts], sl_of: Callable[[str], float]) -> dict[Key, Row]:
    """The summary rows of `facts` (pure): what they add to the table."""
    out: dict[Key, Row] = {}
    for f in facts:
        b, service = bucket_of(f.started_at), f.service or ""
        first = f.legs[0].queue if f.legs else ""
        out.setdefault((b, first, service), Row()).calls += 1
        for leg in f.legs:
            out.setdefault((b, leg.queue, service), Row()).tally.add(leg, sl_of(leg.queue))
    return out


def tally_of(row: Any) -> Tally:
    """A `Tally` from a row of summed columns, or a dict, with the table's names."""
    get = row.get if isinstance(row, dict) else row._mapping.get
    return Tally(
        **{name: int(get(name) or 0) for name in COUNTS},
        wait_sum=float(get("wait_sum") or 0.0), handle_sum=float(get("handle_sum") or 0.0),
        longest_wait=float(get("longest_wait") or 0.0),
    )


def summed_columns() -> list[Any]:
    """SELECT list of the sums of a GROUP BY over the table (labels as the columns)."""
    c = CallInterval.__table__.c
    return [*(func.sum(c[name]).label(name) for name in SUMS),
            func.max(c.longest_wait).label("longest_wait")]


async def upsert(conn: AsyncConnection, rows: dict[Key, Row]) -> None:
    """Add `rows` to the table: INSERT ... ON CONFLICT (bucket, queue, service) DO UPDATE
    with the sums added and the longest wait the larger (SQLite and PostgreSQL alike)."""
    if not rows:
        return
    dialect = conn.dialect.name
    ins: Any
    if dialect == "postgresql":
        ins = postgresql.insert(CallInterval)
    elif dialect == "sqlite":
        ins = sqlite.insert(CallInterval)
    else:  # pragma: no cover - the product supports these two
        raise RuntimeError(f"the interval summary needs SQLite or PostgreSQL, not {dialect}")
    c, new = CallInterval.__table__.c, ins.excluded
    stmt = ins.on_conflict_do_update(
        index_elements=["bucket", "queue", "service"],
        set_={
            **{name: c[name] + new[name] for name in SUMS},
            "longest_wait": case((new.longest_wait > c.longest_wait, new.longest_wait),
                                 else_=c.longest_wait),
        },
    )
    # one statement per row: a multi-row VALUES may not name one key twice in ON CONFLICT
    # (PostgreSQL refuses it); `summarize` already merged each key, so rows are distinct
    await conn.execute(stmt, [{"bucket": b, "queue": q, "service": s, **row.values()}
                              for (b, q, s), row in sorted(rows.items())])


async def thresholds(db: AsyncSession | AsyncConnection,
                     default: float) -> Callable[[str], float]:
    """The service-level threshold of each queue (the `queues` table), `default` otherwise."""
    found = dict((await db.execute(select(Queue.name, Queue.service_level_seconds))).all())
    return lambda queue: float(found.get(queue, default))


async def add_wrap(db: AsyncSession, facts: CallFacts, old: float | None,
                   new: float | None, tz: tzinfo = UTC) -> None:
    """The call's wrap-up changed from `old` to `new`: its last answered leg's handle time
    (when its talk time is known) moves by the difference, in the bucket and in the day
    roll-ups (daily.py, days in `tz`: the center's zone)."""
    from . import daily  # it builds on this module
    i = facts.wrap_leg
    if i is None:
        return
    leg = facts.legs[i]
    if leg.talk_seconds is None:
        return
    delta = (new or 0.0) - (old or 0.0)
    if delta == 0:
        return
    await db.execute(
        update(CallInterval)
        .where(CallInterval.bucket == bucket_of(facts.started_at),
               CallInterval.queue == leg.queue, CallInterval.service == (facts.service or ""))
        .values(handle_sum=CallInterval.handle_sum + delta)
    )
    await daily.add_wrap(db, facts, leg.queue, delta, tz)


async def rebuild(
    sessions: async_sessionmaker[AsyncSession], default_sl: float,
    start: datetime | None = None, end: datetime | None = None,
    *, step: timedelta = timedelta(days=1),
) -> int:
    """Restate the summary for the buckets of [start, end) (default: every call's) from
    `calls`/`call_legs`, one transaction per `step` (bounded memory and transaction time).
    Returns the number of calls read."""
    async with sessions() as db:
        first, last = (await db.execute(
            select(func.min(Call.started_at), func.max(Call.started_at)))).one()
        sl_of = await thresholds(db, default_sl)
    if first is None and start is None:
        return 0
    lo = bucket_of(start if start is not None else first)
    hi = end if end is not None else (last or lo) + BUCKET
    hi = bucket_of(hi) + (BUCKET if bucket_of(hi) != hi else timedelta(0))
    total = 0
    while lo < hi:
        upto = min(lo + step, hi)
        async with sessions() as db, db.begin():
            await db.execute(delete(CallInterval).where(
                CallInterval.bucket >= lo, CallInterval.bucket < upto))
            facts = [f for f, _ in await load_facts(db, lo, upto)]
            await upsert(await db.connection(), summarize(facts, sl_of))
            total += len(facts)
        lo = upto
    async with sessions() as db:
        if (await db.connection()).dialect.name == "postgresql":
            # fresh statistics: planned on those of an emptier table, PostgreSQL hashes a
            # year's buckets through disk (a 366-day page 3x slower) until autovacuum comes by
            await db.execute(text("ANALYZE call_intervals"))
            await db.commit()
    return total


__all__ = ["BUCKET", "SUMS", "add_wrap", "bucket_of", "rebuild", "summarize", "tally_of", "upsert"]
