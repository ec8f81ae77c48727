from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.cases.models import AuditLog, Call, Case, Citizen, ServiceType
from contactcenter.cases.retention import purge_personal_data

pytestmark = pytest.mark.store
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


async def test_old_personal_fields_go_records_stay(seeded: Any) -> None:
    old, recent = NOW - timedelta(days=40), NOW - timedelta(days=5)
    async with seeded() as s, s.begin():
        st = (await s.execute(select(ServiceType).limit(1))).scalar_one()
        gone = Citizen(phone="7875550101", created_at=old - timedelta(days=1))
        kept = Citizen(phone="7875550102", created_at=old)
        s.add_all([gone, kept])
        await s.flush()
        s.add_all([
            Call(linkedid="1", caller_number="7875550101", caller_name="Maria", citizen_id=gone.id,
                 started_at=old, ended_at=old, outcome="answered", queue="sanitation",
                 talk_seconds=60.0),
            Call(linkedid="2", caller_number="7875550102", caller_name="Juan", citizen_id=kept.id,
                 started_at=recent, ended_at=recent, outcome="abandoned", queue="sanitation"),
            Case(number="311-2026-000001", token="t1", service_type_id=st.id, status="closed",
                 citizen_id=gone.id, closed_at=old, created_at=old),
            Case(number="311-2026-000002", token="t2", service_type_id=st.id, status="open",
                 citizen_id=kept.id, created_at=old),
        ])

    result = await purge_personal_data(seeded, 30, NOW)
    assert result == (1, 1, 1)

    async with seeded() as s:
        calls = {c.linkedid: c for c in (await s.execute(select(Call))).scalars()}
        assert (calls["1"].caller_number, calls["1"].caller_name, calls["1"].citizen_id) == (
            None, None, None)
        assert calls["1"].talk_seconds == 60.0 and calls["1"].outcome == "answered"
        assert calls["2"].caller_number == "7875550102"  # recent: untouched
        cases = {c.number: c for c in (await s.execute(select(Case))).scalars()}
        assert cases["311-2026-000001"].citizen_id is None
        assert cases["311-2026-000002"].citizen_id is not None  # still open: kept
        phones = set((await s.execute(select(Citizen.phone))).scalars())
        assert phones == {"7875550102"}
        assert (await s.execute(select(func.count()).select_from(AuditLog))).scalar_one() == 1

    assert await purge_personal_data(seeded, 30, NOW) == (0, 0, 0)


async def test_zero_days_keeps_everything(seeded: Any) -> None:
    ancient = NOW - timedelta(days=3000)
    async with seeded() as s, s.begin():
        s.add(Call(linkedid="1", caller_number="7875550101", started_at=ancient,
                   ended_at=ancient, outcome="answered"))
    assert await purge_personal_data(seeded, 0, NOW) == (0, 0, 0)
    async with seeded() as s:
        assert (await s.execute(select(Call.caller_number))).scalar_one() == "7875550101"


async def test_a_year_back_from_a_leap_day(seeded: Any) -> None:
    # 365 days before 2028-02-29 12:00 UTC is 2027-03-01 12:00 (there is no 2027-02-29)
    leap = datetime(2028, 2, 29, 12, tzinfo=UTC)
    cutoff = datetime(2027, 3, 1, 12, tzinfo=UTC)
    async with seeded() as s, s.begin():
        for lid, ended in (("before", cutoff - timedelta(minutes=1)),
                           ("after", cutoff + timedelta(minutes=1))):
            s.add(Call(linkedid=lid, caller_number="7875550101", started_at=ended,
                       ended_at=ended, outcome="answered"))
    assert (await purge_personal_data(seeded, 365, leap)).calls == 1
    async with seeded() as s:
        kept = dict((await s.execute(select(Call.linkedid, Call.caller_number))).all())
    assert kept == {"before": None, "after": "7875550101"}
