"""The real gap of tests/data/asterisk/reconcile-19: what a real Asterisk 22.10.1 wrote into
the product's asterisk_queue_log/asterisk_cdr while the product was killed rebuilds the same
rows the product itself wrote after its restart (calls.csv, call_legs.csv)."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

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

DATA = Path(__file__).resolve().parents[1] / "data" / "asterisk" / "reconcile-19"
CHECKPOINT = datetime(2026, 11, 24, 16, 0, 13, 154277, tzinfo=UTC).timestamp()
RECONNECT = datetime(2026, 11, 24, 16, 0, 58, 863728, tzinfo=UTC).timestamp()


def _t(value: str) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _csv(name: str) -> list[dict[str, str]]:
    with (DATA / name).open() as f:
        return list(csv.DictReader(f))


def _num(value: str) -> float | None:
    return float(value) if value else None


async def test_the_real_gap_reconciles_to_what_the_product_wrote(
    seeded: async_sessionmaker[AsyncSession], tmp_path: Path,
) -> None:
    q = [{**r, "id": int(r["id"]), "time": _t(r["time"])} for r in _csv("asterisk_queue_log.csv")]
    c = [{**r, "start": _t(r["start"]), "answer": _t(r["answer"]), "end": _t(r["end"]),
          "duration": int(r["duration"]), "billsec": int(r["billsec"]),
          "sequence": int(r["sequence"])} for r in _csv("asterisk_cdr.csv")]
    async with seeded() as s, s.begin():
        await s.execute(insert(AsteriskQueueLog), q)
        await s.execute(insert(AsteriskCdr), c)
    bus = LocalBus()
    writer = CallWriter(seeded, tmp_path / "spool")
    await writer.start(bus)
    # the live record of the first call, and the adopted one left partial by the restart
    first, straddle = _csv("calls.csv")[0], _csv("calls.csv")[3]
    for row, partial in ((first, False), (straddle, True)):
        writer.submit(CallRecord(
            server="default", linkedid=row["linkedid"], caller_number="7875550101",
            caller_name="Maria Lopez", started_at=datetime.fromisoformat(row["started_at"]),
            ended_at=datetime.fromisoformat(row["ended_at"]), outcome="answered",
            queue=row["first_queue"], agent=None if partial else row["final_agent"],
            wait_seconds=None if partial else 2.0, ring_seconds=None if partial else 2.0,
            talk_seconds=None if partial else 7.0,
            partial=partial))
    await writer.flushed()
    clock = FixedClock(datetime.fromtimestamp(RECONNECT, UTC))
    rec = Reconciler("default", TableSource(seeded), seeded, bus, clock, settled=writer.flushed)
    try:
        gap = await rec.reconcile_gap(CHECKPOINT, RECONNECT)
        await writer.flushed()
        completed = await rec.complete_partials(RECONNECT + 30)
    finally:
        await writer.close()
    assert (gap.calls, completed) == (2, 1)
    async with seeded() as s:
        calls = {r.linkedid: r for r in (await s.execute(select(Call))).scalars()}
        rows = (await s.execute(select(Call.linkedid, CallLeg).join(
            CallLeg, CallLeg.call_id == Call.id).order_by(Call.started_at, CallLeg.seq))).all()
        legs = [(lid, leg) for lid, leg in rows]
    want = _csv("calls.csv")
    assert sorted(calls) == sorted(r["linkedid"] for r in want)
    for w in want:
        got = calls[w["linkedid"]]
        assert (got.first_queue, got.final_queue, got.final_agent or "", got.outcome,
                got.wait_seconds, got.ring_seconds, got.talk_seconds, got.reconciled,
                got.partial) == (w["first_queue"], w["final_queue"], w["final_agent"],
                                 w["outcome"], _num(w["wait_seconds"]),
                                 _num(w["ring_seconds"]), _num(w["talk_seconds"]),
                                 w["reconciled"] == "t", w["partial"] == "t"), w["linkedid"]
    assert [(lid, leg.queue, leg.outcome, leg.wait_seconds, leg.talk_seconds, leg.agent or "")
            for lid, leg in legs] == [
        (w["linkedid"], w["queue"], w["outcome"], _num(w["wait_seconds"]),
         _num(w["talk_seconds"]), w["agent"]) for w in _csv("call_legs.csv")]
