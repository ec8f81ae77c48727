"""Abandoned calls with their callers, for call-back lists (issue 24): calls stored as the case
writer stores them, call-backs scheduled by the call-back service, the list and its CSV read
through the app; short abandons and served callers left out; supervisors and admins only."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.callbacks.models import Callback
from contactcenter.callbacks.policy import CallbackRules
from contactcenter.callbacks.service import Callbacks
from contactcenter.cases.store import CaseStore, NewCase
from contactcenter.clock import FixedClock
from contactcenter.events import QueueLeg
from contactcenter.supervisor import callback_list, reports
from tests.conftest import app_settings, login
from tests.integration.supervisor.conftest import record, store, table_row

pytestmark = pytest.mark.store

NOW = datetime(2026, 6, 3, 15, 0, tzinfo=UTC)
RANGE = "from=2026-06-01&to=2026-06-03"
A, B, C = "+1 (555) 010-0001", "5550100002", "5550100003"
E, F, J = "+1 (555) 010-0005", "=1+2", "5550100010"


def at(day: int, hour: int) -> datetime:
    return datetime(2026, 6, day, hour, 0, tzinfo=UTC)


async def _scheduled(sessions: async_sessionmaker[AsyncSession], phone: str, when: datetime
                     ) -> int:
    """A call-back to `phone` as the call-back service schedules one (a phone case closed)."""
    clock = FixedClock(when)
    cases = CaseStore(sessions, None, clock=clock.now)
    case = await cases.open_case(NewCase(service_code="pothole", phone=phone), actor="t")
    await cases.close(case.number, actor="t", reason="fixed")

    async def never(*_: Any) -> Any:
        raise AssertionError("nothing is placed here")

    rules = CallbackRules(time(9), time(19), 3, timedelta(hours=1), timedelta(seconds=90))
    made = await Callbacks(sessions, cases, clock.now, UTC, rules, never, never).schedule(
        case.number)
    assert made is not None
    return made.id


async def _history(sessions: async_sessionmaker[AsyncSession]) -> None:
    await store(sessions, [
        # A: twice in vain, the second time (in Spanish) through two queues
        record("a1", at(1, 10), "abandoned", "sanitation", number=A, wait_seconds=40,
               language="en"),
        record("a2", at(2, 9), "abandoned", "general-311", number=A, language="es",
               wait_seconds=70, legs=(
                   QueueLeg(queue="general-311", joined_at=at(2, 9), outcome="timed_out",
                            left_at=at(2, 9) + timedelta(seconds=30), wait_seconds=30),
                   QueueLeg(queue="potholes", joined_at=at(2, 9) + timedelta(seconds=30),
                            left_at=at(2, 9) + timedelta(seconds=70), outcome="abandoned",
                            wait_seconds=40))),
        # B: gave up, then got through an hour later: served
        record("b1", at(1, 11), "abandoned", "sanitation", number=B, wait_seconds=30),
        record("b2", at(1, 12), "answered", "sanitation", number=B, wait_seconds=5,
               talk_seconds=60, agent="Ana"),
        # C: answered first, then gave up: the answer came before, not served
        record("c1", at(1, 8), "answered", "sanitation", number=C, wait_seconds=5,
               talk_seconds=60, agent="Ana"),
        record("c2", at(2, 10), "abandoned", "sanitation", number=C, wait_seconds=20),
        # D: hung up before the short-abandon threshold: not an abandoned call
        record("d1", at(2, 11), "short_abandoned", "sanitation", number="5550100004",
               wait_seconds=2),
        # E: a call-back to the number was scheduled after the attempt: served
        record("e1", at(2, 12), "abandoned", "sanitation", number=E, wait_seconds=25),
        # F: a caller ID made to look like a formula
        record("f1", at(2, 14), "abandoned", "sanitation", number=F, wait_seconds=33),
        # J: had a call-back before the attempt, long done: not served by it
        record("j1", at(2, 13), "abandoned", "general-311", number=J, wait_seconds=50),
        # G: no caller ID: cannot be called back
        record("g1", at(2, 16), "abandoned", "sanitation", number=None, wait_seconds=60),
        # before the range
        record("x1", at(1, 0) - timedelta(hours=1), "abandoned", "sanitation", number=A,
               wait_seconds=60),
    ])
    await _scheduled(sessions, "+15550100005", at(2, 13))  # E, after its attempt
    old = await _scheduled(sessions, J, at(1, 9))  # J, the day before its attempt
    async with sessions() as db, db.begin():
        await db.execute(update(Callback).where(Callback.id == old).values(state="confirmed"))


def _numbers(found: callback_list.AbandonedList) -> list[str]:
    return [ln.number for ln in found.lines]


async def test_callers_not_served(seeded: async_sessionmaker[AsyncSession]) -> None:
    await _history(seeded)
    rng = reports.DateRange(date(2026, 6, 1), date(2026, 6, 3))
    got = await callback_list.abandoned_list(seeded, rng, UTC, callback_list.ListFilter())
    assert _numbers(got) == [F, J, C, A]  # latest attempt first
    a = got.lines[-1]
    assert (a.attempts, a.queue, a.wait_seconds, a.language, a.at) == \
        (2, "potholes", 70, "es", at(2, 9))
    assert (got.total, got.unserved, got.calls, got.without_number) == (4, 4, 7, 1)

    every = await callback_list.abandoned_list(seeded, rng, UTC,
                                               callback_list.ListFilter(show="all"))
    assert _numbers(every) == [F, J, E, C, A, B]
    served = {ln.number: (ln.got_through_at, ln.callback) for ln in every.lines if ln.served}
    assert served == {B: (at(1, 12), None), E: (None, "pending")}

    calls = await callback_list.abandoned_list(seeded, rng, UTC,
                                               callback_list.ListFilter(per="call"))
    assert _numbers(calls) == [F, J, C, A, A] and {ln.attempts for ln in calls.lines} == {1}
    potholes = await callback_list.abandoned_list(
        seeded, rng, UTC, callback_list.ListFilter(queue="potholes"))
    assert _numbers(potholes) == [A] and potholes.lines[0].attempts == 1
    # a range of one day: B got through that day; A's second attempt is the next day
    one_day = reports.DateRange(date(2026, 6, 1), date(2026, 6, 1))
    first = await callback_list.abandoned_list(seeded, one_day, UTC, callback_list.ListFilter())
    assert _numbers(first) == [A]
    paged = await callback_list.abandoned_list(seeded, rng, UTC, callback_list.ListFilter(),
                                               page=2, per_page=3)
    assert _numbers(paged) == [A] and paged.pages == 2
    none = await callback_list.abandoned_list(
        seeded, reports.DateRange(date(2026, 5, 1), date(2026, 5, 2)), UTC,
        callback_list.ListFilter(show="all"))
    assert (none.lines, none.total, none.calls, none.pages) == ([], 0, 0, 1)
    beyond = await callback_list.abandoned_list(seeded, rng, UTC, callback_list.ListFilter(),
                                                page=3, per_page=3)
    assert (beyond.lines, beyond.total, beyond.unserved, beyond.calls) == ([], 4, 4, 7)
    with pytest.raises(callback_list.ListError, match="unknown queue"):
        await callback_list.abandoned_list(seeded, rng, UTC,
                                           callback_list.ListFilter(queue="nope"))


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str, seeded: Any) -> Any:
    await _history(seeded)
    app = create_app(app_settings(migrated_url, timezone="UTC"), clock=FixedClock(NOW))
    return await aiohttp_client(app)


async def test_page_csv_and_bad_input(client: Any) -> None:
    await login(client, "supervisor")
    resp = await client.get(f"/reports/abandoned?{RANGE}")
    assert resp.status == 200
    page = await resp.text()
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th>', page)
    assert rows == [F, J, C, A]
    assert table_row(page, "abandoned", A)[1:] == [
        "2026-06-02 09:00", "potholes", "70 s", "es", "2", "no"]
    assert "/reports/abandoned?from=" in await (await client.get(f"/reports?{RANGE}")).text()
    page = await (await client.get(f"/reports/abandoned?{RANGE}&show=all")).text()
    assert table_row(page, "abandoned", B)[-1] == "got through 2026-06-01 12:00"
    assert table_row(page, "abandoned", E)[-1] == "call-back: pending"

    resp = await client.get(f"/reports/abandoned.csv?{RANGE}")
    assert resp.status == 200 and resp.content_type == "text/csv"
    table = list(csv.reader(io.StringIO(await resp.text())))
    assert table[0] == list(callback_list.CSV_COLUMNS)
    assert [r[0] for r in table[1:]] == ["'=1+2", J, C, "'+1 (555) 010-0001"]
    assert table[-1][1:] == ["2026-06-02T09:00:00+00:00", "potholes", "70.0", "es", "2", "",
                             ""]

    for url, words in [
        ("/reports/abandoned?from=soon", "YYYY-MM-DD"),
        ("/reports/abandoned?from=2026-06-03&to=2026-06-01", "after"),
        (f"/reports/abandoned?{RANGE}&queue=nope", "unknown queue"),
        (f"/reports/abandoned?{RANGE}&show=maybe", "'show' must be one of"),
        (f"/reports/abandoned?{RANGE}&per=day", "'per' must be one of"),
        (f"/reports/abandoned?{RANGE}&page=0", "'page' must be a page number"),
        (f"/reports/abandoned.csv?{RANGE}&queue=nope", "unknown queue"),
        ("/reports/abandoned.csv?to=2026-02-30", "YYYY-MM-DD"),
    ]:
        resp = await client.get(url)
        assert resp.status == 400, url
        assert words in html.unescape(await resp.text()), url


async def test_caller_numbers_are_for_supervisors_and_admins(client: Any) -> None:
    for user in ("operator", "agency"):
        client.session.cookie_jar.clear()
        await login(client, user)
        for path in ("/reports/abandoned", "/reports/abandoned.csv"):
            resp = await client.get(f"{path}?{RANGE}")
            assert resp.status == 403, (user, path)
            assert "555" not in await resp.text()
    client.session.cookie_jar.clear()
    await login(client, "admin")
    assert (await client.get(f"/reports/abandoned.csv?{RANGE}")).status == 200
