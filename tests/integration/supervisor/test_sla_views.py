"""The SLA report by service type and by agency, and its drill-down to the overdue cases
(issue 24): cases opened, closed and paused through the case store on a fixed clock, 3 services
× 2 agencies with known outcomes, the pages and the CSV read through the app."""

from __future__ import annotations

import csv
import html as html_text
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.cases.models import Case
from contactcenter.cases.store import CaseStore, NewCase
from contactcenter.clock import FixedClock
from contactcenter.queues.models import ServiceType
from contactcenter.supervisor import reports, sla_views
from tests.conftest import app_settings, login
from tests.integration.supervisor.conftest import table_row

pytestmark = pytest.mark.store

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)  # a Monday
NOW = T0 + timedelta(hours=100)  # Friday 13:00: the report's "now"
RANGE = "from=2026-06-01&to=2026-06-03"
H = timedelta(hours=1)
EVIL = '=HYPERLINK("http://evil.example","x")'  # a service name an admin typed


async def _cases(sessions: async_sessionmaker[AsyncSession], clock: FixedClock
                 ) -> dict[str, str]:
    """Missed pickup (SAN, 48 calendar hours), bulk item (SAN, 120 h), pothole (DPW, 72 h),
    some sent to the other agency; returns {name: case number}. The hand count is in
    test_breakdown_by_service_and_agency."""
    store = CaseStore(sessions, None, clock=clock.now)
    n: dict[str, str] = {}

    async def open_(name: str, code: str) -> None:
        n[name] = (await store.open_case(NewCase(service_code=code), actor="t")).number

    clock.set(T0 - 48 * H)  # Saturday, before the range: overdue, but neither counted nor listed
    await open_("outside", "missed-pickup")
    clock.set(T0)
    for name in ("mp1", "mp2", "mp3", "mp4", "mp5", "mp6"):
        await open_(name, "missed-pickup")  # due T0 + 48 h
    for name in ("bk1", "bk2", "bk3"):
        await open_(name, "bulk-item")  # due T0 + 120 h
    for name in ("ph1", "ph2", "ph3", "ph4"):
        await open_(name, "pothole")  # due T0 + 72 h
    clock.set(T0 + H)  # the due time stays where it was (store.reassign)
    for name, agency in (("mp5", "DPW"), ("mp6", "DPW"), ("bk3", "DPW"), ("ph4", "SAN")):
        await store.reassign(n[name], agency, actor="t", reason="routed")
    clock.set(T0 + 10 * H)
    for name in ("mp1", "mp6", "bk1"):
        await store.close(n[name], actor="t", reason="done")
    await store.wait_on_citizen(n["ph3"], actor="t", note="Which corner?")  # before its due
    clock.set(T0 + 50 * H)
    await open_("bk4", "bulk-item")  # Wednesday: due T0 + 170 h
    clock.set(T0 + 60 * H)
    await store.close(n["mp2"], actor="t", reason="done late")
    clock.set(T0 + 75 * H)
    await store.wait_on_citizen(n["ph4"], actor="t", note="Which street?")  # already late
    clock.set(T0 + 80 * H)
    await store.close(n["ph1"], actor="t", reason="done late")
    clock.set(NOW)
    return n


def _counts(row: reports.SlaRow) -> tuple[int, ...]:
    return (row.total, row.on_time, row.late, row.overdue, row.at_risk, row.open_not_due,
            row.no_sla)


