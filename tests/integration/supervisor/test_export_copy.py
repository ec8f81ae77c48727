"""The calls CSV written by PostgreSQL (COPY) is byte for byte the one Python writes: every
column's quoting, cleaning, formula guard, number and time format, over rows made to trip them.
On SQLite the export is Python's, and the same bytes again."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.cases.models import Call, CallLeg, Case
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor import reports

pytestmark = pytest.mark.store

NAMES = ["=SUM(A1)", "+1 555", "-2+3", "@Ana", "\tTabbed", " lead", "trail ", "a  b", "a,b",
         'say "hi"', "line\nbreak\r\nx", "Zoë 名前 ☎", "\u2028sep\u2029", "zero\u200bwidth",
         "\uff1dfull", "nb\u00a0sp", "", "   ", "\x07bell", "'quoted'", "x" * 200,
         "é" * 150 + "\x01" * 50, None]
NUMBERS = ["+15551234", "=1+2", "", None, " 555 ", "555,1", "7875550101", '"q"']
FIGURES = [0.1, 12.0, 1e-7, None, 0.0, -0.0, 1234567.891, 2.5e15, 1e15 + 0.5, 1e16, 3e-5,
           float("nan"), float("inf"), float("-inf"), 59.99999999999999, 1e300]
# around each 2026 change of America/New_York (07:00 UTC in March; 01:30 local twice in
# November) and a fraction of a second that must be cut, not rounded
TIMES = [datetime(2026, 3, 8, 6, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 8, 7, tzinfo=UTC),
         datetime(2026, 11, 1, 5, 30, tzinfo=UTC), datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
         datetime(2026, 6, 30, 23, 59, 59, 500000, tzinfo=UTC)]


def _pick(values: list[Any], i: int) -> Any:
    return values[i % len(values)]


async def _tricky_calls(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as s, s.begin():
        st = (await s.execute(select(ServiceType).limit(1))).scalar_one()
        case = Case(number="=311-2026-1", token="tk-copy", service_type_id=st.id)
        plain_case = Case(number="311-2026-000042", token="tk-copy2", service_type_id=st.id)
        s.add_all([case, plain_case])
        await s.flush()
        calls = []
        for i in range(60):
            at = _pick(TIMES, i) + timedelta(days=i // len(TIMES))
            call = Call(
                linkedid=f"cp{i}", caller_name=_pick(NAMES, i), caller_number=_pick(NUMBERS, i),
                started_at=at, ended_at=at + timedelta(seconds=_pick([0.4, 95.5, 3600.9], i)),
                queue=_pick(["sanitation", None, "q,1", "=q", "a\tb", "Ünï"], i),
                service=_pick(["missed-pickup", None, "x  y "], i),
                outcome=_pick(["answered", "abandoned", "-", "ivr_hangup"], i),
                agent=_pick(["@Ana", None, 'Op "Q"', "Agent 7"], i),
                ivr_seconds=_pick(FIGURES, i), wait_seconds=_pick(FIGURES, i + 3),
                ring_seconds=_pick(FIGURES, i + 5), talk_seconds=_pick(FIGURES, i + 7),
                hold_seconds=_pick(FIGURES, i + 11), wrap_seconds=_pick(FIGURES, i + 13),
                case_number=_pick([None, "311-2026-000001", "+1", " "], i),
                case_id=_pick([None, case.id, None, plain_case.id, None], i),
                partial=i % 3 == 0,
                disposition=_pick([None, "case-created", "@x", "a,b"], i),
                language=_pick(["en", "es", None], i))
            calls.append(call)
        s.add_all(calls)
        await s.flush()
        long_q = "q" * 79 + "é"
        legs = {0: [("queue", "sanitation"), ("queue", "general-311"), ("transfer", None)],
                # recorded out of order: the column follows seq
                1: [("queue", "b-second"), ("queue", "a-first")],
                2: [("queue", "=formula"), ("queue", None)],
                3: [(("queue", long_q)) for _ in range(3)],  # 242 characters: cut
                4: [("transfer", None)]}
        for i, call in enumerate(calls[:5]):
            seqs = [1, 0] if i == 1 else list(range(len(legs[i])))
            for seq, (kind, queue) in zip(seqs, legs[i], strict=True):
                s.add(CallLeg(call_id=call.id, seq=seq, kind=kind, queue=queue,
                              joined_at=call.started_at, left_at=call.started_at,
                              outcome="answered"))
    return len(calls)


async def _bytes(sessions: async_sessionmaker[AsyncSession], rng: reports.DateRange,
                 tz: ZoneInfo, use_copy: bool) -> bytes:
    parts: list[bytes] = []

    async def write(data: bytes) -> None:
        parts.append(data)

    await reports.write_calls_csv(sessions, rng, tz, write, use_copy=use_copy)
    return b"".join(parts)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata", "UTC"])
async def test_copy_writes_the_bytes_python_writes(seeded: Any, zone: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    n = await _tricky_calls(seeded)
    tz = ZoneInfo(zone)
    rng = reports.DateRange(date(2026, 3, 1), date(2026, 12, 31))
    python = await _bytes(seeded, rng, tz, use_copy=False)
    assert python == (await reports.calls_csv(seeded, rng, tz)).encode()
    assert python.count(b"\r\n") == n + 1
    # the rows did trip the rules the copy must follow
    for cell in (b"'=SUM(A1)", b'"a,b"', b'"say ""hi"""', b"'\xef\xbc\x9dfull",
                 b"2500000000000000.0", b"1e-07", b"sanitation>general-311", b"a-first>b-second",
                 b"\xe2\x80\xa6", b"'=311-2026-1", b"1e+16"):
        assert cell in python, cell
    if seeded.kw["bind"].dialect.name == "postgresql":  # the rows come from COPY, not Python
        monkeypatch.setattr(reports, "calls_csv_chunks", None)
    copied = await _bytes(seeded, rng, tz, use_copy=True)
    assert copied.splitlines() == python.splitlines()  # a differing row shows as itself
    assert copied == python


async def test_an_empty_range_is_the_header_alone(seeded: Any) -> None:
    await _tricky_calls(seeded)
    rng = reports.DateRange(date(2020, 1, 1), date(2020, 1, 2))
    got = await _bytes(seeded, rng, ZoneInfo("America/New_York"), use_copy=True)
    assert got == ",".join(reports.CALL_COLUMNS + reports.CSV_EXTRA_COLUMNS).encode() + b"\r\n"
