"""Fixtures for the supervisor feature's app tests: a center time zone where it is daytime now
(so "today" and "the last hour" are stable whatever the hour the suite runs), a simulated day of
finished calls, and the calls table filled as the case writer would fill it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.cases.models import Call, CallLeg
from contactcenter.cases.writer import leg_rows, record_row, stored_facts
from contactcenter.events import CallEnded, CallRecord, PbxError
from contactcenter.supervisor import intervals


def daytime_zone() -> str:
    """An Etc/GMT±N zone where the local hour is now between 9 and 18."""
    now = datetime.now(UTC)
    for offset in range(-12, 13):
        name = f"Etc/GMT{'+' if offset <= 0 else '-'}{abs(offset)}"  # POSIX signs are inverted
        if 9 <= now.astimezone(ZoneInfo(name)).hour < 18:
            return name
    raise AssertionError("no daytime zone found")


def record(lid: str, started: datetime, outcome: str, queue: str | None, **kw: Any) -> CallRecord:
    return CallRecord(
        server="default", linkedid=lid, caller_number=kw.pop("number", "5550100"),
        caller_name=kw.pop("name", "Maria Lopez"), started_at=started,
        ended_at=started + timedelta(seconds=kw.pop("duration", 90)), outcome=outcome,
        queue=queue, **kw,
    )


def simulated_day(now: datetime) -> list[CallRecord]:
    """Known outcomes, relative to `now` (all today in the daytime zone but the first).

    Hand count of today, per queue (T = 15 s, short-abandon 5 s, as seeded):
      sanitation: offered 6; answered 3 (waits 4, 12, 40 -> 2 within 15 s); abandoned 2;
                  short 1. SL 2/5 = 0.4; ASA 56/3 = 18.7; AHT (120+60+300)/3 = 160;
                  abandon rate 2/5 = 0.4
      potholes:   offered 3; answered 2 (waits 15, 16 -> 1 within); timed out 1.
                  SL 1/2 = 0.5; ASA 15.5; AHT (30+90)/2 = 60; abandon rate 0/2 = 0
      general-311: offered 1 (short abandon only): SL and abandon rate have no denominator
    The last hour (started within 60 min): s5, s6, p3, g1.
    """
    h = timedelta(hours=1)
    m = timedelta(minutes=1)
    return [
        record("y1", now - timedelta(days=1), "answered", "sanitation", wait_seconds=3,
               talk_seconds=50, agent="Ana"),
        record("s1", now - 6 * h, "answered", "sanitation", wait_seconds=4, talk_seconds=120,
               agent="Ana", service="missed-pickup"),
        record("s2", now - 5 * h, "answered", "sanitation", wait_seconds=12, talk_seconds=60,
               agent="Ben", service="bulk-item"),
        record("s3", now - 4 * h, "answered", "sanitation", wait_seconds=40, talk_seconds=300,
               agent="Ana", service="missed-pickup"),
        record("s4", now - 3 * h, "abandoned", "sanitation", wait_seconds=25),
        record("s5", now - 50 * m, "abandoned", "sanitation", wait_seconds=9),
        record("s6", now - 40 * m, "short_abandoned", "sanitation", wait_seconds=2),
        record("p1", now - 2 * h, "answered", "potholes", wait_seconds=15, talk_seconds=30,
               agent="Dan", service="pothole"),
        record("p2", now - 90 * m, "answered", "potholes", wait_seconds=16, talk_seconds=90,
               agent="Carla", service="streetlight-out"),
        record("p3", now - 30 * m, "timed_out", "potholes", wait_seconds=60),
        record("g1", now - 20 * m, "short_abandoned", "general-311", wait_seconds=1),
        record("i1", now - 10 * m, "ivr_hangup", None),
    ]


def row(rec: CallRecord) -> Call:
    """The row the case writer stores (same truncation of attacker-controlled caller ID)."""
    return Call(**record_row(rec))


async def store(sessions: async_sessionmaker[AsyncSession], records: Sequence[CallRecord]) -> None:
    """What the case writer does with each CallEnded: the row, its legs and the interval
    summary (thresholds from the queues table, 15 s for others: the settings' default)."""
    async with sessions() as db, db.begin():
        for r in records:
            call = row(r)
            db.add(call)
            await db.flush()
            db.add_all(CallLeg(call_id=call.id, **leg) for leg in leg_rows(r))
        conn = await db.connection()
        await intervals.upsert(conn, intervals.summarize(
            (stored_facts(record_row(r), leg_rows(r)) for r in records),
            await intervals.thresholds(conn, 15.0)))


async def publish_ended(app: Any, records: Sequence[CallRecord]) -> None:
    from contactcenter.keys import BUS

    for r in records:
        await app[BUS].publish(CallEnded(record=r))
    await app[BUS].drain()


class FakePbx:
    """The Pbx gateway, recording what was asked (telephony/ implements the real one)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail: str | None = None

    async def queue_pause(self, interface: str, paused: bool, *, queue: str | None = None,
                          reason: str = "") -> None:
        if self.fail:
            raise PbxError(self.fail)
        self.calls.append(("pause", interface, paused, queue, reason))

    async def queue_remove(self, queue: str, interface: str) -> None:
        if self.fail:
            raise PbxError(self.fail)
        self.calls.append(("remove", queue, interface))

    async def queue_add(self, queue: str, interface: str, member_name: str, *,
                        paused: bool = False, penalty: int = 0) -> None:
        self.calls.append(("add", queue, interface))

    async def hangup(self, channel: str) -> None:
        self.calls.append(("hangup", channel))

    async def originate(self, channel: str, context: str, exten: str, *, caller_id: str = "",
                        variables: dict[str, str] | None = None) -> None:
        self.calls.append(("originate", channel))


def origin(client: Any) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


def table_row(html: str, table_id: str, name: str) -> list[str]:
    """The cells of the row headed `name` in the table with `table_id`."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table, f"no table {table_id}"
    for tr in re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S):
        cells = [re.sub(r"<[^>]+>", "", c).strip()
                 for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
        if cells and cells[0] == name:
            return cells
    raise AssertionError(f"no row {name!r} in {table_id}")


@pytest.fixture
def tz_name() -> str:
    return daytime_zone()
