"""The console over a real websocket: authorization, pops with history, working a call."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from contactcenter.agents.keys import CONSOLE, SIM_PHONES
from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Call, Case, CaseNote, Citizen
from contactcenter.cases.store import NewCase
from contactcenter.clock import SYSTEM
from contactcenter.events import (
    AgentCallCompleted,
    AgentStateChanged,
    BroadcastMessage,
    CallAnswered,
    CallEnded,
    CallRecord,
)
from contactcenter.keys import BUS, PBX, SESSIONS
from contactcenter.security import hash_password
from contactcenter.web.auth import SIGNED_OUT
from contactcenter.web.models import User
from tests.conftest import app_settings, login, until
from tests.console_helpers import FakePbx, FakePhones, ringing

pytestmark = pytest.mark.store
NUMBER = "7875550101"


@pytest.fixture
async def app(migrated_url: str, seeded: Any) -> Any:
    app = create_app(app_settings(migrated_url))
    app[PBX] = FakePbx()
    async with seeded() as db, db.begin():
        db.add(User(username="ben", display_name="Ben Operator", role="operator",
                    password_hash=hash_password("ben"), interface="PJSIP/1002",
                    queues=["potholes"]))
    return app


@pytest.fixture
async def client(aiohttp_client: Any, app: Any) -> Any:
    return await aiohttp_client(app)


def origin(client: Any) -> str:
    return f"http://{client.host}:{client.port}"


async def open_ws(client: Any, **kw: Any) -> aiohttp.ClientWebSocketResponse:
    headers = kw.pop("headers", {"Origin": origin(client)})
    return await client.ws_connect("/console/ws", headers=headers, **kw)


SEEN: dict[int, list[dict[str, Any]]] = {}  # every frame read, per socket


async def receive_until(ws: aiohttp.ClientWebSocketResponse, pred: Any,
                        timeout: float = 5.0) -> dict[str, Any]:
    """Read frames until one satisfies `pred`; fail after `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            SEEN.setdefault(id(ws), []).append(data)
            if pred(data):
                return data


async def seen_or_next(ws: aiohttp.ClientWebSocketResponse, pred: Any,
                       timeout: float = 5.0, after: int = 0) -> dict[str, Any]:
    """Like receive_until, but a frame already read (while waiting for a command's result)
    counts too (from index `after` of what was read)."""
    for data in SEEN.get(id(ws), [])[after:]:
        if pred(data):
            return data
    return await receive_until(ws, pred, timeout)


async def command(ws: aiohttp.ClientWebSocketResponse, ref: str, **msg: Any) -> dict[str, Any]:
    await ws.send_str(json.dumps({"ref": ref, **msg}))
    return await receive_until(ws, lambda m: m.get("ref") == ref and m["type"] != "call")


async def second_client(aiohttp_client: Any, client: Any, user: str) -> Any:
    other = await aiohttp_client(client.server)
    await login(other, user)
    return other


# --- who may connect ---------------------------------------------------------------------------


async def test_console_page_is_for_operators(client: Any) -> None:
    resp = await client.get("/console", allow_redirects=False, headers={"Accept": "text/html"})
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    await login(client, "supervisor")
    resp = await client.get("/console", headers={"Accept": "text/html"})
    assert resp.status == 403
    client.session.cookie_jar.clear()
    await login(client, "operator")
    resp = await client.get("/console", headers={"Accept": "text/html"})
    page = await resp.text()
    assert resp.status == 200
    assert '<script src="/static/console.js"' in page and "<script>" not in page
    assert "style=" not in page and "onclick" not in page
    assert "Pothole" in page  # the service types are on the form
    assert "'unsafe-inline'" not in resp.headers["Content-Security-Policy"]


async def test_websocket_refuses_anonymous_foreign_origin_and_other_roles(client: Any) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_ws(client)
    assert info.value.status in (302, 401)
    await login(client, "operator")
    for headers in ({"Origin": "http://evil.example"}, {}, {"Origin": "null"}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await open_ws(client, headers=headers)
        assert info.value.status == 403
    client.session.cookie_jar.clear()
    await login(client, "supervisor")
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await open_ws(client)
    assert info.value.status == 403
    client.session.cookie_jar.clear()
    await login(client, "operator")
    ws = await open_ws(client)
    hello = await receive_until(ws, lambda m: m["type"] == "hello")
    assert hello["user"]["interface"] == "PJSIP/1001"
    await ws.close()


# --- the call, end to end through the bus ---------------------------------------------------------


async def seed_history(app: Any) -> str:
    """A previous answered call from NUMBER and an open case of that citizen."""
    now = SYSTEM.now()
    async with app[SESSIONS]() as db, db.begin():
        db.add(Call(server="default", linkedid="1699.1", caller_number=NUMBER,
                    caller_name="Maria Lopez", started_at=now - timedelta(days=2),
                    ended_at=now - timedelta(days=2, seconds=-90), outcome="answered",
                    queue="sanitation", disposition="information"))
    case = await app[CASE_STORE].open_case(
        NewCase("missed-pickup", description="bins skipped", address="12 Elm St", phone=NUMBER),
        actor="operator")
    return case.number


async def test_pop_history_case_note_disposition_and_the_next_pop(client: Any, app: Any) -> None:
    old_case = await seed_history(app)
    await login(client, "operator")
    ws = await open_ws(client)
    bus, hub = app[BUS], app[CONSOLE]
    await receive_until(ws, lambda m: m["type"] == "state")
    at = SYSTEM.now()
    await bus.publish(AgentStateChanged("default", "potholes", "PJSIP/1001", "Ana Operator",
                                        "not_in_use", False, None, at))
    await receive_until(ws, lambda m: m["type"] == "state" and m["state"] == "available")

    await bus.publish(ringing("PJSIP/1001", "1700.5", number=NUMBER, at=at,
                              service="pothole", language="es", ivr_path=("lang:es", "menu:2")))
    pop = await receive_until(ws, lambda m: m["type"] == "call" and m["history"])
    assert pop["status"] == "ringing" and pop["caller_number"] == NUMBER
    assert pop["ivr_path"] == ["lang:es", "menu:2"]
    h = pop["history"]
    assert [c["number"] for c in h["cases"]] == [old_case]
    assert h["cases"][0]["status"] == "open" and h["cases"][0]["sla_due_at"]
    assert h["cases"][0]["sla"] == "ok"  # the store's one definition (cases/sla.py)
    assert [(c["outcome"], c["disposition"]) for c in h["calls"]] == [("answered", "information")]
    assert h["repeat"] is False and h["recent_calls"] == 2

    r = await command(ws, "a", type="create_case", call_id="default:1700.5", service="pothole",
                      description="deep hole", address="5 Main St")
    assert r["ok"] is False and "Answer the call" in r["error"]
    await bus.publish(CallAnswered("default", "1700.5", "potholes", "PJSIP/1001", "Ana", 4.0,
                                   2.0, at + timedelta(seconds=4)))
    await receive_until(ws, lambda m: m["type"] == "call" and m["status"] == "connected")
    r = await command(ws, "b", type="create_case", call_id="default:1700.5", service="pothole",
                      description="deep hole <script>", address="5 Main St")
    assert r["ok"] is True, r
    new_case = r["message"].split()[1]
    opened = await app[CASE_STORE].by_number(new_case)
    assert opened is not None and opened.language == "es"  # the call's LANG: replies in Spanish
    r = await command(ws, "c", type="add_note", call_id="default:1700.5", case=old_case,
                      body="caller says still not collected")
    assert r["ok"] is True, r
    r = await command(ws, "d", type="add_note", case="311-1999-999999", body="x")
    assert r["ok"] is False and "No case" in r["error"]

    await bus.publish(AgentCallCompleted("default", "1700.5", "potholes", "PJSIP/1001", 30.0,
                                         at + timedelta(seconds=34)))
    await receive_until(ws, lambda m: m["type"] == "state" and m["state"] == "wrapup")
    assert ("pause", "PJSIP/1001", True, None, "wrap-up") in app[PBX].actions
    r = await command(ws, "e", type="disposition", call_id="default:1700.5",
                      disposition="case-created")
    assert r["ok"] is True
    assert "default:1700.5" in hub.work.pending  # no record yet: kept

    # the bridge says it ended; the case writer records it; the console's data follows
    record = CallRecord("default", "1700.5", NUMBER, "Maria Lopez", at,
                        at + timedelta(seconds=34), "answered", queue="potholes",
                        talk_seconds=30.0)
    await bus.publish(CallEnded(record))

    async def applied() -> bool:
        await hub.tick()
        return not hub.work.pending

    await until(applied, timeout=10)
    async with app[SESSIONS]() as db:
        call = (await db.execute(select(Call).where(Call.linkedid == "1700.5"))).scalar_one()
        case = (await db.execute(select(Case).where(Case.number == new_case))).scalar_one()
        citizen = await db.get(Citizen, case.citizen_id)
        notes = (await db.execute(select(CaseNote.body))).scalars().all()
    assert call.disposition == "case-created" and call.case_id == case.id
    assert citizen is not None and citizen.phone == NUMBER
    assert case.description == "deep hole <script>" and case.address == "5 Main St"
    assert "caller says still not collected" in notes

    r = await command(ws, "f", type="ready")
    assert r["ok"] is True
    assert app[PBX].actions[-1] == ("pause", "PJSIP/1001", False, None, "")
    assert {"type": "call.clear", "call_id": "default:1700.5", "reason": "done"} in SEEN[id(ws)]

    # the next call from that number: the new case and the last call are in the pop at once
    await bus.publish(ringing("PJSIP/1001", "1701.1", number=NUMBER, at=SYSTEM.now()))
    pop = await receive_until(ws, lambda m: m["type"] == "call" and m["history"])
    numbers = [c["number"] for c in pop["history"]["cases"]]
    assert set(numbers) == {old_case, new_case}
    assert pop["history"]["calls"][0]["disposition"] == "case-created"
    assert pop["history"]["calls"][0]["case_number"] == new_case
    assert pop["history"]["repeat"] is True  # 2 earlier calls this week + this one
    await ws.close()


async def test_ringall_pops_both_and_queries_history_once(aiohttp_client: Any, client: Any,
                                                          app: Any) -> None:
    await seed_history(app)
    await login(client, "operator")
    ben_client = await second_client(aiohttp_client, client, "ben")
    ana = await open_ws(client)
    ben = await open_ws(ben_client, headers={"Origin": origin(ben_client)})
    for ws in (ana, ben):
        await receive_until(ws, lambda m: m["type"] == "state")
    hub = app[CONSOLE]
    before = hub.history.queries
    await app[BUS].publish(ringing("PJSIP/1001", "1800.1", number=NUMBER))
    await app[BUS].publish(ringing("PJSIP/1002", "1800.1", number=NUMBER))
    for ws in (ana, ben):
        pop = await receive_until(ws, lambda m: m["type"] == "call" and m["history"])
        assert pop["call_id"] == "default:1800.1"
    assert hub.history.queries == before + 1
    await app[BUS].publish(CallAnswered("default", "1800.1", "potholes", "PJSIP/1002", "Ben",
                                        3.0, 1.0, SYSTEM.now()))
    clear = await receive_until(ana, lambda m: m["type"] == "call.clear")
    assert clear["reason"] == "answered elsewhere"
    await receive_until(ben, lambda m: m["type"] == "call" and m["status"] == "connected")
    # an operator cannot act on a call that rang someone else
    r = await command(ana, "x", type="create_case", call_id="default:1800.1",
                      service="pothole", description="mine?")
    assert r["ok"] is False and "not on your console" in r["error"]
    await ana.close()
    await ben.close()


async def test_reconnect_gets_the_pop_in_progress_and_broadcasts(client: Any, app: Any) -> None:
    await login(client, "operator")
    ws = await open_ws(client)
    await receive_until(ws, lambda m: m["type"] == "state")
    await app[BUS].publish(BroadcastMessage("Sam", "Storm: expect volume", SYSTEM.now()))
    await app[BUS].publish(ringing("PJSIP/1001", "1900.1", name='<img src=x>"\n' + "A" * 10_000))
    pop = await receive_until(ws, lambda m: m["type"] == "call")
    assert pop["caller_name"].startswith('<img src=x>" A') and len(pop["caller_name"]) == 80
    await ws.close()
    ws = await open_ws(client)
    seen = [await receive_until(ws, lambda m: m["type"] in ("broadcast", "call"))
            for _ in range(2)]
    assert {m["type"] for m in seen} == {"broadcast", "call"}
    await ws.close()


async def test_pbx_error_is_a_clear_message_and_the_socket_lives_on(client: Any,
                                                                      app: Any) -> None:
    await login(client, "operator")
    ws = await open_ws(client)
    app[PBX].fail = "Timed out waiting for QueueAdd"
    r = await command(ws, "1", type="login")
    assert r["ok"] is False
    assert r["error"].startswith("The phone system refused to log you in")
    assert "Timed out" in r["error"]
    app[PBX].fail = None
    r = await command(ws, "2", type="login")
    assert r["ok"] is True
    assert [a[:3] for a in app[PBX].actions] == [
        ("add", "sanitation", "PJSIP/1001"), ("add", "potholes", "PJSIP/1001"),
        ("add", "general-311", "PJSIP/1001")]
    await ws.close()


async def test_demo_phone_buttons_reach_the_simulator(aiohttp_client: Any, migrated_url: str,
                                                      seeded: Any) -> None:
    app = create_app(app_settings(migrated_url))
    phones = FakePhones()
    app[SIM_PHONES] = phones
    client = await aiohttp_client(app)
    await login(client, "operator")
    ws = await open_ws(client)
    hello = await receive_until(ws, lambda m: m["type"] == "hello")
    assert hello["phone_controls"] is True
    assert (await command(ws, "1", type="answer"))["ok"] is True
    assert (await command(ws, "2", type="hangup"))["ok"] is True
    assert phones.actions == [("answer", "PJSIP/1001"), ("hangup", "PJSIP/1001")]
    await ws.close()


async def test_shutdown_closes_consoles_with_going_away(client: Any, app: Any) -> None:
    await login(client, "operator")
    ws = await open_ws(client)
    await receive_until(ws, lambda m: m["type"] == "state")
    await app[CONSOLE].shutdown()
    async with asyncio.timeout(5):
        while True:
            msg = await ws.receive()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
                break
    assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY


async def test_signing_out_closes_that_users_consoles_and_no_one_elses(
        aiohttp_client: Any, client: Any, app: Any) -> None:
    """A shared desk PC: signing out in one tab closes the console open in another tab (which
    then cannot reconnect), not another operator's."""
    token = await login(client, "operator")
    ben_client = await second_client(aiohttp_client, client, "ben")
    tab = await open_ws(client)
    ben = await open_ws(ben_client, headers={"Origin": origin(ben_client)})
    for ws in (tab, ben):
        await receive_until(ws, lambda m: m["type"] == "state")
    resp = await client.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 302
    async with asyncio.timeout(5):
        while (await tab.receive()).type not in (WSMsgType.CLOSE, WSMsgType.CLOSED,
                                                 WSMsgType.CLOSING):
            pass
    assert tab.close_code == SIGNED_OUT
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await open_ws(client)
    assert refused.value.status in (302, 401)
    await ben.send_json({"type": "ping"})
    await receive_until(ben, lambda m: m["type"] == "pong")
    assert not ben.closed
    await ben.close()


async def test_garbage_over_the_real_socket_never_breaks_it(client: Any) -> None:
    await login(client, "operator")
    ws = await open_ws(client)
    await receive_until(ws, lambda m: m["type"] == "state")
    replies: list[dict[str, Any]] = []

    @settings(max_examples=60, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.one_of(st.text(max_size=200), st.binary(max_size=100),
                     st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(json.dumps),
                     st.just("x" * 70_000), st.just('{"type":"pause","reason":[1]}')))
    def feed(raw: str | bytes) -> None:
        # hypothesis drives a sync function: collect the sends, run them on the test's loop
        async def one() -> None:
            if isinstance(raw, bytes):
                await ws.send_bytes(raw)
            else:
                await ws.send_str(raw)
            replies.append(await receive_until(ws, lambda m: m["type"] in ("error", "result",
                                                                          "pong")))
        pending.append(one)

    pending: list[Any] = []
    feed()
    for one in pending:
        await one()
    assert len(replies) == len(pending)
    assert all(r["type"] in ("error", "result", "pong") for r in replies)
    assert any("too large" in r.get("error", "") for r in replies)
    r = await command(ws, "alive", type="ping")
    assert r["type"] == "pong"
    assert not ws.closed


async def test_linking_the_caller_to_an_existing_case_joins_the_call_to_it(
    client: Any, app: Any
) -> None:
    """Issue 21: the duplicate suggestion's "link caller to this case" is a note on that case
    during the call; the call record then belongs to the case (its page lists the call). The
    case number may be typed as the caller reads it (no dashes)."""
    old_case = await seed_history(app)
    await login(client, "operator")
    ws = await open_ws(client)
    bus = app[BUS]
    await receive_until(ws, lambda m: m["type"] == "state")
    at = SYSTEM.now()
    await bus.publish(ringing("PJSIP/1001", "1800.5", number=NUMBER, at=at))
    await receive_until(ws, lambda m: m["type"] == "call")
    await bus.publish(CallAnswered("default", "1800.5", "sanitation", "PJSIP/1001", "Ana", 4.0,
                                   2.0, at + timedelta(seconds=4)))
    await receive_until(ws, lambda m: m["type"] == "call" and m["status"] == "connected")
    r = await command(ws, "a", type="add_note", call_id="default:1800.5",
                      case=old_case.replace("-", ""), body="Caller reported it again")
    assert r["ok"] is True and old_case in r["message"], r
    record = CallRecord("default", "1800.5", NUMBER, "Maria Lopez", at,
                        at + timedelta(seconds=34), "answered", queue="sanitation",
                        talk_seconds=30.0)
    await bus.publish(CallEnded(record))
    hub = app[CONSOLE]

    async def applied() -> bool:
        await hub.tick()
        return not hub.work.pending

    await until(applied, timeout=10)
    async with app[SESSIONS]() as db:
        call = (await db.execute(select(Call).where(Call.linkedid == "1800.5"))).scalar_one()
        case = (await db.execute(select(Case).where(Case.number == old_case))).scalar_one()
    assert call.case_id == case.id
    await ws.close()
