"""The table source: the rows a real Asterisk 22.10.1 wrote into PostgreSQL (realtime
queue_log, cdr_pgsql; tests/data/asterisk/pgsql-19) loaded into the product's own
asterisk_queue_log / asterisk_cdr, and a gap over them reconciled into calls + call_legs, once;
a partial row the live path left is completed from the same records."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.bus import LocalBus
from contactcenter.cases.models import Call, CallLeg
from contactcenter.cases.writer import CallWriter
from contactcenter.clock import FixedClock
from contactcenter.events import CallRecord
from contactcenter.telephony.models import AsteriskCdr, AsteriskQueueLog
from contactcenter.telephony.records import Reconciler, TableSource

pytestmark = pytest.mark.store

PG19 = Path(__file__).resolve().parents[1] / "data" / "asterisk" / "pgsql-19"
GAP = (1795534580.0, 1795534625.0)  # 15:36:20 .. 15:37:05: the three calls


def _t(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def load_tables(sessions: async_sessionmaker[AsyncSession]) -> None:
    with (PG19 / "queue_log.csv").open() as f:
        qrows = [{**r, "id": int(r["id"]), "time": _t(r["time"])} for r in csv.DictReader(f)]
    with (PG19 / "cdr.csv").open() as f:
        crows = [{**r, "start": _t(r["start"]), "answer": _t(r["answer"]), "end": _t(r["end"]),
                  "duration": int(r["duration"]), "billsec": int(r["billsec"]),
                  "sequence": int(r["sequence"])} for r in csv.DictReader(f)]
    async with sessions() as s, s.begin():
        await s.execute(insert(AsteriskQueueLog), qrows)
        await s.execute(insert(AsteriskCdr), crows)


async def reconciler(sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
                     ) -> tuple[Reconciler, CallWriter, LocalBus]:
    bus = LocalBus()
    writer = CallWriter(sessions, tmp_path / "spool")
    await writer.start(bus)
    clock = FixedClock(datetime.fromtimestamp(GAP[1], UTC))
    rec = Reconciler("default", TableSource(sessions), sessions, bus, clock, holder="t",
                     settled=writer.flushed)
    return rec, writer, bus


async def test_a_gap_over_asterisks_own_tables(
    seeded: async_sessionmaker[AsyncSession], tmp_path: Path,
) -> None:
    await load_tables(seeded)
    rec, writer, _ = await reconciler(seeded, tmp_path)
    try:
        gap = await rec.reconcile_gap(*GAP)
        await writer.flushed()
        again = await rec.reconcile_gap(*GAP)  # a second pass (a retry, a take-over): nothing
        await writer.flushed()
    finally:
        await writer.close()
    assert (gap.calls, again.calls) == (3, 0)
    async with seeded() as s:
        calls = {c.linkedid: c for c in (await s.execute(select(Call))).scalars()}
        legs = list((await s.execute(select(CallLeg).order_by(CallLeg.call_id, CallLeg.seq)))
                    .scalars())
    assert set(calls) == {"1795534583.0", "1795534600.6", "1795534618.10"}
    assert all(c.reconciled for c in calls.values())
    t = calls["1795534583.0"]
    assert (t.first_queue, t.final_queue, t.final_agent, t.wait_seconds, t.talk_seconds,
            t.outcome) == ("general-311", "sanitation", "Ana", 3, 11, "answered")
    f = calls["1795534600.6"]
    assert [(leg.queue, leg.outcome, leg.wait_seconds) for leg in legs
            if leg.call_id == f.id] == [("sanitation", "timed_out", 8),
                                        ("general-311", "answered", 2)]
    assert calls["1795534618.10"].outcome == "abandoned"


async def test_a_partial_row_is_completed_from_the_tables(
    seeded: async_sessionmaker[AsyncSession], tmp_path: Path,
) -> None:
    await load_tables(seeded)
    rec, writer, _ = await reconciler(seeded, tmp_path)
    # what a resync leaves for the transfer call: closed partial, one leg, Eve, talk unknown
    start = datetime(2026, 11, 24, 15, 36, 23, tzinfo=UTC)
    writer.submit(CallRecord(server="default", linkedid="1795534583.0",
                             caller_number="7875550101", caller_name="Maria Lopez",
                             started_at=start, ended_at=start, outcome="answered",
                             queue="general-311", agent="Eve", service="missed-pickup",
                             language="es", partial=True))
    await writer.flushed()
    try:
        gap = await rec.reconcile_gap(*GAP)
        await writer.flushed()
        done_again = await rec.complete_partials()
    finally:
        await writer.close()
    assert (gap.calls, gap.completed, done_again) == (2, 1, 0)
    async with seeded() as s:
        row = (await s.execute(select(Call).where(Call.linkedid == "1795534583.0"))).scalar_one()
        legs = list((await s.execute(select(CallLeg).where(CallLeg.call_id == row.id)
                                     .order_by(CallLeg.seq))).scalars())
    assert (row.partial, row.reconciled, row.final_agent, row.talk_seconds) == (
        False, True, "Ana", 11)
    assert (row.service, row.language) == ("missed-pickup", "es")  # the live path's, kept
    assert [(leg.queue, leg.agent) for leg in legs] == [("general-311", "Eve"),
                                                       ("sanitation", "Ana")]


async def test_unreadable_tables_are_a_gap_not_done(tmp_path: Path, seeded: Any) -> None:
    rec, writer, _ = await reconciler(seeded, tmp_path)
    try:
        async with seeded() as s, s.begin():
            await s.run_sync(lambda sync: AsteriskQueueLog.__table__.drop(sync.connection()))
        gap = await rec.reconcile_gap(*GAP)
    finally:
        await writer.close()
    assert not gap.done and gap.error
    assert rec.health(GAP[1], 5.0, True)["ok"] is False
