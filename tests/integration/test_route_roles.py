"""Issue 11, security: every route of the app against a table of who may use it.

The table is the specification, written by hand; the routes come from the router. A route
missing from the table (a new page, a new API) fails the test, and so does a route whose
behaviour for anonymous users, operators, supervisors or admins differs from the table.
Websockets also refuse a foreign `Origin`, whoever asks.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from contactcenter.app import create_app
from tests.conftest import app_settings, login, login_csrf

pytestmark = pytest.mark.store

PUBLIC = "public"
# Open311's POST requests: no session role is enough, only an API key (403 without one)
API_KEY_ONLY: frozenset[str] = frozenset()
ANY_USER = frozenset({"operator", "supervisor", "admin", "agency"})
STAFF = frozenset({"supervisor", "admin"})
OPERATOR = frozenset({"operator"})
ADMIN = frozenset({"admin"})
# issue 21: agency users work their agencies' cases (another agency's case is a 404, below)
CASE_WORKERS = frozenset({"agency", "supervisor", "admin"})
CALL_TAKERS = frozenset({"operator", "supervisor", "admin"})
ROLES = ("anonymous", "operator", "supervisor", "admin", "agency")

# (method, route) -> who may use it. HEAD goes with GET.
TABLE: dict[tuple[str, str], frozenset[str] | str] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("POST", "/logout"): ANY_USER,
    # Open311 and the citizens' status page are public by design (an API key is checked
    # inside for posting requests; contact details never appear in the output)
    ("GET", "/open311/v2/discovery{ext}"): PUBLIC,
    ("GET", "/open311/v2/services{ext}"): PUBLIC,
    ("GET", "/open311/v2/services/{tail}"): PUBLIC,
    ("GET", "/open311/v2/requests{ext}"): PUBLIC,
    ("POST", "/open311/v2/requests{ext}"): API_KEY_ONLY,
    ("GET", "/open311/v2/requests/{tail}"): PUBLIC,
    ("GET", "/open311/v2/tokens/{tail}"): PUBLIC,
    ("GET", "/open311/v2/servicerequestupdates{ext}"): PUBLIC,
    ("GET", "/open311/v2/service/{tail}"): PUBLIC,
    ("GET", "/open311/v2/media/{name}"): PUBLIC,
    ("*", "/open311/v2/{tail}"): PUBLIC,  # 404, 405 or OPTIONS as the spec's error list
    # the citizen web form: anyone, no account (a signed form token guards the POST)
    ("GET", "/report"): PUBLIC,
    ("POST", "/report"): PUBLIC,
    ("GET", "/report/sent/{token}"): PUBLIC,
    ("GET", "/status"): PUBLIC,
    ("GET", "/status/{number}"): PUBLIC,
    # the opt-out link of citizens' messages: its signed token is the authority
    ("GET", "/notify/optout/{token}"): PUBLIC,
    ("POST", "/notify/optout/{token}"): PUBLIC,
    # the city's published figures and their open data: no personal data, no account
    ("GET", "/figures"): PUBLIC,
    ("GET", "/figures/data.json"): PUBLIC,
    ("GET", "/figures/{table}.csv"): PUBLIC,
    ("GET", "/scorecard"): frozenset({"supervisor", "admin", "agency"}),
    ("GET", "/console"): OPERATOR,
    ("GET", "/console/ws"): OPERATOR,
    ("GET", "/wallboard"): STAFF,
    ("GET", "/wallboard/tv"): STAFF,
    ("GET", "/wallboard/ws"): STAFF,
    ("GET", "/wallboard/cases"): STAFF,
    ("POST", "/wallboard/agents/{action}"): STAFF,
    ("POST", "/wallboard/broadcast"): STAFF,
    ("GET", "/reports"): STAFF,
    ("GET", "/reports/agents"): STAFF,
    ("GET", "/reports/calls.csv"): STAFF,
    ("GET", "/reports/summary.csv"): STAFF,
    ("GET", "/reports/sla"): STAFF,
    ("GET", "/reports/sla/overdue"): STAFF,
    ("GET", "/reports/sla/overdue.csv"): STAFF,
    # caller numbers: personal data
    ("GET", "/reports/abandoned"): STAFF,
    ("GET", "/reports/abandoned.csv"): STAFF,
    ("GET", "/reports/ivr"): STAFF,
    ("GET", "/reports/ivr.csv"): STAFF,
    ("GET", "/api/queues"): STAFF,
    ("GET", "/metrics"): STAFF,
    ("GET", "/admin"): ADMIN,
    ("GET", "/agency"): CASE_WORKERS,
    ("GET", "/cases"): ANY_USER,
    ("GET", "/cases/similar"): CALL_TAKERS,
    ("GET", "/cases/{number}"): ANY_USER,
    ("GET", "/cases/{number}/ws"): ANY_USER,
    # the action decides further: operators only note and reopen (403 for the rest)
    ("POST", "/cases/{number}/{action}"): ANY_USER,
}
# every /admin/... route is the administrators' alone
ADMIN_PREFIX = "/admin/"

FILL = {"id": "1", "version": "1", "node": "start", "index": "0", "action": "pause",
        "number": "311-2026-000001", "ext": ".json", "tail": "x.json",
        "key_id": "1", "name": "x.jpg", "token": "x", "slot": "main", "lang": "en",
        "table": "calls-by-day"}


def expected(method: str, route: str) -> frozenset[str] | str:
    key = ("GET" if method == "HEAD" else method, route)
    if key in TABLE:
        return TABLE[key]
    if route.startswith(ADMIN_PREFIX):
        return ADMIN
    raise AssertionError(f"{method} {route} is not in the route-role table: add it")


def concrete(route: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: FILL[m.group(1)], route)


def app_routes(app: web.Application) -> list[tuple[str, str]]:
    return sorted({(r.method, r.resource.canonical) for r in app.router.routes()
                   if r.resource is not None and not isinstance(r.resource, web.StaticResource)},
                  key=lambda mr: (mr[1] == "/logout", mr))  # log-out last


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str, seeded: Any) -> Any:
    return await aiohttp_client(create_app(app_settings(migrated_url)))


async def test_every_route_is_in_the_table(client: Any) -> None:
    routes = app_routes(client.server.app)
    assert len(routes) > 60
    for method, route in routes:
        expected(method, route)  # raises for a route the table forgot
    stale = {k for k in TABLE} - {("GET" if m == "HEAD" else m, r) for m, r in routes}
    assert not stale, f"table rows for routes that no longer exist: {stale}"


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_gets_exactly_what_the_table_allows(client: Any, role: str) -> None:
    client.session.cookie_jar.clear()
    token = await login_csrf(client) if role == "anonymous" else await login(client, role)
    wrong: list[str] = []
    errors: list[str] = []
    for method, route in app_routes(client.server.app):
        if route.endswith("/ws"):
            continue  # below
        who = expected(method, route)
        allowed = who == PUBLIC or role in who
        headers = {"Accept": "text/html", "X-CSRF-Token": token}
        resp = await client.request("PUT" if method == "*" else method, concrete(route),
                                    headers=headers,
                                    data={"_csrf": token} if method == "POST" else None,
                                    allow_redirects=False)
        await resp.read()
        to_login = resp.status in (302, 303) and "/login" in resp.headers.get("Location", "") \
            and route != "/logout"
        refused = resp.status in (401, 403) or to_login
        if route in ("/login",) and method == "POST":
            refused = False  # a log-in with no password is answered 401 by design
        if allowed == refused:
            wrong.append(f"{method} {route}: {resp.status} for {role} (table: {who})")
        if resp.status >= 500:
            errors.append(f"{method} {route}: {resp.status} for {role}")
        if who is API_KEY_ONLY:
            assert resp.status == 403, f"{method} {route}: {role} got {resp.status}"
        elif not allowed and role == "anonymous":
            assert resp.status in (302, 401), f"{method} {route}: anonymous got {resp.status}"
        elif not allowed:
            assert resp.status == 403, f"{method} {route}: {role} got {resp.status}"
    assert wrong == []
    assert errors == []


@pytest.mark.parametrize("path,role", [("/console/ws", "operator"),
                                       ("/wallboard/ws", "supervisor")])
async def test_websockets_refuse_anonymous_other_roles_and_foreign_origin(
    client: Any, path: str, role: str
) -> None:
    origin = str(client.make_url("/")).rstrip("/")
    client.session.cookie_jar.clear()
    with pytest.raises(aiohttp.WSServerHandshakeError) as anon:
        await client.ws_connect(path, headers={"Origin": origin})
    assert anon.value.status in (401, 403)
    for other in set(ROLES[1:]) - {role} - (STAFF if role == "supervisor" else set()):
        client.session.cookie_jar.clear()
        await login(client, other)
        with pytest.raises(aiohttp.WSServerHandshakeError) as denied:
            await client.ws_connect(path, headers={"Origin": origin})
        assert denied.value.status == 403, other
    client.session.cookie_jar.clear()
    await login(client, role)
    with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
        await client.ws_connect(path, headers={"Origin": "https://evil.example"})
    assert foreign.value.status == 403
    ws = await client.ws_connect(path, headers={"Origin": origin})
    await ws.close()


async def test_an_agency_user_cannot_read_or_act_on_another_agencys_case(client: Any) -> None:
    """Issue 21: the demo `agency` user works DPW's cases; SAN's exist for them nowhere (404:
    not even whether the number is in use), over every case route, the websocket included."""
    from contactcenter.cases.keys import CASE_STORE
    from contactcenter.cases.store import NewCase

    store = client.server.app[CASE_STORE]
    theirs = await store.open_case(NewCase(service_code="missed-pickup"), actor="t")  # SAN
    mine = await store.open_case(NewCase(service_code="pothole"), actor="t")  # DPW
    token = await login(client, "agency")
    origin = str(client.make_url("/")).rstrip("/")
    for method, route in app_routes(client.server.app):
        if not route.startswith("/cases/{number}"):
            continue
        for case, allowed in ((theirs, False), (mine, True)):
            path = route.replace("{number}", case.number).replace("{action}", "note")
            if route.endswith("/ws"):
                if allowed:
                    ws = await client.ws_connect(path, headers={"Origin": origin})
                    await ws.close()
                else:
                    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                        await client.ws_connect(path, headers={"Origin": origin})
                    assert refused.value.status == 404
                continue
            resp = await client.request(method, path, headers={"Accept": "text/html"},
                                        data={"_csrf": token, "body": "hello"}
                                        if method == "POST" else None,
                                        allow_redirects=False)
            await resp.read()
            assert resp.status == ((303 if method == "POST" else 200) if allowed else 404), (
                method, path, resp.status)
    assert [n.body for n in (await store.by_number(theirs.number)).notes] == []
    assert [n.body for n in (await store.by_number(mine.number)).notes] == ["hello"]


async def test_the_case_page_socket_refuses_anonymous_and_foreign_origins(client: Any) -> None:
    from contactcenter.cases.keys import CASE_STORE
    from contactcenter.cases.store import NewCase

    case = await client.server.app[CASE_STORE].open_case(NewCase(service_code="pothole"),
                                                         actor="t")
    path = f"/cases/{case.number}/ws"
    origin = str(client.make_url("/")).rstrip("/")
    client.session.cookie_jar.clear()
    with pytest.raises(aiohttp.WSServerHandshakeError) as anon:
        await client.ws_connect(path, headers={"Origin": origin})
    assert anon.value.status in (401, 403)
    for role in ("operator", "supervisor", "admin", "agency"):  # agency: DPW owns potholes
        client.session.cookie_jar.clear()
        await login(client, role)
        with pytest.raises(aiohttp.WSServerHandshakeError) as foreign:
            await client.ws_connect(path, headers={"Origin": "https://evil.example"})
        assert foreign.value.status == 403
        ws = await client.ws_connect(path, headers={"Origin": origin})
        await ws.close()
