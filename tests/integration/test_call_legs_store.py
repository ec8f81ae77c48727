"""Legs in the store (issue 19): the case writer writes a call's legs with it, once; the
migration 0004 gives every existing call the one leg its columns describe. Runs on SQLite and
again on PostgreSQL (`make test`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db
from contactcenter.cases.models import Call, CallLeg
from contactcenter.cases.writer import CallWriter, record_row
from contactcenter.events import CallRecord, QueueLeg
from contactcenter.telephony.calls import CallTracker
from tests.unit.test_call_legs import eve_to_ana, timeout_then_fallback
from tests.unit.test_calls import one, run

pytestmark = pytest.mark.store

T0 = datetime(2026, 11, 23, 3, 55, 2, tzinfo=UTC)


async def legs_of(sessions: async_sessionmaker[AsyncSession]) -> dict[str, list[CallLeg]]:
    async with sessions() as session:
        found = (await session.execute(
            select(Call.linkedid, CallLeg).join(CallLeg, CallLeg.call_id == Call.id)
            .order_by(Call.linkedid, CallLeg.seq)
        )).all()
    out: dict[str, list[CallLeg]] = {}
    for lid, leg in found:
        out.setdefault(lid, []).append(leg)
    return out


async def test_the_writer_stores_each_leg_once(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    timeout = one(run(CallTracker(), timeout_then_fallback()))
    transfer = one(run(CallTracker(), eve_to_ana(True)))
    transfer = CallRecord(**{**{f: getattr(transfer, f) for f in transfer.__slots__},
                             "linkedid": "transfer"})
    plain = CallRecord(server="default", linkedid="plain", caller_number="5550100",
                       caller_name=None, started_at=T0, ended_at=T0 + timedelta(seconds=20),
                       outcome="abandoned", queue="potholes", ivr_seconds=3.0,
                       wait_seconds=9.0)
    writer = CallWriter(sessions, tmp_path / "spool")
    await writer.start()
    for r in (timeout, transfer, plain, timeout):  # the first one twice
        writer.submit(r)
    await writer.flushed()
    writer.submit(transfer)  # and again in a later batch
    await writer.flushed()
    await writer.close()
    assert writer.written == 3 and writer.duplicates == 2

    stored = await legs_of(sessions)
    assert [(x.seq, x.queue, x.outcome, x.agent, x.wait_seconds, x.talk_seconds)
            for x in stored[timeout.linkedid]] == [
        (0, "sanitation", "timed_out", None, 8.0, None),
        (1, "general-311", "answered", "Agent 3", 2.0, 3.0)]
    assert [(x.queue, x.outcome, x.agent, x.wait_seconds, x.ring_seconds, x.talk_seconds,
             x.target) for x in stored["transfer"]] == [
        ("general-311", "transferred", "Agent 5", 1.0, 1.0, 6.0, "sanitation@transfers"),
        ("sanitation", "answered", "Agent 1", 2.0, 2.0, 7.0, None)]
    (only,) = stored["plain"]  # a record without legs: the one its columns describe
    assert (only.queue, only.outcome, only.wait_seconds) == ("potholes", "abandoned", 9.0)
    assert only.joined_at == T0 + timedelta(seconds=3)
    async with sessions() as session:
        calls = {c.linkedid: c for c in (await session.execute(select(Call))).scalars()}
    c = calls[timeout.linkedid]
    assert (c.outcome, c.queue, c.first_queue, c.final_queue, c.agent, c.final_agent) == (
        "answered", "sanitation", "sanitation", "general-311", "Agent 3", "Agent 3")
    assert (c.wait_seconds, c.talk_seconds) == (10.0, 3.0)
    t = calls["transfer"]
    assert (t.outcome, t.agent, t.final_agent, t.wait_seconds, t.talk_seconds) == (
        "answered", "Agent 5", "Agent 1", 3.0, 13.0)


async def test_a_non_finite_leg_figure_is_stored_as_null(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    leg = QueueLeg(queue="sanitation", joined_at=T0, left_at=T0 + timedelta(seconds=5),
                   outcome="answered", wait_seconds=float("nan"), talk_seconds=float("inf"),
                   agent="Ana")
    r = CallRecord(server="default", linkedid="nan", caller_number=None, caller_name=None,
                   started_at=T0, ended_at=T0 + timedelta(seconds=9), outcome="answered",
                   queue="sanitation", legs=(leg,))
    writer = CallWriter(sessions, tmp_path / "spool")
    await writer.start()
    writer.submit(r)
    await writer.flushed()
    await writer.close()
    (stored,) = (await legs_of(sessions))["nan"]
    assert (stored.wait_seconds, stored.talk_seconds, stored.agent) == (None, None, "Ana")


async def test_the_migration_gives_existing_calls_one_leg(db_url: str) -> None:
    await asyncio.to_thread(db.upgrade, db_url, "0003_web_sessions")
    old = [
        CallRecord(server="default", linkedid="a", caller_number="1", caller_name=None,
                   started_at=T0, ended_at=T0 + timedelta(seconds=40), outcome="answered",
                   queue="sanitation", agent="Ana", agent_interface="PJSIP/1001",
                   ivr_seconds=4.0, wait_seconds=2.0, ring_seconds=1.0, talk_seconds=30.0),
        CallRecord(server="default", linkedid="b", caller_number="2", caller_name=None,
                   started_at=T0, ended_at=T0 + timedelta(seconds=12), outcome="timed_out",
                   queue="potholes", wait_seconds=8.0),
        CallRecord(server="default", linkedid="c", caller_number="3", caller_name=None,
                   started_at=T0, ended_at=T0 + timedelta(seconds=3), outcome="ivr_hangup",
                   ivr_seconds=3.0),
    ]
    old_columns = {c.name for c in Call.__table__.columns} - {
        "first_queue", "final_queue", "final_agent", "reconciled"}  # added after 0003
    table = sa.table("calls", *(sa.column(c.name, c.type) for c in Call.__table__.columns
                                if c.name in old_columns))
    engine = db.make_engine(db_url)
    try:
        async with engine.begin() as conn:
            for r in old:
                row = {k: v for k, v in record_row(r).items() if k in old_columns}
                row["recorded_at"] = T0
                await conn.execute(sa.insert(table).values(**row))
    finally:
        await engine.dispose()
    await asyncio.to_thread(db.upgrade, db_url)

    engine = db.make_engine(db_url)
    try:
        sessions = db.make_sessionmaker(engine)
        stored = await legs_of(sessions)
        async with sessions() as session:
            calls = {c.linkedid: c for c in (await session.execute(select(Call))).scalars()}
    finally:
        await engine.dispose()
    assert set(stored) == {"a", "b"}  # "c" never queued
    (a,) = stored["a"]
    assert (a.seq, a.kind, a.queue, a.outcome, a.agent, a.agent_interface, a.wait_seconds,
            a.ring_seconds, a.talk_seconds) == (0, "queue", "sanitation", "answered", "Ana",
                                                 "PJSIP/1001", 2.0, 1.0, 30.0)
    assert (a.joined_at, a.left_at) == (T0 + timedelta(seconds=4), T0 + timedelta(seconds=40))
    (b,) = stored["b"]
    assert (b.queue, b.outcome, b.wait_seconds, b.joined_at) == ("potholes", "timed_out", 8.0,
                                                                  T0)
    assert (calls["a"].first_queue, calls["a"].final_queue, calls["a"].final_agent) == (
        "sanitation", "sanitation", "Ana")
    assert calls["c"].first_queue is None


async def test_the_migration_goes_down_and_up_again(db_url: str) -> None:
    from alembic import command

    await asyncio.to_thread(db.upgrade, db_url)
    await asyncio.to_thread(command.downgrade, db.alembic_config(db_url), "0003_web_sessions")
    engine = db.make_engine(db_url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
            columns = await conn.run_sync(
                lambda c: {x["name"] for x in sa.inspect(c).get_columns("calls")})
    finally:
        await engine.dispose()
    assert "call_legs" not in tables and "final_queue" not in columns
    await asyncio.to_thread(db.upgrade, db_url)
