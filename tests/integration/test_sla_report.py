"""The SLA compliance report's fixed definitions and the board's counts (issue 21): on time only
when closed by the due time; an open case not yet due is "open, not due"; at risk is the store's
one definition; the wallboard and the reports page show "cases at risk N, overdue M"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.cases.store import CaseStore, NewCase
from contactcenter.queues.models import ServiceType
from contactcenter.seed import seed_reference
from contactcenter.supervisor import reports

pytestmark = pytest.mark.store
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # a Monday


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def test_report_buckets_and_counts_agree_with_the_store(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await seed_reference(sessions)
    async with sessions() as s, s.begin():  # DPW's potholes: 10 business hours, 08-17 UTC
        await s.execute(update(ServiceType).where(ServiceType.code == "pothole")
                        .values(sla_mode="business", sla_hours=10))
        await s.execute(update(Agency).where(Agency.code == "DPW").values(office_hours={}))
    clock = Clock(T0)
    store = CaseStore(sessions, None, clock=clock)
    # SAN (missed-pickup: 48 calendar hours), all opened Monday 09:00
    on_time = await store.open_case(NewCase(service_code="missed-pickup"), actor="t")
    late = await store.open_case(NewCase(service_code="missed-pickup"), actor="t")
    still_open = await store.open_case(NewCase(service_code="missed-pickup"), actor="t")
    waiting = await store.open_case(NewCase(service_code="missed-pickup"), actor="t")
    # DPW: due Tuesday 10:00 (8 h Monday + 2 h Tuesday)
    pothole = await store.open_case(NewCase(service_code="pothole"), actor="t")
    pothole2 = await store.open_case(NewCase(service_code="pothole"), actor="t")
    assert pothole.sla_due_at == datetime(2026, 6, 2, 10, 0, tzinfo=UTC)

    clock.now = T0 + timedelta(hours=20)
    await store.close(on_time.number, actor="t", reason="done")
    await store.wait_on_citizen(waiting.number, actor="t", note="Which bin?")
    await store.close(pothole2.number, actor="t", reason="done")
    clock.now = T0 + timedelta(hours=49)  # Wednesday 10:00: the pickups are past due
    await store.close(late.number, actor="t", reason="done late")
    clock.now = T0 + timedelta(hours=40)  # Wednesday 01:00 (the report's "now")
    # still_open: 8 of 48 h left (16 %) -> at risk; the open pothole was due Tuesday 10:00
    rng = reports.DateRange(date(2026, 6, 1), date(2026, 6, 1))
    rows = {r.agency: r for r in await reports.sla_report(sessions, rng, UTC, clock.now)}
    san = rows["Department of Sanitation"]
    assert (san.total, san.on_time, san.late, san.overdue, san.at_risk, san.open_not_due) == \
        (4, 1, 1, 0, 1, 1)  # open_not_due: the one waiting on the citizen
    assert san.compliance == 0.5  # on time / (on time + late + overdue)
    dpw = rows["Department of Public Works"]
    assert (dpw.on_time, dpw.overdue, dpw.open_not_due, dpw.compliance) == (1, 1, 0, 0.5)
    # an open case not yet due is never "on time"
    assert reports.SlaRow("x", total=1, open_not_due=1).compliance is None
    assert await store.sla_counts() == {"at_risk": 1, "overdue": 1}
    assert {v.number: st for v, st in await store.sla_watch()} == {
        still_open.number: "at_risk", pothole.number: "overdue"}

    # Tuesday 08:30: the pothole has 1.5 of its 10 business hours left (at risk), though 25.5
    # wall-clock hours remain; the pickup 24.5 of 48 (fine)
    clock.now = datetime(2026, 6, 2, 8, 30, tzinfo=UTC)
    assert await store.sla_counts() == {"at_risk": 1, "overdue": 0}
    assert await store.sla_counts(agency="DPW") == {"at_risk": 1, "overdue": 0}
    assert await store.sla_counts(agency="SAN") == {"at_risk": 0, "overdue": 0}
    watch = {v.number: st for v, st in await store.sla_watch()}
    assert watch == {pothole.number: "at_risk"}
    rows = {r.agency: r for r in await reports.sla_report(sessions, rng, UTC, clock.now)}
    assert rows["Department of Public Works"].at_risk == 1

    clock.now = T0 + timedelta(hours=60)
    assert await store.sla_counts() == {"at_risk": 0, "overdue": 2}
    rows = {r.agency: r for r in await reports.sla_report(sessions, rng, UTC, clock.now)}
    assert rows["Department of Sanitation"].overdue == 1
    assert rows["Department of Sanitation"].open_not_due == 1  # waiting: paused before due


async def test_the_sql_and_the_python_definitions_agree_case_by_case(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """sla_counts, sla_watch and the report (SQL) against CaseView.sla (Python) over many
    cases of both clocks, every status, pauses and reassignments, at many instants."""
    import random

    from contactcenter.cases import sla

    await seed_reference(sessions)
    async with sessions() as s, s.begin():
        await s.execute(update(ServiceType).where(ServiceType.code.in_(("pothole", "bulk-item")))
                        .values(sla_mode="business", sla_hours=12))
        await s.execute(update(Agency).where(Agency.code == "SAN").values(
            office_hours={"mon": ["07:00", "15:00"], "sat": ["09:00", "12:00"]},
            holidays=["2026-06-10"]))
    rnd = random.Random(21)
    start = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    clock = Clock(start)
    store = CaseStore(sessions, None, clock=clock, timezone="America/New_York")
    codes = ["missed-pickup", "bulk-item", "pothole", "streetlight-out", "general-inquiry"]
    numbers = []
    for _ in range(60):
        clock.now = start + timedelta(minutes=rnd.randrange(0, 14 * 24 * 60))
        view = await store.open_case(NewCase(service_code=rnd.choice(codes)), actor="t")
        numbers.append(view.number)
        clock.now += timedelta(hours=rnd.uniform(0, 200))
        roll = rnd.random()
        if roll < 0.25:
            await store.close(view.number, actor="t", reason="done")
        elif roll < 0.4:
            clock.now += timedelta(hours=rnd.uniform(0, 150))  # some begin waiting late
            await store.wait_on_citizen(view.number, actor="t", note="?")
            if rnd.random() < 0.5:
                clock.now += timedelta(hours=rnd.uniform(0, 100))
                await store.resume(view.number, actor="t")
        elif roll < 0.5:
            other = rnd.choice([a for a in ("SAN", "DPW", "311") if a != view.agency_code])
            await store.reassign(view.number, other, actor="t", reason="misrouted")
        elif roll < 0.6:
            await store.acknowledge(view.number, actor="t")
    rng = reports.DateRange(date(2026, 5, 31), date(2026, 6, 20))
    seen: set[str] = set()
    for hours in range(0, 26 * 24, 11):
        clock.now = start + timedelta(hours=hours, minutes=13)
        views = await store.search(numbers=numbers)
        states = {v.number: v.sla(clock.now) for v in views}
        want = {st: sum(1 for x in states.values() if x == st) for st in sla.STATES}
        seen |= {st for st, n in want.items() if n}
        assert await store.sla_counts() == {"at_risk": want["at_risk"],
                                            "overdue": want["overdue"]}, clock.now
        watch = {v.number: st for v, st in await store.sla_watch(500)}
        assert watch == {n: st for n, st in states.items() if st in ("at_risk", "overdue")}
        rows = await reports.sla_report(sessions, rng, UTC, clock.now, "America/New_York")
        by_bucket = {b: 0 for b in ("on_time", "late", "overdue", "at_risk", "open_not_due",
                                    "no_sla")}
        for v in views:
            by_bucket[sla.report_bucket(v.status, v.sla_due_at, v.closed_at, clock.now,
                                        v.sla_rule, v.paused_since)] += 1
        assert {b: sum(getattr(r, b) for r in rows) for b in by_bucket} == by_bucket
        # and agency by agency (the report groups by agency id and counts closed, open and
        # late-waiting cases in separate passes)
        per_agency: dict[str, dict[str, int]] = {}
        for v in views:
            b = sla.report_bucket(v.status, v.sla_due_at, v.closed_at, clock.now, v.sla_rule,
                                  v.paused_since)
            got = per_agency.setdefault(v.agency_name or "(no agency)", dict.fromkeys(by_bucket, 0))
            got[b] += 1
        assert {r.agency: {b: getattr(r, b) for b in by_bucket} for r in rows} == per_agency
    assert seen == {"ok", "at_risk", "overdue", "paused", "closed"}  # every state was tried
    waiting = [v for v in await store.search(numbers=numbers) if v.status == "waiting_citizen"]
    assert any(v.sla(clock.now) == "overdue" for v in waiting)  # late when the wait began
    assert any(v.sla(clock.now) == "paused" for v in waiting)
