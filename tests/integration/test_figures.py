"""Issue 22: the public figures, the open-data export and the agencies' scorecard, over a store
seeded with cases, their calls and later chase calls at known times."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.app import create_app
from contactcenter.cases.models import Call, Case, Citizen
from contactcenter.clock import FixedClock
from contactcenter.figures.keys import FIGURES
from contactcenter.keys import SESSIONS
from contactcenter.queues.models import ServiceType
from contactcenter.seed import seed_demo_users, seed_reference
from contactcenter.supervisor import intervals
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store

NOW = datetime(2026, 6, 15, 17, 0, tzinfo=UTC)  # 12:00 in Panama
# personal data planted in every row the figures read: none may appear in public output
SECRET_NAME = "Zebulon"
SECRET_PHONE = "5075550199"
SECRET_MAIL = "zebulon@example.org"
SECRET_TEXT = "behind the blue house of Zebulon"

_ids = iter(range(1, 10_000))


async def add_case(db: AsyncSession, *, service: str, created: datetime, status: str = "open",
                   closed: datetime | None = None, sla_hours: int = 48,
                   citizen: Citizen | None = None) -> Case:
    st = (await db.execute(select(ServiceType).where(ServiceType.code == service))).scalar_one()
    n = next(_ids)
    case = Case(number=f"311-2026-{n:06d}", token=f"tok{n}", service_type_id=st.id,
                agency_id=st.agency_id, citizen_id=citizen.id if citizen else None,
                status=status, channel="phone", description=SECRET_TEXT, address=SECRET_TEXT,
                sla_due_at=created + timedelta(hours=sla_hours), created_at=created,
                updated_at=closed or created, closed_at=closed)
    db.add(case)
    await db.flush()
    return case


def add_call(db: AsyncSession, case: Case | None, started: datetime, *, handle: float = 120.0,
             wait: float = 10.0, queue: str = "sanitation", outcome: str = "answered") -> None:
    n = next(_ids)
    db.add(Call(server="default", linkedid=f"L{n}", caller_number=SECRET_PHONE,
                caller_name=SECRET_NAME, started_at=started,
                ended_at=started + timedelta(seconds=wait + handle), queue=queue,
                outcome=outcome, wait_seconds=wait, talk_seconds=handle, handle_seconds=handle,
                case_id=case.id if case else None, agent="Ana"))


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str) -> TestClient:
    settings = app_settings(migrated_url, timezone="America/Panama")
    client: TestClient = await aiohttp_client(create_app(settings, clock=FixedClock(NOW)))
    sessions: async_sessionmaker[AsyncSession] = client.app[SESSIONS]
    await seed_reference(sessions)
    await seed_demo_users(sessions)
    async with sessions() as db, db.begin():
        citizen = Citizen(phone=SECRET_PHONE, email=SECRET_MAIL, first_name=SECRET_NAME,
                          last_name=SECRET_NAME)
        db.add(citizen)
        await db.flush()
        june = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
        # sanitation, June: a phone case closed in 20 h (contact: its call 6 minutes earlier),
        # one closed late (60 h against 48), one open past due, one open not yet due
        a = await add_case(db, service="missed-pickup", created=june, status="closed",
                           closed=june + timedelta(hours=20), citizen=citizen)
        add_call(db, a, june - timedelta(minutes=6))
        b = await add_case(db, service="missed-pickup", created=june, status="closed",
                           closed=june + timedelta(hours=60))
        c = await add_case(db, service="bulk-item", created=june, sla_hours=120)
        await add_case(db, service="missed-pickup", created=NOW - timedelta(hours=1))
        # chase calls: two about the open case c, one about b before it closed; all in June
        add_call(db, c, june + timedelta(days=3), handle=240.0)
        add_call(db, c, june + timedelta(days=8), handle=180.0)
        add_call(db, b, june + timedelta(days=1), handle=60.0)
        # public works, May: one case closed on time in 10 h, no chase
        may = datetime(2026, 5, 20, 13, 0, tzinfo=UTC)
        d = await add_case(db, service="pothole", created=may, status="closed",
                           closed=may + timedelta(hours=10), sla_hours=72)
        add_call(db, d, may - timedelta(minutes=3))
        # a call of today that made no case, abandoned
        add_call(db, None, NOW - timedelta(hours=2), outcome="abandoned", handle=0.0,
                 queue="general-311")
    # calls added by hand, not by the case writer: the reports' summary is rebuilt from them
    await intervals.rebuild(sessions, 15.0)
    return client


async def open_data(client: TestClient) -> dict[str, Any]:
    resp = await client.get("/figures/data.json")
    assert resp.status == 200
    data: dict[str, Any] = await resp.json()
    return data


def row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    (found,) = [r for r in rows if all(r[k] == v for k, v in match.items())]
    return found


async def test_agency_months_follow_the_definitions(client: TestClient) -> None:
    data = await open_data(client)
    months = data["agencies_by_month"]
    san = row(months, agency_code="SAN", month="2026-06")
    assert san["cases_received"] == 4
    assert san["cases_closed"] == 2
    # decided: two closed + one open past due (c: due June 6); the open not-yet-due one is not
    assert (san["closed_on_time"], san["decided"]) == (1, 3)
    assert san["on_time_rate"] == pytest.approx(1 / 3, abs=1e-4)
    # contact → resolution: 20 h + 6 min (from its call) and 60 h; median of two
    assert san["median_contact_to_resolution_hours"] == pytest.approx(
        (20.1 + 60) / 2, abs=0.01)
    assert san["chase_calls"] == 3
    assert san["chase_calls_per_100_cases"] == pytest.approx(75.0)
    assert san["chase_call_operator_minutes"] == pytest.approx(8.0)  # 240 + 180 + 60 s
    dpw = row(months, agency_code="DPW", month="2026-05")
    assert (dpw["cases_received"], dpw["closed_on_time"], dpw["chase_calls"]) == (1, 1, 0)
    assert dpw["median_contact_to_resolution_hours"] == pytest.approx(10.05, abs=0.01)
    assert not [r for r in months if r["agency_code"] == "DPW" and r["month"] == "2026-06"]


async def test_calls_by_day_and_cases_by_service(client: TestClient) -> None:
    data = await open_data(client)
    today = row(data["calls_by_day"], date="2026-06-15")
    assert (today["calls"], today["answered"], today["abandoned"]) == (1, 0, 1)
    assert today["service_level"] == 0.0
    june1 = row(data["calls_by_day"], date="2026-06-01")
    assert (june1["calls"], june1["answered"], june1["answered_within_target"]) == (1, 1, 1)
    assert len(data["calls_by_day"]) == 30
    services = data["cases_by_service"]
    assert row(services, service_code="missed-pickup", status="closed")["cases"] == 2
    assert row(services, service_code="missed-pickup", status="open")["cases"] == 1
    assert row(services, service_code="bulk-item", status="open")["cases"] == 1


async def test_the_export_holds_no_personal_data(client: TestClient) -> None:
    bodies = [json.dumps(await open_data(client))]
    for table in ("calls-by-day", "cases-by-service", "agencies-by-month"):
        resp = await client.get(f"/figures/{table}.csv")
        assert resp.status == 200 and resp.content_type == "text/csv"
        text = await resp.text()
        assert next(csv.reader(io.StringIO(text))), table  # a header row
        bodies.append(text)
    page = await client.get("/figures", headers={"Accept-Language": "es"})
    html = await page.text()
    assert page.status == 200 and "El 3-1-1 en cifras" in html
    bodies.append(html)
    for body in bodies:
        for secret in (SECRET_NAME, SECRET_PHONE, SECRET_MAIL, "blue house", "555"):
            assert secret not in body
    assert "Set-Cookie" not in (await client.get("/figures/data.json")).headers


async def test_unknown_table_is_a_clear_404(client: TestClient) -> None:
    resp = await client.get("/figures/citizens.csv")
    assert resp.status == 404
    assert "calls-by-day" in await resp.text()


async def test_scorecard_is_for_staff_and_shows_chase_calls(client: TestClient) -> None:
    resp = await client.get("/scorecard", allow_redirects=False)
    assert resp.status in (302, 401, 403)
    await login(client, "supervisor")
    html = await (await client.get("/scorecard")).text()
    assert "Department of Sanitation" in html and "Department of Public Works" in html
    san = html.split('data-agency="SAN"')[1].split("</table>")[0]
    june = san.split("2026-06")[1].split("</tr>")[0]
    assert "<td>3</td>" in june and "75.0" in june  # chase calls, per 100 requests


async def test_figures_are_cached_then_recomputed(client: TestClient) -> None:
    first = await client.app[FIGURES].figures()
    async with client.app[SESSIONS]() as db, db.begin():
        await add_case(db, service="pothole", created=NOW - timedelta(hours=2))
    assert await client.app[FIGURES].figures() is first  # within the cache time
    client.app[FIGURES].forget()
    again = await client.app[FIGURES].figures()
    june = again.cell("DPW", date(2026, 6, 1))
    assert june is not None and june.received == 1


async def test_agencies_are_named_not_personal(client: TestClient) -> None:
    async with client.app[SESSIONS]() as db:
        names = set((await db.execute(select(Agency.name))).scalars())
    data = await open_data(client)
    assert {r["agency_name"] for r in data["agencies_by_month"]} <= names
