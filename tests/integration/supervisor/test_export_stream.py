"""The calls CSV streams (issue 24): the same cells as the export built whole before, four more
columns at the end, sent in chunks as rows are read, any range allowed."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.cases.models import Call, CallLeg, Case
from contactcenter.keys import PBX
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor import intervals, reports
from contactcenter.supervisor.http import _csv_warning
from contactcenter.supervisor.stats import clean_text
from tests.conftest import app_settings, login
from tests.integration.supervisor.conftest import FakePbx

pytestmark = pytest.mark.store
TZ = "America/Puerto_Rico"
NASTY = '=HYPERLINK("http://evil")\r\n"quoted", \'x\'' + "Z" * 150  # the column holds 200


async def old_calls_csv(
    sessions: async_sessionmaker[AsyncSession], rng: reports.DateRange, tz: tzinfo
) -> str:
    """The export as it was before it streamed (kept here as the reference)."""
    start, end = rng.bounds(tz)
    async with sessions() as db:
        rows = (await db.execute(
            select(*(getattr(Call, c) for c in reports.CALL_COLUMNS))
            .where(Call.started_at >= start, Call.started_at < end)
            .order_by(Call.started_at, Call.id))).all()

    def lines() -> Any:
        yield reports.CALL_COLUMNS
        for r in rows:
            yield (r[0].astimezone(tz), r[1].astimezone(tz), *r[2:])

    return "".join(reports._csv(lines()))


async def _calls(sessions: async_sessionmaker[AsyncSession], day: date, n: int) -> None:
    tz = ZoneInfo(TZ)
    async with sessions() as s, s.begin():
        st = (await s.execute(select(ServiceType).limit(1))).scalar_one()
        case = Case(number="311-2026-000777", token="t777", service_type_id=st.id)
        s.add(case)
        await s.flush()
        for i in range(n):
            at = datetime(day.year, day.month, day.day, 9, tzinfo=tz) + timedelta(minutes=7 * i)
            s.add(Call(
                linkedid=f"c{i}", caller_number=["+15551234", "7875550101", None][i % 3],
                caller_name=[NASTY, "-2+3", "Ana  María\t", None][i % 4],
                started_at=at, ended_at=at + timedelta(seconds=95.5), queue="sanitation",
                service="missed-pickup", outcome=["answered", "abandoned"][i % 2],
                agent="@Ana" if i % 2 == 0 else None, wait_seconds=4.5 + i, talk_seconds=60.0,
                case_number="311-2026-000001" if i == 1 else None,
                case_id=case.id if i == 2 else None, partial=i == 3,
                disposition="case-created" if i == 2 else None, language="es" if i else "en"))
            if i == 2:  # sent on from sanitation to general-311, then out to another line
                await s.flush()
                call = (await s.execute(select(Call).where(Call.linkedid == "c2"))).scalar_one()
                for seq, (kind, queue) in enumerate([("queue", "sanitation"),
                                                     ("queue", "general-311"),
                                                     ("transfer", None)]):
                    s.add(CallLeg(call_id=call.id, seq=seq, kind=kind, queue=queue,
                                  joined_at=at, left_at=at, outcome="transferred"))
        # a call outside the range
        s.add(Call(linkedid="other", started_at=at + timedelta(days=3),
                   ended_at=at + timedelta(days=3), outcome="answered"))
    # rows written by hand, not by the case writer: the summary is rebuilt, as after a load
    await intervals.rebuild(sessions, 15.0)


async def test_same_cells_as_before_plus_four_columns(seeded: Any) -> None:
    day = date(2026, 11, 20)
    await _calls(seeded, day, 7)
    rng = reports.DateRange(day, day)
    before = list(csv.reader(io.StringIO(await old_calls_csv(seeded, rng, ZoneInfo(TZ)))))
    text = await reports.calls_csv(seeded, rng, ZoneInfo(TZ))
    now = list(csv.reader(io.StringIO(text)))
    assert len(now) == len(before) == 8 and len(text.splitlines()) == 8
    assert [r[:16] for r in now] == before  # the old columns, cell for cell
    extra = [dict(zip(now[0][16:], r[16:], strict=True)) for r in now[1:]]
    assert now[0][16:] == ["disposition", "language", "linked_case", "legs"]
    assert extra[2] == {"disposition": "case-created", "language": "es",
                        "linked_case": "311-2026-000777", "legs": "sanitation>general-311"}
    # no legs recorded: the call's one queue
    assert extra[0] == {"disposition": "", "language": "en", "linked_case": "",
                        "legs": "sanitation"}
    first = dict(zip(now[0], now[1], strict=True))
    assert first["caller_name"].startswith("'=HYPERLINK") and first["caller_number"] == "'+15551234"


async def test_rows_come_in_chunks_as_they_are_read(seeded: Any) -> None:
    day = date(2026, 11, 20)
    await _calls(seeded, day, 7)
    chunks = [c async for c in reports.calls_csv_chunks(
        seeded, reports.DateRange(day, day), ZoneInfo(TZ), chunk_rows=3)]
    # the header, then 3 + 3 + 1 rows: never the whole file in one piece
    assert [c.count("\r\n") for c in chunks] == [1, 3, 3, 1]
    assert "".join(chunks) == await reports.calls_csv(seeded, reports.DateRange(day, day),
                                                      ZoneInfo(TZ))


async def test_the_route_streams_any_range(aiohttp_client: Any, migrated_url: str,
                                           seeded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(app_settings(migrated_url, timezone=TZ))
    app[PBX] = FakePbx()
    client = await aiohttp_client(app)
    await login(client, "supervisor")
    await _calls(seeded, date(2026, 11, 20), 4)
    resp = await client.get("/reports/calls.csv?from=2019-01-01&to=2026-11-23")  # 7 years
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in resp.headers
    assert 'filename="calls-2019-01-01-2026-11-23.csv"' in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await resp.text())))
    assert len(rows) == 1 + 5  # the four calls and the one three days later
    head = await client.head("/reports/calls.csv?from=2026-11-20&to=2026-11-20")
    assert head.status == 200 and await head.read() == b""
    # the page itself keeps its limit (its figures are computed, not streamed)
    assert (await client.get("/reports?from=2019-01-01&to=2026-11-23")).status == 400
    assert (await client.get("/reports/calls.csv?from=2026-11-23&to=2026-11-01")).status == 400
    # the page warns beside the download link when the range holds many calls
    page = await (await client.get("/reports?from=2026-11-20&to=2026-11-20")).text()
    assert 'id="csv-warning"' not in page
    monkeypatch.setattr("contactcenter.supervisor.http.CSV_WARN_ROWS", 3)
    page = await (await client.get("/reports?from=2026-11-20&to=2026-11-20")).text()
    assert 'id="csv-warning"' in page and "has 4 rows" in page


def test_size_warning_only_for_large_ranges() -> None:
    assert _csv_warning(1000) is None
    text = _csv_warning(2_500_000)
    assert text is not None and "2,500,000 rows" in text and "MB" in text


@pytest.mark.parametrize("value", [
    "plain", "Ana  María", " lead", "trail ", "tab\there", "line\nbreak", "=1+1", "-2", "@x",
    "\uff1dfull", "x" * 200, "x" * 201, "ok é ü", "\u00a0nbsp", "", "+1 555",
])
def test_csv_cell_fast_path_is_the_same_as_the_careful_one(value: str) -> None:
    expected = clean_text(value, reports.CSV_TEXT_LIMIT)
    if expected.startswith(reports._FORMULA_START):
        expected = "'" + expected
    assert reports.csv_cell(value) == expected
    assert reports._clean_cell(value) == expected  # the export's own inline path


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe",
                                  "America/St_Johns", "UTC"])
def test_times_are_written_as_isoformat_writes_them(zone: str) -> None:
    tz = ZoneInfo(zone)
    utc = ZoneInfo("UTC")
    # every 7 min 13.5 s over two days around each DST change of 2026, and a 19th-century
    # local mean time (an offset in seconds)
    starts = [datetime(2026, 3, 7, tzinfo=utc), datetime(2026, 4, 4, tzinfo=utc),
              datetime(2026, 10, 3, tzinfo=utc), datetime(2026, 10, 31, tzinfo=utc),
              datetime(1890, 6, 1, tzinfo=utc)]
    times = [s + timedelta(seconds=433.5 * i) for s in starts for i in range(400)]
    times.append(None)  # type: ignore[arg-type]
    expected = [t.astimezone(tz).isoformat(timespec="seconds") if t else "" for t in times]
    assert reports._CallRowsCsv(tz)._times(times) == expected
