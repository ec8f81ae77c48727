"""Issue 21, what the public sees of the work: /status in English and Spanish with the public
timeline in the center's zone and any spelling of the number; Open311's status, status_notes,
updated_datetime and agency_responsible following the lifecycle; servicerequestupdates."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.store import CaseStore, NewCase, normalize_case_number
from contactcenter.clock import FixedClock
from tests.conftest import app_settings

pytestmark = pytest.mark.store

T0 = datetime(2026, 1, 15, 14, 0, tzinfo=UTC)


@pytest.fixture
async def env(aiohttp_client: Any, migrated_url: str,
              seeded: async_sessionmaker[AsyncSession]) -> tuple[Any, FixedClock]:
    clock = FixedClock(T0)
    client = await aiohttp_client(create_app(
        app_settings(migrated_url, timezone="America/Puerto_Rico"), clock=clock))
    return client, clock


def store(client: Any) -> CaseStore:
    return client.server.app[CASE_STORE]


async def worked_case(client: Any, clock: FixedClock) -> str:
    """A pothole acknowledged, started, noted (public and internal), reassigned, closed."""
    s = store(client)
    case = await s.open_case(NewCase(service_code="pothole", address="1 Calle Sol",
                                     email="vecina@example.org", phone="787-555-0199"),
                             actor="operator")
    clock.advance(3600)
    await s.acknowledge(case.number, actor="agency")
    clock.advance(3600)
    await s.start(case.number, actor="agency")
    await s.add_note(case.number, "Crew scheduled; call 787-555-0199 if it grows.",
                     author="agency", public=True)
    await s.add_note(case.number, "internal: needs asphalt", author="agency")
    clock.advance(3600)
    await s.reassign(case.number, "SAN", actor="supervisor", reason="debris")
    clock.advance(3600)
    await s.close(case.number, actor="agency", reason="Debris removed.", code="resolved")
    return case.number


@pytest.mark.parametrize("spelling", ["311-2026-000001", "3112026000001", "2026000001",
                                      "311 2026 1", "2026-1", "#2026/000001"])
def test_any_reasonable_spelling_is_one_number(spelling: str) -> None:
    assert normalize_case_number(spelling) == "311-2026-000001"


@pytest.mark.parametrize("junk", ["", "12", "abc", "311-2026-0", "x" * 80, "2026"])
def test_junk_is_no_number(junk: str) -> None:
    assert normalize_case_number(junk) is None


async def test_status_page_in_english_and_spanish_with_the_public_timeline(env: Any) -> None:
    client, clock = env
    number = await worked_case(client, clock)
    html = await (await client.get(f"/status/{number}")).text()
    assert 'lang="en"' in html and "Closed" in html and "Debris removed." in html
    for text in ("We received your request.", "Department of Sanitation",
                 "has received your request.", "Work has started.", "Crew scheduled"):
        assert text in html, text
    # internal things and contact details never show
    for hidden in ("needs asphalt", "debris</", "787-555-0199", "vecina@example.org"):
        assert hidden not in html, hidden
    # times in CC_TIMEZONE (Puerto Rico, UTC-4): opened 14:00 UTC
    assert "2026-01-15 10:00 AST" in html
    es = await (await client.get(f"/status/{number}",
                                 headers={"Accept-Language": "es-PR,es;q=0.9,en;q=0.5"})).text()
    assert 'lang="es"' in es and "Cerrada" in es and "Recibimos su solicitud." in es
    assert "Comenzó el trabajo." in es and "Debris removed." in es
    switched = await (await client.get(f"/status/{number}?lang=en",
                                       headers={"Accept-Language": "es"})).text()
    assert "Closed" in switched


async def test_status_accepts_spellings_and_never_answers_a_bare_404(env: Any) -> None:
    client, clock = env
    number = await worked_case(client, clock)
    for path in (f"/status/{number.replace('-', '')}", "/status/311/2026/000001",
                 "/status/2026-1"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == f"/status/{number}", path
    resp = await client.get("/status/", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/status"
    resp = await client.get("/status", params={"number": " 2026 000001 ", "lang": "es"},
                            allow_redirects=False)
    assert resp.headers["Location"] == f"/status/{number}?lang=es"
    resp = await client.get("/status", params={"number": "hello"})
    assert resp.status == 400 and "does not look like a case number" in await resp.text()
    resp = await client.get("/status/2026-999999", headers={"Accept-Language": "es"},
                            allow_redirects=True)
    assert resp.status == 404 and "Caso no encontrado" in await resp.text()
    index = await (await client.get("/")).text()
    assert 'href="/status"' in index


async def test_open311_follows_the_lifecycle_and_lists_updates(env: Any) -> None:
    client, clock = env
    s = store(client)
    case = await s.open_case(NewCase(service_code="pothole"), actor="operator")
    (rec,) = await (await client.get(f"/open311/v2/requests/{case.number}.json")).json()
    assert (rec["status"], rec["agency_responsible"]) == ("open", "Department of Public Works")
    clock.advance(600)
    await s.add_note(case.number, "Crew on the way.", author="agency", public=True)
    (rec,) = await (await client.get(f"/open311/v2/requests/{case.number}.json")).json()
    assert rec["status_notes"] == "Crew on the way."
    assert rec["updated_datetime"] == "2026-01-15T14:10:00Z"
    clock.advance(600)
    await s.reassign(case.number, "SAN", actor="sup", reason="debris")
    clock.advance(600)
    await s.close(case.number, actor="agency", reason="Filled.", code="resolved")
    (rec,) = await (await client.get(f"/open311/v2/requests/{case.number}.json")).json()
    assert (rec["status"], rec["status_notes"], rec["agency_responsible"],
            rec["updated_datetime"]) == ("closed", "Filled.", "Department of Sanitation",
                                         "2026-01-15T14:30:00Z")
    clock.advance(600)
    await s.reopen(case.number, actor="agency", reason="Sinking again.")
    (rec,) = await (await client.get(f"/open311/v2/requests/{case.number}.json")).json()
    assert (rec["status"], rec["status_notes"]) == ("open", "Sinking again.")

    window = {"start_date": "2026-01-15T14:00:00Z", "end_date": "2026-01-15T15:00:00Z"}
    updates = await (await client.get("/open311/v2/servicerequestupdates.json",
                                      params=window)).json()
    assert [(u["service_request_id"], u["status"], u["description"], u["updated_datetime"])
            for u in updates] == [
        (case.number, "open", "Crew on the way.", "2026-01-15T14:10:00Z"),
        (case.number, "fixed", "Filled.", "2026-01-15T14:30:00Z"),
        (case.number, "open", "Sinking again.", "2026-01-15T14:40:00Z"),
    ]
    assert len({u["update_id"] for u in updates}) == 3
    raw = await (await client.get("/open311/v2/servicerequestupdates.xml",
                                  params=window)).read()
    root = ET.fromstring(raw)
    assert root.tag == "service_requests_updates"
    items = root.findall("request_update")
    assert [i.findtext("status") for i in items] == ["open", "fixed", "open"]
    assert {c.tag for c in items[0]} == {"update_id", "service_request_id", "status",
                                         "updated_datetime", "description", "media_url"}
    later = await (await client.get("/open311/v2/servicerequestupdates.json", params={
        "start_date": "2026-01-15T14:35:00Z", "end_date": "2026-01-15T15:00:00Z"})).json()
    assert [u["status"] for u in later] == ["open"]
    bad = await client.get("/open311/v2/servicerequestupdates.json",
                           params={"start_date": "yesterday"})
    assert bad.status == 400 and "start_date" in (await bad.json())[0]["description"]


async def test_updates_mask_the_citizens_contacts(env: Any) -> None:
    client, clock = env
    number = await worked_case(client, clock)
    updates = await (await client.get("/open311/v2/servicerequestupdates.json", params={
        "start_date": (T0 - timedelta(hours=1)).isoformat().replace("+00:00", "Z")})).json()
    notes = [u["description"] for u in updates if u["service_request_id"] == number]
    assert any("Crew scheduled" in n for n in notes)
    assert all("787-555-0199" not in n for n in notes)
