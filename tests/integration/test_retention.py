from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.audit import AuditLog
from contactcenter.cases.models import Call, Case, Citizen
from contactcenter.cases.retention import purge_personal_data
from contactcenter.queues.models import ServiceType

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


async def _history(sessions: Any, n: int, ended: datetime) -> None:
    """`n` old calls, each with its own citizen, and `n` closed cases of theirs."""
    async with sessions() as s, s.begin():
        st = (await s.execute(select(ServiceType).limit(1))).scalar_one()
        citizens = [Citizen(phone=f"78755502{i:02d}", created_at=ended) for i in range(n)]
        s.add_all(citizens)
        await s.flush()
        for i, c in enumerate(citizens):
            at = ended + timedelta(minutes=i)
            s.add(Call(linkedid=f"h{i}", caller_number=c.phone, caller_name="X", citizen_id=c.id,
                       started_at=at, ended_at=at, outcome="answered"))
            s.add(Case(number=f"311-2026-{i + 100:06d}", token=f"h{i}", service_type_id=st.id,
                       status="closed", citizen_id=c.id, closed_at=at, created_at=at))


async def test_batches_purge_everything_in_small_transactions(seeded: Any) -> None:
    from contactcenter.cases.retention import purge_in_batches

    await _history(seeded, 7, NOW - timedelta(days=60))
    run = await purge_in_batches(seeded, 30, NOW, batch=2)
    assert run.result == (7, 7, 7)
    # 4 batches (the last one short) + 1 that finds nothing, for calls, cases and citizens;
    # then the citizens' messages (none here): 1 that finds nothing
    assert run.batches == 5 + 5 + 5 + 1
    async with seeded() as s:
        assert (await s.execute(select(func.count()).select_from(Citizen))).scalar_one() == 0
        left = (await s.execute(select(func.count()).select_from(Call).where(
            Call.caller_number.is_not(None)))).scalar_one()
        assert left == 0
        audit = (await s.execute(select(AuditLog))).scalar_one()
        assert audit.detail["calls"] == 7 and audit.detail["batches"] == run.batches


async def test_dry_run_counts_what_a_purge_erases_and_changes_nothing(seeded: Any) -> None:
    from contactcenter.cases.retention import count_personal_data

    await _history(seeded, 5, NOW - timedelta(days=60))
    async with seeded() as s, s.begin():
        # a recent call keeps its citizen (created long ago) alive; an open case keeps another
        st = (await s.execute(select(ServiceType).limit(1))).scalar_one()
        alive = Citizen(phone="7875550999", created_at=NOW - timedelta(days=90))
        open_case = Citizen(phone="7875550998", created_at=NOW - timedelta(days=90))
        s.add_all([alive, open_case])
        await s.flush()
        s.add(Call(linkedid="new", caller_number="7875550999", citizen_id=alive.id,
                   started_at=NOW - timedelta(days=1), ended_at=NOW - timedelta(days=1),
                   outcome="answered"))
        s.add(Case(number="311-2026-009999", token="open", service_type_id=st.id, status="open",
                   citizen_id=open_case.id, created_at=NOW - timedelta(days=90)))
    dry = await count_personal_data(seeded, 30, NOW)
    assert dry.dry_run and dry.result == (5, 5, 5)
    async with seeded() as s:  # nothing changed
        assert (await s.execute(select(func.count()).select_from(Citizen))).scalar_one() == 7
        assert (await s.execute(select(func.count()).select_from(AuditLog))).scalar_one() == 0
    assert await purge_personal_data(seeded, 30, NOW, batch=3) == dry.result


def test_cli_dry_run_says_what_it_would_purge(
    migrated_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    from contactcenter import db
    from contactcenter.cli import main

    async def fill() -> None:
        engine = db.make_engine(migrated_url)
        try:
            from contactcenter.seed import seed_reference

            sessions = db.make_sessionmaker(engine)
            await seed_reference(sessions)
            # the command's clock is the real one: history from long before any plausible now
            await _history(sessions, 3, datetime(2001, 1, 1, tzinfo=UTC))
        finally:
            await engine.dispose()

    asyncio.run(fill())
    monkeypatch.setenv("CC_DATABASE_URL", migrated_url)
    assert main(["retention", "--days", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: would erase" in out and "3 calls, 3 closed cases, 3 citizens" in out
    assert main(["retention", "--days", "30", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "erased personal data older than 30 days: 3 calls" in out
    assert main(["retention", "--days", "30", "--dry-run"]) == 0
    assert "0 calls, 0 closed cases, 0 citizens" in capsys.readouterr().out
