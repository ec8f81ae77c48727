"""The interval summary (supervisor/intervals.py): the report read from its 15-minute buckets is
the report counted call by call, over random calls written by the real case writer, in a zone
with DST days (and a 45-minute offset); a wrap-up recorded later, a rebuild, and the command."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from contactcenter.agents.queries import link_call
from contactcenter.bus import LocalBus
from contactcenter.cases.writer import CallWriter
from contactcenter.events import CallEnded, CallRecord, QueueLeg
from contactcenter.queues.models import Queue
from contactcenter.supervisor import daily, intervals, reports
from contactcenter.supervisor.models import CallDay, CallDayHour, CallInterval
from contactcenter.supervisor.stats import QueueConfig, QueueStats, Tally

pytestmark = pytest.mark.store

QUEUES = ("sanitation", "potholes", "general-311")
SERVICES = (None, "missed-pickup", "pothole", "other")
OUTCOMES = ("answered", "answered", "answered", "abandoned", "short_abandoned", "timed_out",
            "left_empty", "transferred")


def random_calls(rnd: random.Random, first: datetime, days: int, n: int) -> list[CallRecord]:
    out = []
    for i in range(n):
        start = first + timedelta(seconds=rnd.uniform(0, days * 86400))
        legs = []
        at = start + timedelta(seconds=rnd.uniform(0, 20))
        for _ in range(rnd.choice((0, 1, 1, 1, 2, 3))):
            outcome = rnd.choice(OUTCOMES)
            agent = rnd.choice(("Ana", "Eve")) if outcome in ("answered", "transferred") \
                and rnd.random() < 0.9 else None
            wait = None if rnd.random() < 0.1 else round(rnd.expovariate(1 / 20), 1)
            talk = round(rnd.uniform(5, 300), 1) if agent and rnd.random() < 0.9 else None
            until = at + timedelta(seconds=(wait or 0) + (talk or 0) + 1)
            legs.append(QueueLeg(queue=rnd.choice(QUEUES), joined_at=at, left_at=until,
                                 outcome=outcome, wait_seconds=wait, talk_seconds=talk,
                                 agent=agent))
            at = until
        out.append(CallRecord(
            server="default", linkedid=f"r{first:%m%d}-{i}", caller_number=None, caller_name=None,
            started_at=start, ended_at=at + timedelta(seconds=1),
            outcome=legs[-1].outcome if legs else "ivr_only",
            queue=legs[0].queue if legs else None, service=rnd.choice(SERVICES),
            agent=next((leg.agent for leg in legs if leg.agent), None),
            wait_seconds=legs[0].wait_seconds if legs else None, legs=tuple(legs)))
    return out


def assert_same(a: reports.CallReport, b: reports.CallReport) -> None:
    def same(x: Tally, y: Tally, where: str) -> None:
        for name in ("offered", "answered", "answered_in_sl", "abandoned", "short_abandoned",
                     "timed_out", "other", "wait_n", "handle_n"):
            assert getattr(x, name) == getattr(y, name), (where, name)
        for name in ("wait_sum", "handle_sum", "longest_wait"):  # sums in another order
            assert getattr(x, name) == pytest.approx(getattr(y, name), abs=1e-6), (where, name)

    assert list(a.by_queue) == list(b.by_queue) and list(a.by_service) == list(b.by_service)
    for q in a.by_queue:
        same(a.by_queue[q], b.by_queue[q], q)
    for s in a.by_service:
        same(a.by_service[s], b.by_service[s], s)
    assert list(a.by_day) == list(b.by_day)
    for (d, x), y in zip(a.by_day.items(), b.by_day.values(), strict=True):
        assert x.calls == y.calls, d
        same(x.queued, y.queued, str(d))
    for h, (x, y) in enumerate(zip(a.by_hour, b.by_hour, strict=True)):
        assert x.calls == y.calls, h
        same(x.queued, y.queued, f"hour {h}")
    assert a.total.calls == b.total.calls
    same(a.total.queued, b.total.queued, "total")


async def write(sessions: Any, tmp_path: Path, records: list[CallRecord],
                tz: tzinfo = UTC) -> None:
    """Through the real case writer, in the center's zone `tz` (the day roll-ups' days)."""
    bus = LocalBus()
    writer = CallWriter(sessions, tmp_path / "spool", default_sl=20.0, batch_size=97, tz=tz)
    await writer.start(bus)
    for r in records:
        await bus.publish(CallEnded(r))
    await bus.drain()
    await writer.flushed()
    await writer.close()


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kathmandu"])
async def test_summary_report_equals_the_row_report(
    sessions: Any, tmp_path: Path, zone: str
) -> None:
    tz = ZoneInfo(zone)
    async with sessions() as db, db.begin():
        db.add(Queue(name="sanitation", service_level_seconds=10))
        db.add(Queue(name="potholes", service_level_seconds=30))
    # general-311 is not in `queues`: the writer's default threshold (20 s)
    stats = QueueStats([QueueConfig("sanitation", service_level_seconds=10),
                        QueueConfig("potholes", service_level_seconds=30)],
                       tz=tz, default=QueueConfig("", service_level_seconds=20))
    rnd = random.Random(zone)
    # New York's DST days of 2026: 8 March (23 h) and 1 November (25 h)
    records = (random_calls(rnd, datetime(2026, 3, 7, tzinfo=tz), 3, 400)
               + random_calls(rnd, datetime(2026, 10, 31, tzinfo=tz), 3, 400))
    await write(sessions, tmp_path, records, tz)
    for first, last in ((date(2026, 3, 7), date(2026, 3, 9)), (date(2026, 3, 8), date(2026, 3, 8)),
                        (date(2026, 10, 31), date(2026, 11, 2)),
                        (date(2026, 11, 1), date(2026, 11, 1)),
                        (date(2026, 3, 1), date(2026, 11, 30))):
        rng = reports.DateRange(first, last)
        summary = await reports.call_report(sessions, rng, stats)
        rows = await reports.call_report_from_rows(sessions, rng, stats)
        assert rows.total.queued.offered > 0 and rows.total.calls > 0
        assert_same(summary, rows)

    # a rebuild of the whole table restates exactly the same sums
    async with sessions() as db:
        before = (await db.execute(select(CallInterval).order_by(
            CallInterval.bucket, CallInterval.queue, CallInterval.service))).scalars().all()
        kept = [(r.bucket, r.queue, r.service, r.calls, r.offered, r.answered_in_sl,
                 r.handle_n, round(r.wait_sum, 6), r.longest_wait) for r in before]
    assert await intervals.rebuild(sessions, 20.0) == len(records)
    async with sessions() as db:
        after = (await db.execute(select(CallInterval).order_by(
            CallInterval.bucket, CallInterval.queue, CallInterval.service))).scalars().all()
        assert kept == [(r.bucket, r.queue, r.service, r.calls, r.offered, r.answered_in_sl,
                         r.handle_n, round(r.wait_sum, 6), r.longest_wait) for r in after]


async def test_a_wrap_up_recorded_later_moves_the_handle_time(
    sessions: Any, tmp_path: Path
) -> None:
    t = datetime(2026, 5, 4, 14, 7, tzinfo=UTC)
    s = timedelta(seconds=1)
    rec = CallRecord(
        server="default", linkedid="w1", caller_number=None, caller_name=None, started_at=t,
        ended_at=t + 90 * s, outcome="answered", queue="sanitation", agent="Ana",
        service="pothole", legs=(
            QueueLeg(queue="sanitation", joined_at=t, left_at=t + 10 * s, outcome="timed_out",
                     wait_seconds=10),
            QueueLeg(queue="general-311", joined_at=t + 10 * s, left_at=t + 80 * s,
                     outcome="answered", wait_seconds=4, talk_seconds=60, agent="Ana")))
    await write(sessions, tmp_path, [rec])
    for wrap in (25.0, 40.0):
        async with sessions() as db, db.begin():
            assert await link_call(db, server="default", linkedid="w1", wrap_seconds=wrap)
    stats = QueueStats(tz=UTC)
    rng = reports.DateRange(date(2026, 5, 4), date(2026, 5, 4))
    summary = await reports.call_report(sessions, rng, stats)
    assert summary.by_queue["general-311"].handle_sum == pytest.approx(100.0)
    assert summary.by_queue["sanitation"].handle_sum == 0
    assert_same(summary, await reports.call_report_from_rows(sessions, rng, stats))


async def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "contactcenter", "reports", "rebuild", *args],
        capture_output=True, text=True, env=env, timeout=60)


async def test_the_rebuild_command_fills_the_summary(
    sessions: Any, migrated_url: str, tmp_path: Path
) -> None:
    rnd = random.Random(7)
    await write(sessions, tmp_path, random_calls(rnd, datetime(2026, 6, 1, tzinfo=UTC), 2, 50))
    async with sessions() as db, db.begin():
        await db.execute(delete(CallInterval))  # as after the migration on existing data
        await db.execute(delete(CallDay))
        await db.execute(delete(CallDayHour))
    env = {"CC_DATABASE_URL": migrated_url, "PATH": "/usr/bin:/bin"}
    done = await cli(env, "--from", "2026-06-01", "--to", "2026-06-01")
    assert done.returncode == 0, done.stderr
    assert "rebuilt from" in done.stdout
    async with sessions() as db:
        n, first, last = (await db.execute(select(
            func.sum(CallInterval.calls), func.min(CallInterval.bucket),
            func.max(CallInterval.bucket)))).one()
    assert 0 < n < 50 and first >= datetime(2026, 6, 1, tzinfo=UTC) \
        and last < datetime(2026, 6, 2, tzinfo=UTC)
    async with sessions() as db:  # and the day roll-ups from those buckets (days in UTC here)
        by_day = (await db.execute(select(CallDay.day, func.sum(CallDay.calls))
                                   .group_by(CallDay.day))).all()
        by_hour = (await db.execute(select(func.sum(CallDayHour.calls)))).scalar()
    assert by_day == [(date(2026, 6, 1), n)] and by_hour == n
    bad = await cli(env, "--from", "June")
    assert bad.returncode != 0 and "YYYY-MM-DD" in bad.stderr + bad.stdout


def _rollups(found: Any) -> list[tuple[Any, ...]]:
    # the sums, then wait_sum, handle_sum (sums in another order: rounded) and longest_wait
    return [(*r[:-3], round(r[-3], 6), round(r[-2], 6), r[-1]) for r in found]


async def _day_tables(sessions: Any) -> tuple[list[Any], list[Any]]:
    d, h = CallDay.__table__.c, CallDayHour.__table__.c
    async with sessions() as db:
        days = (await db.execute(select(d.day, d.queue, d.service, *(d[n] for n in daily.COLUMNS))
                                 .order_by(d.day, d.queue, d.service))).all()
        hours = (await db.execute(select(h.day, h.hour, *(h[n] for n in daily.COLUMNS))
                                  .order_by(h.day, h.hour))).all()
    return _rollups(days), _rollups(hours)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kathmandu"])
async def test_the_day_rollups_give_the_report_of_the_15_minute_buckets(
    sessions: Any, tmp_path: Path, zone: str
) -> None:
    """Kept by the writer (and a wrap-up recorded later), or rebuilt from the buckets, the day
    roll-ups give exactly the report read from the buckets: DST days (23 and 25 hours) and a
    45-minute offset, a range of one day and of months."""
    tz = ZoneInfo(zone)
    stats = QueueStats(tz=tz, default=QueueConfig("", service_level_seconds=20))
    rnd = random.Random(f"daily-{zone}")
    records = (random_calls(rnd, datetime(2026, 3, 7, tzinfo=tz), 3, 300)
               + random_calls(rnd, datetime(2026, 10, 31, tzinfo=tz), 3, 300))
    await write(sessions, tmp_path, records, tz)
    answered = next(r for r in records if r.legs and r.legs[-1].talk_seconds
                    and r.legs[-1].outcome == "answered")
    async with sessions() as db, db.begin():
        assert await link_call(db, server="default", linkedid=answered.linkedid,
                               wrap_seconds=33.0, tz=tz)
    ranges = ((date(2026, 3, 8), date(2026, 3, 8)), (date(2026, 11, 1), date(2026, 11, 1)),
              (date(2026, 3, 6), date(2026, 11, 3)))

    async def agree() -> None:
        for first, last in ranges:
            rng = reports.DateRange(first, last)
            buckets = await reports.call_report(sessions, rng, stats, daily_rollup=False)
            days = await reports.call_report(sessions, rng, stats, daily_rollup=True)
            assert buckets.total.calls > 0 and buckets.total.queued.offered > 0
            assert_same(days, buckets)

    await agree()
    kept = await _day_tables(sessions)
    # the rebuild restates the same rows from the buckets
    assert await daily.rebuild(sessions, tz) > 0
    assert await _day_tables(sessions) == kept
    await agree()
    # a long range reads the roll-ups by itself
    long = reports.DateRange(date(2026, 3, 1), date(2026, 11, 30))
    assert len(long.days()) >= reports.DAILY_FROM_DAYS
    async with sessions() as db, db.begin():
        await db.execute(delete(CallDay))
        await db.execute(delete(CallDayHour))
    assert (await reports.call_report(sessions, long, stats)).total.calls == 0