async def test_breakdown_by_service_and_agency(seeded: async_sessionmaker[AsyncSession]
                                               ) -> None:
    clock = FixedClock(T0)
    n = await _cases(seeded, clock)
    rng = reports.DateRange(date(2026, 6, 1), date(2026, 6, 3))
    got = await sla_views.sla_breakdown(seeded, rng, UTC, NOW)
    # opened, on time, late, overdue now, at risk, open not due, no SLA
    assert {g.code: _counts(g.row) for g in got.by_service} == {
        # mp1, mp6 on time; mp2 late; mp3, mp4 (SAN) and mp5 (DPW) open past due
        "missed-pickup": (6, 2, 1, 3, 0, 0, 0),
        # 20 of 120 h left (< 20 %): bk2, bk3 at risk; bk4 opened Wednesday, not due
        "bulk-item": (4, 1, 0, 0, 2, 1, 0),
        # ph1 closed late; ph2 open past due; ph4 began waiting when already late (overdue);
        # ph3 waits on the citizen since before its due time (paused: not due)
        "pothole": (4, 0, 1, 2, 0, 1, 0),
    }
    assert {g.code: _counts(g.row) for g in got.by_agency} == {
        "SAN": (8, 2, 1, 3, 1, 1, 0),
        "DPW": (6, 1, 1, 2, 1, 1, 0),
    }
    assert _counts(got.total) == (14, 3, 2, 5, 2, 2, 0)
    pct = {g.code: g.row.compliance for g in got.by_service}
    assert pct == {"missed-pickup": 2 / 6, "bulk-item": 1.0, "pothole": 0.0}
    # by agency it is the reports page's table, counted the same way
    page = {r.agency: _counts(r) for r in await reports.sla_report(seeded, rng, UTC, NOW)}
    assert page == {g.row.agency: _counts(g.row) for g in got.by_agency}

    # the drill-down lists exactly the overdue ones, most overdue first, page by page
    flt = sla_views.OverdueFilter(agency="SAN")
    first = await sla_views.overdue_page(seeded, rng, UTC, NOW, "UTC", flt, limit=2)
    assert first.total == 3 and [c.number for c in first.cases] == [n["mp3"], n["mp4"]]
    assert first.next_cursor is not None and first.agency_name == "Department of Sanitation"
    rest = await sla_views.overdue_page(seeded, rng, UTC, NOW, "UTC", flt, first.next_cursor,
                                        limit=2)
    assert [c.number for c in rest.cases] == [n["ph4"]] and rest.next_cursor is None
    assert rest.cases[0].late_seconds == 28 * 3600 and rest.cases[0].status == \
        "waiting_citizen"
    every = await sla_views.overdue_page(seeded, rng, UTC, NOW, "UTC",
                                         sla_views.OverdueFilter())
    assert {c.number for c in every.cases} == {n[k] for k in ("mp3", "mp4", "mp5", "ph2", "ph4")}
    both = await sla_views.overdue_page(
        seeded, rng, UTC, NOW, "UTC", sla_views.OverdueFilter("missed-pickup", "DPW"))
    assert [c.number for c in both.cases] == [n["mp5"]]
    # the store's own list of overdue cases (the work queue's definition) agrees
    store = CaseStore(seeded, None, clock=clock.now)
    watched = {v.number for v, st in await store.sla_watch() if st == "overdue"}
    assert watched - {n["outside"]} == {c.number for c in every.cases}
    with pytest.raises(sla_views.FilterError, match="unknown service type"):
        await sla_views.overdue_page(seeded, rng, UTC, NOW, "UTC",
                                     sla_views.OverdueFilter(service="nope"))

    # a case no agency owns: its own line, and its own drill-down (agency "-")
    async with seeded() as db, db.begin():
        await db.execute(update(Case).where(Case.number == n["mp4"]).values(agency_id=None))
    got = await sla_views.sla_breakdown(seeded, rng, UTC, NOW)
    assert {g.code: _counts(g.row) for g in got.by_agency}["-"] == (1, 0, 0, 1, 0, 0, 0)
    assert [g.row.agency for g in got.by_agency] == [
        "(no agency)", "Department of Public Works", "Department of Sanitation"]
    nobody = await sla_views.overdue_page(seeded, rng, UTC, NOW, "UTC",
                                          sla_views.OverdueFilter(agency="-"))
    assert [(c.number, c.agency) for c in nobody.cases] == [(n["mp4"], "(no agency)")]


@pytest.fixture
async def env(aiohttp_client: Any, migrated_url: str, seeded: Any) -> Any:
    clock = FixedClock(T0)
    numbers = await _cases(seeded, clock)
    async with seeded() as db, db.begin():
        await db.execute(update(ServiceType).where(ServiceType.code == "pothole")
                         .values(name=EVIL))
    app = create_app(app_settings(migrated_url, timezone="UTC"), clock=clock)
    client = await aiohttp_client(app)
    return client, numbers


def _links(html: str, table_id: str) -> list[str]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert table
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', table.group(0))]


