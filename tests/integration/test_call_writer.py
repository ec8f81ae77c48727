"""The case writer: each finished call once (also across restarts), linked to its citizen and
case; an unreachable database spools records to disk and they are written later, in order,
once. Runs on SQLite and again on PostgreSQL (`make test`)."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db
from contactcenter.bus import LocalBus
from contactcenter.cases.models import Call, Case, Citizen
from contactcenter.cases.writer import CallWriter
from contactcenter.events import CallEnded, CallRecord
from contactcenter.queues.models import ServiceType
from tests.conftest import until

pytestmark = pytest.mark.store

DOWN_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
T0 = datetime(2026, 11, 23, 3, 55, 2, tzinfo=UTC)


def rec(n: int, **kw: object) -> CallRecord:
    fields: dict[str, object] = dict(
        server="default", linkedid=f"1795406102.{n}", caller_number="+1 (787) 555-0101",
        caller_name="Maria Lopez", started_at=T0 + timedelta(seconds=n),
        ended_at=T0 + timedelta(seconds=n + 10), outcome="answered", queue="sanitation",
        agent="Ana Operator", wait_seconds=2.0, ring_seconds=2.0, talk_seconds=6.0,
        hold_seconds=1.5,
    )
    fields.update(kw)
    return CallRecord(**fields)  # type: ignore[arg-type]


async def rows(sessions: async_sessionmaker[AsyncSession]) -> list[Call]:
    async with sessions() as session:
        return list((await session.execute(select(Call).order_by(Call.id))).scalars())


async def test_each_call_is_written_once_and_linked(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    async with sessions() as session, session.begin():
        st = ServiceType(code="missed-pickup", name="Missed pickup")
        session.add(st)
        await session.flush()
        session.add(Case(number="311-2026-000123", token="t1", service_type_id=st.id))
    bus = LocalBus()
    writer = CallWriter(sessions, tmp_path / "spool")
    await writer.start(bus)
    await bus.publish(CallEnded(rec(1, case_number="000123")))
    await bus.publish(CallEnded(rec(1, case_number="000123")))  # the same call again
    await bus.publish(CallEnded(rec(2, caller_number="<unknown>")))
    await bus.drain()
    await writer.flushed()
    await writer.close()
    # A restart: a new writer gets the same record again (e.g. a replayed capture).
    writer2 = CallWriter(sessions, tmp_path / "spool")
    await writer2.start()
    writer2.submit(rec(1))
    await writer2.flushed()
    await writer2.close()

    stored = await rows(sessions)
    assert [c.linkedid for c in stored] == ["1795406102.1", "1795406102.2"]
    first, second = stored
    assert first.handle_seconds == 6.0  # TalkTime 6 already contains the 1.5 s on hold
    assert first.citizen_id is not None and second.citizen_id is None  # no number, no citizen
    async with sessions() as session:
        citizen = await session.get(Citizen, first.citizen_id)
        case_id = (await session.execute(select(Case.id))).scalar_one()
    assert citizen is not None and citizen.phone == "17875550101"
    assert first.case_id == case_id and first.case_number == "000123"
    assert writer.written == 2 and writer.duplicates == 1 and writer2.duplicates == 1


async def test_database_down_spools_then_writes_in_order_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    down = db.make_engine(DOWN_URL)
    writer = CallWriter(db.make_sessionmaker(down), tmp_path / "spool", retry_initial=0.05,
                        retry_max=0.2, write_timeout=3)
    bus = LocalBus()
    await writer.start(bus)
    try:
        for n in (1, 2, 3):
            await bus.publish(CallEnded(rec(n)))
        await until(lambda: writer.health()["spool_depth"] == 3, 10)
        health = writer.health()
        assert health["ok"] is False and "last_error" in health
        lines = (tmp_path / "spool" / "calls.jsonl").read_text().splitlines()
        assert [line.count('"linkedid":"1795406102.') for line in lines] == [1, 1, 1]
        for n in (4, 5):  # more calls end while the database is still away
            await bus.publish(CallEnded(rec(n)))
        await until(lambda: writer.health()["spool_depth"] == 5, 10)
        await bus.publish(CallEnded(rec(3)))  # a duplicate in the spool
        await until(lambda: writer.health()["spool_depth"] == 6, 10)
        writer.sessions = sessions  # the database is back
        await until(lambda: writer.health()["spool_depth"] == 0, 10)
        await writer.flushed()
        assert writer.health()["ok"] is True
        stored = await rows(sessions)
        assert [c.linkedid for c in stored] == [f"1795406102.{n}" for n in (1, 2, 3, 4, 5)]
        assert not (tmp_path / "spool" / "calls.jsonl").exists()
    finally:
        await writer.close()
        await down.dispose()


async def test_the_spool_survives_a_restart(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    down = db.make_engine(DOWN_URL)
    writer = CallWriter(db.make_sessionmaker(down), tmp_path / "spool", retry_initial=0.05)
    await writer.start()
    writer.submit(rec(7))
    writer.submit(rec(8))
    await until(lambda: writer.health()["spool_depth"] == 2, 10)
    await writer.close()  # shut down while the database is away
    await down.dispose()
    assert len((tmp_path / "spool" / "calls.jsonl").read_text().splitlines()) == 2

    again = CallWriter(sessions, tmp_path / "spool")
    assert again.health()["spool_depth"] == 2
    await again.start()
    await until(lambda: again.health()["spool_depth"] == 0, 10)
    await again.flushed()
    await again.close()
    assert [c.linkedid for c in await rows(sessions)] == ["1795406102.7", "1795406102.8"]


async def test_a_torn_spool_line_is_set_aside_not_blocking(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    good = CallEnded(rec(9)).to_json()
    (spool / "calls.jsonl").write_text(good + "\n" + good[:40] + "\n")  # crash mid-write
    writer = CallWriter(sessions, spool)
    await writer.start()
    await until(lambda: writer.health()["spool_depth"] == 0, 10)
    await writer.close()
    assert [c.linkedid for c in await rows(sessions)] == ["1795406102.9"]
    assert (spool / "calls.jsonl.bad").read_text().strip() == good[:40]


async def test_hostile_caller_id_is_stored_truncated(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    writer = CallWriter(sessions, tmp_path / "spool")
    await writer.start()
    writer.submit(rec(11, caller_name="<script>x</script>" * 600, caller_number="9" * 100))
    await writer.flushed()
    await writer.close()
    (call,) = await rows(sessions)
    assert len(call.caller_name or "") == 200 and len(call.caller_number or "") == 40
    async with sessions() as session:
        assert (await session.execute(select(func.count()).select_from(Call))).scalar_one() == 1


async def test_a_slow_database_spills_to_disk_and_keeps_order(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every write takes 200 ms: memory stays bounded (max_pending), the overflow goes to the
    spool, and in the end every call is stored once, in the order the calls ended."""

    class Slow(CallWriter):
        async def _write_batch(self, records: list[CallRecord]) -> None:
            await asyncio.sleep(0.2)
            await super()._write_batch(records)

    writer = Slow(sessions, tmp_path / "spool", max_pending=5, batch_size=4)
    await writer.start()
    caplog.set_level(logging.WARNING, "contactcenter.cases.writer")
    for n in range(20):
        writer.submit(rec(n))
        assert len(writer._pending) <= 5
        await asyncio.sleep(0.03)  # calls keep ending while a write is in flight
    assert writer.spilled > 0 and writer.health()["spool_depth"] > 0
    assert writer.health()["spilled"] == writer.spilled  # /health says the queue filled
    assert "moved to the spool" in caplog.text  # and so does the log
    await until(lambda: writer.health()["spool_depth"] == 0 and not writer.health()["pending"],
                15)
    await writer.flushed()
    await writer.close()
    assert [c.linkedid for c in await rows(sessions)] == [f"1795406102.{n}" for n in range(20)]


