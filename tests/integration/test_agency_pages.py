"""Issue 21 over HTTP: agency users work only their agencies' cases (queue, case page,
actions), operators search, note and reopen, staff see all; the case page's websocket hears
every change; admins link users to agencies."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.store import CaseStore, CaseView, NewCase
from contactcenter.clock import FixedClock
from contactcenter.web.models import User
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store

T0 = datetime(2026, 5, 4, 13, 0, tzinfo=UTC)
HTML = {"Accept": "text/html"}


@pytest.fixture
async def env(aiohttp_client: Any, migrated_url: str,
              seeded: async_sessionmaker[AsyncSession]) -> tuple[Any, FixedClock]:
    clock = FixedClock(T0)
    client = await aiohttp_client(create_app(
        app_settings(migrated_url, timezone="America/New_York", reopen_days="7"), clock=clock))
    return client, clock


def store(client: Any) -> CaseStore:
    return client.server.app[CASE_STORE]


async def open_case(client: Any, service: str, address: str = "12 Main St",
                    description: str = "a problem", phone: str | None = None) -> CaseView:
    return await store(client).open_case(
        NewCase(service_code=service, address=address, description=description, phone=phone),
        actor="operator")


async def post(client: Any, token: str, url: str, **fields: str) -> Any:
    return await client.post(url, data={"_csrf": token, **fields}, headers=HTML,
                             allow_redirects=False)


async def test_agency_user_sees_and_works_only_their_agencys_cases(env: Any) -> None:
    client, clock = env
    pothole = await open_case(client, "pothole", "5th and Main")  # DPW
    pickup = await open_case(client, "missed-pickup", "7 Elm St")  # SAN
    token = await login(client, "agency")  # the demo agency user: DPW
    page = await (await client.get("/agency", headers=HTML)).text()
    assert pothole.number in page and pickup.number not in page
    # another agency's case does not exist for them: page, actions, websocket
    assert (await client.get(f"/cases/{pickup.number}", headers=HTML)).status == 404
    for action in ("acknowledge", "note", "close"):
        resp = await post(client, token, f"/cases/{pickup.number}/{action}", body="x")
        assert resp.status == 404, action
    assert (await store(client).by_number(pickup.number)).status == "open"  # type: ignore
    # nor in the search: by number, or by words of its address
    for q in (pickup.number, "Elm"):
        found = await (await client.get("/cases", params={"q": q}, headers=HTML)).text()
        assert f'href="/cases/{pickup.number}"' not in found and "No case found" in found, q
    # their own: acknowledge, a public note, close with a code and a public note
    clock.advance(600)
    resp = await post(client, token, f"/cases/{pothole.number}/acknowledge")
    assert resp.status == 303
    resp = await post(client, token, f"/cases/{pothole.number}/note",
                      body="Crew scheduled for Tuesday.", public="1")
    assert resp.status == 303
    resp = await post(client, token, f"/cases/{pothole.number}/close", code="", note="x")
    assert resp.status == 400 and "choose a resolution code" in await resp.text()
    resp = await post(client, token, f"/cases/{pothole.number}/close", code="resolved",
                      note="Pothole filled.")
    assert resp.status == 303
    view = await store(client).by_number(pothole.number)
    assert view is not None and (view.status, view.close_reason) == ("closed", "Pothole filled.")
    page = await (await client.get(f"/cases/{pothole.number}", headers=HTML)).text()
    for text in ("acknowledged", "Crew scheduled for Tuesday.", "Pothole filled.", "public",
                 "came in by phone"):
        assert text in page, text
    # times in CC_TIMEZONE (New York: UTC-4 in May)
    assert "2026-05-04 09:10" in page
    # a spelling of the number without dashes lands on the page
    resp = await client.get(f"/cases/{pothole.number.replace('-', '')}", headers=HTML,
                            allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == f"/cases/{pothole.number}"


async def test_operator_notes_and_reopens_within_the_window_but_cannot_work_cases(
    env: Any,
) -> None:
    client, clock = env
    case = await open_case(client, "pothole")
    token = await login(client, "operator")
    resp = await post(client, token, f"/cases/{case.number}/acknowledge")
    assert resp.status == 403
    resp = await post(client, token, f"/cases/{case.number}/note", body="caller asked again")
    assert resp.status == 303
    await store(client).close(case.number, actor="agency", reason="Filled.", code="resolved")
    clock.advance(8 * 86400)
    client.session.cookie_jar.clear()
    token = await login(client, "operator")  # sessions last 12 h
    resp = await post(client, token, f"/cases/{case.number}/reopen", reason="still there")
    assert resp.status == 400 and "more than 7 days ago" in await resp.text()
    clock.advance(-2 * 86400)
    client.session.cookie_jar.clear()
    token = await login(client, "operator")
    resp = await post(client, token, f"/cases/{case.number}/reopen", reason="Still there.")
    assert resp.status == 303
    assert (await store(client).by_number(case.number)).status == "open"  # type: ignore


async def test_work_queue_sorts_by_due_filters_counts_and_pages(env: Any) -> None:
    client, clock = env
    made = []
    for i in range(55):
        clock.set(T0 + timedelta(minutes=i))
        made.append(await open_case(client, "pothole" if i % 2 else "streetlight-out",
                                    f"{i} Oak Ave"))
    await store(client).acknowledge(made[3].number, actor="x")
    await store(client).assign(made[5].number, "agency", actor="x")
    await open_case(client, "missed-pickup")  # SAN: never in DPW's queue
    await login(client, "agency")
    page = await (await client.get("/agency", headers=HTML)).text()
    numbers = re.findall(r'<a href="/cases/(311-[\d-]+)">', page)
    assert len(numbers) == 50
    # potholes are due in 72 h, street lights in 96 h: every pothole first, then by time
    expected = sorted(made, key=lambda v: (v.sla_due_at, v.id))
    assert numbers == [v.number for v in expected[:50]]
    assert "open: <strong>54</strong>" in page and "acknowledged: <strong>1</strong>" in page
    nxt = re.search(r'href="(/agency\?[^"]*after=[^"]+)"', page)
    assert nxt is not None
    page2 = await (await client.get(nxt.group(1).replace("&amp;", "&"), headers=HTML)).text()
    assert re.findall(r'<a href="/cases/(311-[\d-]+)">', page2) == [
        v.number for v in expected[50:]]
    only = await (await client.get("/agency?service=streetlight-out&address=oak",
                                   headers=HTML)).text()
    assert len(re.findall(r'<a href="/cases/(311-[\d-]+)">', only)) == 28
    mine = await (await client.get("/agency?assignee=agency", headers=HTML)).text()
    assert re.findall(r'<a href="/cases/(311-[\d-]+)">', mine) == [made[5].number]
    acked = await (await client.get("/agency?status=acknowledged", headers=HTML)).text()
    assert re.findall(r'<a href="/cases/(311-[\d-]+)">', acked) == [made[3].number]
    bad = await client.get("/agency?from=yesterday", headers=HTML)
    assert bad.status == 400 and "is not a date" in await bad.text()
    broken = await client.get("/agency?after=garbage", headers=HTML)
    assert broken.status == 400 and "page link is broken" in await broken.text()
    # overdue cases are marked
    clock.set(T0 + timedelta(hours=80))
    client.session.cookie_jar.clear()
    await login(client, "agency")
    late = await (await client.get("/agency", headers=HTML)).text()
    assert "overdue" in late


async def test_search_by_number_phone_and_words_and_the_duplicate_suggestion(
    env: Any,
) -> None:
    client, clock = env
    a = await open_case(client, "pothole", "12 Main St.", "deep hole near the school",
                        phone="787-555-0101")
    b = await open_case(client, "missed-pickup", "3 Oak Ave", "recycling missed")
    await login(client, "operator")
    for spelling in (a.number, a.number.replace("-", ""), a.number[4:].replace("-", " ")):
        resp = await client.get("/cases", params={"q": spelling}, headers=HTML,
                                allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == f"/cases/{a.number}"
    for phone in ("(787) 555-0101", "7875550101", "+1 787 555 0101"):
        found = await (await client.get("/cases", params={"q": phone}, headers=HTML)).text()
        assert a.number in found and b.number not in found, phone
    # a phone number shaped like a case number (311-2025-551234) that is no case: a phone
    c = await open_case(client, "pothole", "9 Pine Rd", phone="202-555-1234")
    found = await (await client.get("/cases", params={"q": "2025551234"}, headers=HTML)).text()
    assert f'href="/cases/{c.number}"' in found
    found = await (await client.get("/cases", params={"q": "school deep"}, headers=HTML)).text()
    assert a.number in found and b.number not in found
    found = await (await client.get("/cases", params={"q": "oak"}, headers=HTML)).text()
    assert b.number in found and a.number not in found
    similar = await (await client.get("/cases/similar", params={
        "service": "pothole", "address": "12 main st"})).json()
    assert [c["number"] for c in similar["cases"]] == [a.number]
    other = await (await client.get("/cases/similar", params={
        "service": "missed-pickup", "address": "12 main st"})).json()
    assert other["cases"] == []
    clock.advance(31 * 86400)
    client.session.cookie_jar.clear()
    await login(client, "operator")
    old = await (await client.get("/cases/similar", params={
        "service": "pothole", "address": "12 Main St"})).json()
    assert old["cases"] == []


async def test_the_case_page_hears_changes_live(env: Any) -> None:
    client, _ = env
    case = await open_case(client, "pothole")
    await login(client, "supervisor")
    origin = str(client.make_url("/")).rstrip("/")
    ws = await client.ws_connect(f"/cases/{case.number}/ws", headers={"Origin": origin})
    await store(client).acknowledge(case.number, actor="agency")
    msg = await ws.receive_json(timeout=10)
    assert (msg["type"], msg["number"], msg["change"], msg["actor"]) == (
        "changed", case.number, "acknowledged", "agency")
    # signing out (in this or any web process) closes the page's socket: 4401, to the log-in
    token = re.search(r'name="_csrf" value="([^"]+)"', await (await client.get(
        f"/cases/{case.number}", headers=HTML)).text())
    assert token is not None
    await post(client, token.group(1), "/logout")
    closed = await ws.receive(timeout=10)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 4401


async def test_admin_links_an_agency_user_to_agencies(
    env: Any, seeded: async_sessionmaker[AsyncSession],
) -> None:
    client, _ = env
    token = await login(client, "admin")
    form = {"username": "crew7", "display_name": "Crew Seven", "role": "agency",
            "password": "long-password-1", "password2": "long-password-1", "active": "on"}
    resp = await post(client, token, "/admin/users/new", **form)
    assert resp.status == 400 and "an agency user needs at least one" in await resp.text()
    data = [*form.items(), ("agencies", "SAN"), ("agencies", "DPW"), ("_csrf", token)]
    resp = await client.post("/admin/users/new", data=data, headers=HTML,
                             allow_redirects=False)
    assert resp.status == 302
    async with seeded() as s:
        user = (await s.execute(select(User).where(User.username == "crew7"))).scalar_one()
    assert user.role == "agency" and user.agencies == ["DPW", "SAN"]
    san = await open_case(client, "missed-pickup")
    dpw = await open_case(client, "pothole")
    client.session.cookie_jar.clear()
    await login(client, "crew7", "long-password-1")
    page = await (await client.get("/agency", headers=HTML)).text()
    assert san.number in page and dpw.number in page


async def test_admins_manage_resolution_codes(env: Any) -> None:
    client, _ = env
    token = await login(client, "admin")
    page = await (await client.get("/admin/resolutions", headers=HTML)).text()
    assert "resolved" in page and "Duplicate of another request" in page
    resp = await post(client, token, "/admin/resolutions", code="Bad Code!", label="x")
    assert resp.status == 400 and "Code:" in await resp.text()
    resp = await post(client, token, "/admin/resolutions", code="tree-removed",
                      label="Tree removed")
    assert resp.status == 302
    case = await open_case(client, "pothole")
    await store(client).close(case.number, actor="x", reason="Done.", code="tree-removed")
    ident = re.search(r'action="/admin/resolutions/(\d+)/toggle"[^<]*<input[^>]*>'
                      r'<button[^>]*>Retire', (await (await client.get(
                          "/admin/resolutions", headers=HTML)).text()).split("tree-removed")[1])
    assert ident is not None
    resp = await post(client, token, f"/admin/resolutions/{ident.group(1)}/toggle")
    assert resp.status == 302
    other = await open_case(client, "pothole")
    resp = await post(client, token, f"/cases/{other.number}/close", code="tree-removed",
                      note="Done.")
    assert resp.status == 400 and "unknown resolution code" in await resp.text()


async def test_user_add_makes_agency_users_only_for_known_agencies(
    migrated_url: str, seeded: async_sessionmaker[AsyncSession],
) -> None:
    import asyncio
    import os
    import subprocess
    import sys

    env = {**os.environ, "CC_DATABASE_URL": migrated_url}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "contactcenter.cli", "user", "add", *args,
                               "--password-stdin"], input="long-password-2\n", env=env,
                              capture_output=True, text=True, timeout=60)

    missing = await asyncio.to_thread(run, "dana", "--role", "agency")
    assert missing.returncode == 2 and "needs --agencies" in missing.stderr
    unknown = await asyncio.to_thread(run, "dana", "--role", "agency", "--agencies", "DPW,NOPE")
    assert unknown.returncode == 1 and "unknown agencies: NOPE" in unknown.stderr
    ok = await asyncio.to_thread(run, "dana", "--role", "agency", "--agencies", "DPW,SAN")
    assert ok.returncode == 0, ok.stderr
    async with seeded() as s:
        user = (await s.execute(select(User).where(User.username == "dana"))).scalar_one()
    assert (user.role, user.agencies) == ("agency", ["DPW", "SAN"])


async def test_an_agency_user_who_reassigns_a_case_away_lands_on_their_queue(env: Any) -> None:
    client, _ = env
    case = await open_case(client, "pothole")
    token = await login(client, "agency")  # DPW
    resp = await post(client, token, f"/cases/{case.number}/reassign", agency="SAN", reason="")
    assert resp.status == 400 and "needs a reason" in await resp.text()
    resp = await post(client, token, f"/cases/{case.number}/reassign", agency="SAN",
                      reason="garbage, not a pothole")
    assert resp.status == 303 and resp.headers["Location"] == f"/agency?moved={case.number}"
    page = await (await client.get(resp.headers["Location"], headers=HTML)).text()
    assert f"Case {case.number} was reassigned" in page
    assert (await client.get(f"/cases/{case.number}", headers=HTML)).status == 404
    view = await store(client).by_number(case.number)
    assert view is not None and view.agency_code == "SAN"


@pytest.mark.parametrize("action,fields", [
    ("assign", {"assignee": "x" * 5000}),
    ("assign", {"assignee": "operator"}),
    ("reassign", {"agency": "NOPE", "reason": "because"}),
    ("reassign", {"agency": "SAN", "reason": "r" * 201}),
    ("note", {"body": "   "}),
    ("note", {"body": "n" * 4001}),
    ("note", {"body": "\x00"}),
    ("close", {"code": "\x00<script>", "note": "done"}),
    ("close", {"code": "resolved", "note": ""}),
    ("reopen", {"reason": "x"}),
])
async def test_bad_action_input_is_a_clear_400_and_changes_nothing(
    env: Any, action: str, fields: dict[str, str],
) -> None:
    client, _ = env
    case = await open_case(client, "pothole")
    token = await login(client, "supervisor")
    resp = await post(client, token, f"/cases/{case.number}/{action}", **fields)
    page = await resp.text()
    assert resp.status == 400, page[:300]
    error = re.search(r'<p class="error" role="alert">([^<]+)</p>', page)
    assert error is not None and "\n" not in error.group(1)
    after = await store(client).by_number(case.number)
    assert after is not None
    assert (after.status, after.agency_code, after.assignee, after.notes) == (
        "open", "DPW", None, ())


async def test_nul_characters_in_queries_are_no_500(env: Any) -> None:
    client, _ = env
    await open_case(client, "pothole")
    await login(client, "supervisor")
    for path, params in (("/agency", {"service": "\x00", "address": "a\x00b",
                                       "assignee": "\x00", "after": "\x00"}),
                         ("/cases", {"q": "hole\x00"}),
                         ("/cases/similar", {"service": "pothole", "address": "\x00x"})):
        resp = await client.get(path, params=params, headers=HTML)
        assert resp.status < 500, (path, resp.status)
