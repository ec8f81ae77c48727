"""The IVR containment summary (supervisor/containment.py): what the case writer keeps, read by
the report over any range, equals the calls classified one by one (in a zone with DST days and
one with a 45-minute offset); a rebuild restates the same rows; a duplicate record adds
nothing."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select

from contactcenter.bus import LocalBus
from contactcenter.cases.models import Call
from contactcenter.cases.writer import CallWriter
from contactcenter.events import CallEnded, CallRecord, QueueLeg
from contactcenter.supervisor import containment
from contactcenter.supervisor.containment_report import containment_report
from contactcenter.supervisor.models import IvrContainment
from contactcenter.supervisor.reports import DateRange

pytestmark = pytest.mark.store

# (tracker outcome, queue, trace) as the IVR and the tracker leave them
SHAPES: list[tuple[str, str | None, list[str]]] = [
    ("ivr_self_served", None, ["lang:1", "main:7", "self_served"]),
    ("ivr_self_served", None, ["lang:2", "main:9", "main:1", "self_served"]),
    ("ivr_self_served", None, ["lang:1", "main:1", "closed:1", "self_served"]),
    ("ivr_hangup", None, ["lang:1"]),
    ("ivr_hangup", None, ["lang:1", "main:-", "main:-"]),
    ("ivr_hangup", None, ["lang:1", "main:2", "closed"]),
    ("answered", None, ["lang:1", "main:8", "transfer"]),
    ("answered", "sanitation", ["lang:1", "main:1", "sanitation"]),
    ("abandoned", "potholes", ["lang:2", "main:2", "potholes"]),
    ("timed_out", "general-311", ["lang:1", "main:9", "main:case", "general-311"]),
    ("answered", "general-311", []),
]


def ivr_calls(rnd: random.Random, first: datetime, days: int, n: int) -> list[CallRecord]:
    out = []
    for i in range(n):
        start = first + timedelta(seconds=rnd.uniform(0, days * 86400))
        outcome, queue, path = rnd.choice(SHAPES)
        legs = () if queue is None else (QueueLeg(
            queue=queue, joined_at=start + timedelta(seconds=20),
            left_at=start + timedelta(seconds=60), outcome=outcome,
            agent="Ana" if outcome == "answered" else None),)
        out.append(CallRecord(
            server="default", linkedid=f"ivr{first:%m%d}-{i}", caller_number=None,
            caller_name=None, started_at=start, ended_at=start + timedelta(seconds=70),
            outcome=outcome, queue=queue, ivr_path=tuple(path), legs=legs))
    return out


async def write(sessions: Any, tmp_path: Path, records: list[CallRecord], tz: ZoneInfo) -> None:
    bus = LocalBus()
    writer = CallWriter(sessions, tmp_path / "spool", batch_size=97, tz=tz)
    await writer.start(bus)
    for r in records:
        await bus.publish(CallEnded(r))
    await bus.drain()
    await writer.flushed()
    await writer.close()


async def by_rows(sessions: Any, rng: DateRange, tz: ZoneInfo) -> tuple[Counter[Any], Counter[Any]]:
    """The definition, call by call: (path, class) and (local day, class) counts."""
    start, end = rng.bounds(tz)
    async with sessions() as db:
        rows = (await db.execute(select(Call.started_at, Call.outcome, Call.queue, Call.ivr_path)
                                 .where(Call.started_at >= start, Call.started_at < end))).all()
    paths: Counter[Any] = Counter()
    days: Counter[Any] = Counter()
    for started, outcome, queue, path in rows:
        cls = containment.classify(outcome, queue, path)
        paths[(containment.path_key(path), cls)] += 1
        days[(started.astimezone(tz).date(), cls)] += 1
    return paths, days


async def table(sessions: Any) -> list[tuple[Any, ...]]:
    t = IvrContainment
    async with sessions() as db:
        return [tuple(r) for r in (await db.execute(
            select(t.day, t.path, t.outcome, t.calls).order_by(t.day, t.path, t.outcome)
        )).all()]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kathmandu"])
async def test_summary_equals_the_calls_classified_one_by_one(
    sessions: Any, tmp_path: Path, zone: str
) -> None:
    tz = ZoneInfo(zone)
    rnd = random.Random(zone)
    # New York's DST days of 2026: 8 March (23 h) and 1 November (25 h)
    records = (ivr_calls(rnd, datetime(2026, 3, 7, tzinfo=tz), 3, 300)
               + ivr_calls(rnd, datetime(2026, 10, 31, tzinfo=tz), 3, 300))
    await write(sessions, tmp_path, records, tz)
    await write(sessions, tmp_path / "again", records[:50], tz)  # replayed: written once
    for first, last in ((date(2026, 3, 7), date(2026, 3, 9)), (date(2026, 3, 8), date(2026, 3, 8)),
                        (date(2026, 11, 1), date(2026, 11, 1)),
                        (date(2026, 3, 1), date(2026, 11, 30))):
        rng = DateRange(first, last)
        report = await containment_report(sessions, rng)
        paths, days = await by_rows(sessions, rng, tz)
        assert report.total.total == sum(paths.values()) > 0
        got_paths = Counter({(p.path, c): getattr(p.counts, c) for p in report.paths
                             for c in containment.CLASSES if getattr(p.counts, c)})
        assert got_paths == paths
        got_days = Counter({(d, c): getattr(n, c) for d, n in report.by_day.items()
                            for c in containment.CLASSES if getattr(n, c)})
        assert got_days == days
        assert set(report.by_day) == set(rng.days())
    whole = await containment_report(sessions, DateRange(date(2026, 3, 1), date(2026, 11, 30)))
    t = whole.total
    assert t.total == 600 and min(t.contained, t.abandoned, t.closed, t.transferred,
                                  t.queued) > 0

    # a rebuild restates exactly the same rows; over one day, only that day's
    live = await table(sessions)
    async with sessions() as db, db.begin():
        await db.execute(delete(IvrContainment))
    assert await containment.rebuild(sessions, tz) == 600
    assert await table(sessions) == live
    day = datetime(2026, 3, 8, tzinfo=tz)
    n = await containment.rebuild(sessions, tz, day, day + timedelta(days=1))
    assert 0 < n < 600 and await table(sessions) == live
    # the days are the writer's zone: a rebuild in another zone restates other days
    await containment.rebuild(sessions, ZoneInfo("UTC"))
    assert await table(sessions) != live