async def test_a_write_that_fails_mid_spill_keeps_order(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """The database drops during a write while newer calls overflow to the spool: the failed
    batch goes before them, and everything is stored once, in order."""

    class Flaky(CallWriter):
        calls = 0

        async def _write_batch(self, records: list[CallRecord]) -> None:
            Flaky.calls += 1
            if Flaky.calls == 1:
                await asyncio.sleep(0.2)
                raise ConnectionRefusedError("database went away")
            await super()._write_batch(records)

    writer = Flaky(sessions, tmp_path / "spool", max_pending=3, retry_initial=0.05)
    await writer.start()
    writer.submit(rec(0))
    await asyncio.sleep(0.05)  # rec 0 is in flight now
    for n in range(1, 6):
        writer.submit(rec(n))
    assert writer.spilled == 4
    await until(lambda: writer.health()["spool_depth"] == 0 and writer.db_ok, 10)
    await writer.flushed()
    await writer.close()
    assert [c.linkedid for c in await rows(sessions)] == [f"1795406102.{n}" for n in range(6)]


async def test_a_flood_past_the_bus_queue_loses_no_record(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """More CallEnded than a subscriber queue holds (10,000), published without a pause: a
    bounded subscriber would drop the rest; the writer's subscription makes the publisher wait
    instead (issue 19: "the case writer never drops an event")."""
    bus = LocalBus()
    writer = CallWriter(sessions, tmp_path / "spool")
    await writer.start(bus)
    n = 10_600
    for i in range(n):
        await bus.publish(CallEnded(rec(i)))
    await bus.drain()
    health = bus.health()  # while the writer is still subscribed
    await writer.flushed()
    await writer.close()
    assert health["dropped"] == 0
    assert health["backpressure_waits"] >= 1  # it did fill up: the publisher waited
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Call)) == n


