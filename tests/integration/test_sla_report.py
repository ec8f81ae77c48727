"""The SLA compliance report's fixed definitions and the board's counts (issue 21): on time only
when closed by the due time; an open case not yet due is "open, not due"; at risk is the store's
one definition; the wallboard and the reports page show "cases at risk N, overdue M"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.cases.models import Agency, ServiceType
from contactcenter.cases.store import CaseStore, NewCase
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
