"""The IVR containment report (issue 24) end to end: the IVR says when a self-service step is
done (`IVROUTCOME`), the tracker and the case writer keep it with each call and in the
`ivr_containment` summary, /reports/ivr and its CSV show it by menu path, and
`contactcenter reports rebuild` restates the same numbers from the calls."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.cases.models import Call, Case, Citizen
from contactcenter.ivr.services import CaseInfo
from contactcenter.queues.models import Queue, ServiceType
from contactcenter.supervisor import containment
from contactcenter.supervisor.containment_report import containment_report
from contactcenter.supervisor.models import IvrContainment
from contactcenter.supervisor.reports import DateRange
from tests.agi_fake import Caller
from tests.conftest import login, until
from tests.faults_support import center
from tests.ivr_support import FakeStore, Recorder, file_menu, running_ivr

CASE = CaseInfo("311-2026-000423", "in_progress", date(2026, 12, 3), "pothole")
OPERATOR_PROMPT = "GET DATA 311/en/press-0-operator 5000 1"


async def run(store: FakeStore, caller: Caller) -> Any:
    recorder = Recorder()
    async with running_ivr(store, recorder) as server:
        await caller.call(server.port)
        await until(lambda: recorder.results, timeout=5)
    return recorder.results[0]


# --- the IVR marks the self-service step when it is done ---------------------------------------


async def test_heard_the_status_then_hung_up_at_the_operator_offer_is_served() -> None:
    store = FakeStore(file_menu())
    store.cases[CASE.number] = CASE
    probe = Caller(inputs=["1", "9", "423"])
    await run(store, probe)
    at = probe.commands.index(OPERATOR_PROMPT)
    caller = Caller(inputs=["1", "9", "423"], hangup_at=at)
    result = await run(store, caller)
    assert result.outcome == "hangup"  # the session itself ended in a hang-up...
    # ...but the status was said first: the record will say served
    assert caller.variables["IVROUTCOME"] == "self_served"
    said = caller.commands.index('STREAM FILE 311/en/status-in-progress ""')
    assert said < at


async def test_hung_up_while_keying_the_case_number_is_not_served() -> None:
    store = FakeStore(file_menu())
    store.cases[CASE.number] = CASE
    probe = Caller(inputs=["1", "9", "423"])
    await run(store, probe)
    at = probe.commands.index("GET DATA 311/en/enter-case-number 5000 6")
    caller = Caller(inputs=["1", "9", "423"], hangup_at=at)
    await run(store, caller)
    assert "IVROUTCOME" not in caller.variables


async def test_status_then_operator_empties_the_mark_before_the_queue() -> None:
    store = FakeStore(file_menu())
    store.cases[CASE.number] = CASE
    caller = Caller(inputs=["1", "9", "423", "0"])
    result = await run(store, caller)
    names = [(n, v) for n, v in caller.sets if n in ("IVROUTCOME", "QUEUE")]
    # the dialplan ends the call while IVROUTCOME is set: it is empty before QUEUE
    assert names == [("IVROUTCOME", "self_served"), ("IVROUTCOME", ""),
                     ("QUEUE", "general-311")]
    assert result.outcome == "queued"


async def test_a_failure_after_the_status_still_reaches_the_general_queue() -> None:
    store = FakeStore(file_menu())
    store.cases[CASE.number] = CASE
    # the "expected by" prompt is missing: the engine falls back to the general queue
    caller = Caller(inputs=["1", "9", "423"], missing={"311/en/expected-by"})
    result = await run(store, caller)
    assert result.outcome == "fallback"
    assert caller.variables["IVROUTCOME"] == "" and caller.variables["QUEUE"] == "general-311"


# --- end to end: simulator -> IVR -> bridge -> case writer -> report -----------------------------


async def _case(sessions: async_sessionmaker[AsyncSession], number: str, phone: str) -> None:
    """An open case of the citizen calling from `phone` (the IVR offers it first)."""
    async with sessions() as session, session.begin():
        stype = (await session.execute(
            select(ServiceType).where(ServiceType.code == "pothole"))).scalar_one()
        citizen = Citizen(phone=phone)
        session.add(citizen)
        await session.flush()
        session.add(Case(number=number, token=number, service_type_id=stype.id,
                         status="in_progress", citizen_id=citizen.id))


async def _summary(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[Any, ...]]:
    async with sessions() as db:
        t = IvrContainment
        return [tuple(r) for r in (await db.execute(
            select(t.day, t.path, t.outcome, t.calls)
            .order_by(t.day, t.path, t.outcome))).all()]


async def _rebuild_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "contactcenter", "reports", "rebuild", *args],
        capture_output=True, text=True, env={"CC_DATABASE_URL": url, "PATH": "/usr/bin:/bin"},
        timeout=60)


@pytest.mark.store
async def test_calls_through_the_ivr_make_the_report_and_a_rebuild_agrees(
    aiohttp_client: Any, seeded: async_sessionmaker[AsyncSession], migrated_url: str,
    tmp_path: Path,
) -> None:
    await _case(seeded, CASE.number, "7875550105")
    # potholes is closed (a holiday around today, whatever the zone): the IVR offers a request
    today = datetime.now(UTC).date()
    async with seeded() as db, db.begin():
        await db.execute(update(Queue).where(Queue.name == "potholes").values(
            holidays=[(today + timedelta(days=d)).isoformat() for d in (-1, 0, 1)]))
    async with center(aiohttp_client, migrated_url, tmp_path) as c:
        calls = [
            c.call(1, ["1", "1"], patience=120),  # sanitation
            c.call(2, ["1", "2", "1"], patience=120),  # potholes closed: leaves a request
            c.call(8, ["1", "2", ""], patience=120),  # potholes closed: no request
            c.call(3, ["1", "7"], patience=120),  # the emergency message, to its end
            c.call(4, ["1", "7"], patience=120),
            # offered their open case, takes it, hears its status, asks for no operator
            c.call(5, ["1", "9", "1"], patience=120),
            c.call(6, ["1", "9", "999999"], patience=120),  # not found: the general queue
            c.call(7, ["1"], patience=3),  # gone during the main menu
        ]
        await until(lambda: c.finished(calls), 60, 0.1)
        await until(_stored(c, len(calls)), 30, 0.1)
        async with seeded() as db:
            first, last = (await db.execute(
                select(func.min(Call.started_at), func.max(Call.started_at)))).one()
        rng = DateRange(first.date() - timedelta(days=1), last.date() + timedelta(days=1))
        query = {"from": rng.first.isoformat(), "to": rng.last.isoformat()}

        report = await containment_report(seeded, rng)
        t = report.total
        assert (t.contained, t.queued, t.abandoned, t.closed, t.transferred, t.total) == (
            4, 2, 1, 1, 0, 8)
        assert t.containment == pytest.approx(4 / 8)
        by_path = {p.path: p for p in report.paths}
        assert (by_path["main:7"].counts.contained, by_path["main:7"].counts.total) == (2, 2)
        assert by_path["main:7"].labels == ["main 7: transfer / message"]
        assert by_path["main:9,main:1"].counts.contained == 1
        assert by_path["main:9,main:1"].labels == ["main 9: case status", "main 1: my open case"]
        assert by_path["main:9,main:case"].counts.queued == 1
        assert by_path["main:1"].counts.queued == 1
        assert by_path["main:2,closed:1"].counts.contained == 1
        assert by_path["main:2,closed:1"].labels == ["main 2: queue potholes",
                                                     "closed: left a request"]
        assert by_path["main:2"].counts.closed == 1
        assert by_path[""].counts.abandoned == 1
        assert sum(d.total for d in report.by_day.values()) == 8

        # the page and the CSV, for a supervisor
        await login(c.client, "supervisor")
        page = await c.client.get("/reports/ivr", params=query)
        html = await page.text()
        assert page.status == 200, html
        assert 'data-path="main:9,main:case"' in html and "main keyed a case number" in html
        total = html[html.index('id="ivr-total"'):html.index('id="ivr-paths"')]
        assert ">8<" in total and ">4<" in total and "50.0%" in total  # 4 of 8 contained
        got = await c.client.get("/reports/ivr.csv", params=query)
        assert got.status == 200 and got.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await got.text())))
        assert rows[-1]["path"] == "(all calls)" and rows[-1]["contained"] == "4"
        assert next(r for r in rows if r["path"] == "main:7")["contained"] == "2"

        # garbage dates: a clear 400, on the page and the CSV
        bad = await c.client.get("/reports/ivr", params={"from": "yesterday", "to": "x"})
        assert bad.status == 400 and "YYYY-MM-DD" in await bad.text()
        bad = await c.client.get("/reports/ivr.csv", params={"from": "2026-13-45"})
        assert bad.status == 400 and "YYYY-MM-DD" in await bad.text()
        bad = await c.client.get("/reports/ivr", params={"from": "2024-01-01",
                                                         "to": "2026-01-01"})
        assert bad.status == 400 and "at most 366 days" in await bad.text()

    # `reports rebuild` restates, from the calls, exactly what the writer kept
    live = await _summary(seeded)
    assert sum(r[3] for r in live) == 8
    async with seeded() as db, db.begin():
        await db.execute(delete(IvrContainment))
    done = await _rebuild_cli(migrated_url)
    assert done.returncode == 0, done.stderr
    assert "IVR containment summary rebuilt from 8 calls" in done.stdout
    assert await _summary(seeded) == live
    # a rebuild over the live table (no delete first) does not double it either
    assert await containment.rebuild(seeded, UTC) == 8
    assert await _summary(seeded) == live


def _stored(c: Any, n: int) -> Any:
    async def check() -> bool:
        return bool(await c.stored() == n)

    return check