class _Deadlock(Exception):
    sqlstate = "40P01"  # as asyncpg's DeadlockDetectedError carries it


async def test_a_deadlock_is_retried_not_a_refused_record(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """Two writers upserting the same summary rows can deadlock on PostgreSQL; the loser is told
    to try again. The soak lost a call that way (set aside as "refused": deadlock detected)."""
    from sqlalchemy.exc import DBAPIError

    writer = CallWriter(sessions, tmp_path / "spool")
    real = writer._write_batch
    failures = [2]  # the batch, then the same record alone, each lose once

    async def losing_once(records: list[CallRecord]) -> None:
        if failures[0]:
            failures[0] -= 1
            raise DBAPIError("INSERT INTO calls", {}, _Deadlock("deadlock detected"))
        await real(records)

    writer._write_batch = losing_once  # type: ignore[method-assign]
    await writer.start()
    writer.submit(rec(7))
    await writer.flushed()
    await writer.close()
    assert [c.linkedid for c in await rows(sessions)] == ["1795406102.7"]
    assert writer.rejected == 0 and writer.transient_retries == 2
    assert not (tmp_path / "spool" / "rejected.jsonl").exists()


async def test_a_refusal_that_is_not_transient_is_set_aside_at_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    from sqlalchemy.exc import DBAPIError

    class Refused(Exception):
        sqlstate = "22001"  # string_data_right_truncation: retrying cannot help

    writer = CallWriter(sessions, tmp_path / "spool")
    calls = [0]

    async def refusing(records: list[CallRecord]) -> None:
        calls[0] += 1
        raise DBAPIError("INSERT INTO calls", {}, Refused("value too long"))

    writer._write_batch = refusing  # type: ignore[method-assign]
    await writer.start()
    writer.submit(rec(8))
    await writer.flushed()
    await writer.close()
    assert writer.rejected == 1 and writer.transient_retries == 0 and calls[0] == 2