async def test_pages_csv_and_bad_input(env: Any) -> None:
    client, n = env
    await login(client, "supervisor")
    resp = await client.get(f"/reports/sla?{RANGE}")
    assert resp.status == 200
    html = await resp.text()
    # name, opened, within SLA, late, overdue, at risk, not due, no SLA, % within SLA
    assert table_row(html, "sla-by-service", "Missed garbage pickup") == \
        ["Missed garbage pickup", "6", "2", "1", "3", "0", "0", "0", "33.3%"]
    assert table_row(html, "sla-by-agency", "Department of Public Works") == \
        ["Department of Public Works", "6", "1", "1", "2", "1", "1", "0", "25.0%"]
    assert table_row(html, "sla-by-agency", "All cases") == \
        ["All cases", "14", "3", "2", "5", "2", "2", "0", "30.0%"]
    by_service = _links(html, "sla-by-service")
    assert "/reports/sla/overdue?from=2026-06-01&to=2026-06-03&service=missed-pickup" in \
        by_service
    assert not any("service=bulk-item" in h for h in by_service)  # 0 overdue: no link
    assert "/reports/sla/overdue?from=2026-06-01&to=2026-06-03&agency=SAN" in \
        _links(html, "sla-by-agency")
    assert "/reports/sla?from=" in await (await client.get(f"/reports?{RANGE}")).text()

    resp = await client.get(f"/reports/sla/overdue?{RANGE}&agency=SAN")
    assert resp.status == 200
    page = await resp.text()
    rows = re.findall(r'<th scope="row"><a href="/cases/([^"]+)">', page)
    assert rows == [n["mp3"], n["mp4"], n["ph4"]]
    assert [html_text.unescape(c) for c in table_row(page, "overdue", n["ph4"])[1:]] == [
        EVIL, "Department of Sanitation", "2026-06-01 09:00", "2026-06-04 09:00", "28.0 h",
        "waiting citizen"]
    assert "<script" not in page.split("<main>")[1] and 'HYPERLINK(&#34;' in page
    assert (await client.get(f"/cases/{n['ph4']}")).status == 200  # the link's page

    resp = await client.get(f"/reports/sla/overdue.csv?{RANGE}&service=pothole")
    assert resp.status == 200 and resp.content_type == "text/csv"
    table = list(csv.reader(io.StringIO(await resp.text())))
    assert table[0] == list(sla_views.OVERDUE_COLUMNS)
    assert [r[0] for r in table[1:]] == [n["ph2"], n["ph4"]]
    assert table[1][1] == "'" + EVIL and table[1][2] == "Department of Public Works"
    assert table[1][4:] == ["2026-06-01T09:00:00+00:00", "2026-06-04T09:00:00+00:00", "28.0"]

    for url, words in [
        ("/reports/sla?from=2026-13-45", "YYYY-MM-DD"),
        ("/reports/sla?from=2026-06-03&to=2026-06-01", "after"),
        ("/reports/sla/overdue?from=garbage", "YYYY-MM-DD"),
        (f"/reports/sla/overdue?{RANGE}&service=no-such-thing", "unknown service type"),
        (f"/reports/sla/overdue?{RANGE}&agency=XYZ", "unknown agency"),
        (f"/reports/sla/overdue?{RANGE}&after=not-a-cursor", "page link is broken"),
        (f"/reports/sla/overdue.csv?{RANGE}&service=no-such-thing", "unknown service type"),
        ("/reports/sla/overdue.csv?to=yesterday", "YYYY-MM-DD"),
    ]:
        resp = await client.get(url)
        assert resp.status == 400, url
        assert words in await resp.text(), url


async def test_only_supervisors_and_admins(env: Any) -> None:
    client, _ = env
    for user in ("operator", "agency"):
        client.session.cookie_jar.clear()
        await login(client, user)
        for path in ("/reports/sla", "/reports/sla/overdue", "/reports/sla/overdue.csv"):
            assert (await client.get(f"{path}?{RANGE}")).status == 403, (user, path)
    client.session.cookie_jar.clear()
    await login(client, "admin")
    assert (await client.get(f"/reports/sla/overdue?{RANGE}")).status == 200


async def test_the_pages_run_in_the_report_worker(
    env: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Heavy report work never runs on the serving loop (supervisor/offloop.py)."""
    from contactcenter.supervisor.keys import SUPERVISOR

    client, _ = env
    worker = client.app[SUPERVISOR].offloop
    assert worker is not None  # a file database: another process sees it
    ran: list[str] = []
    real = worker.run

    async def spy(fn: Any, *args: Any) -> Any:
        ran.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(worker, "run", spy)
    await login(client, "supervisor")
    for path in ("/reports/sla", "/reports/sla/overdue", "/reports/sla/overdue.csv",
                 "/reports/abandoned", "/reports/abandoned.csv"):
        assert (await client.get(f"{path}?{RANGE}")).status == 200, path
    assert ran == ["breakdown_work", "overdue_work", "overdue_csv_work", "list_work",
                   "csv_work"]
