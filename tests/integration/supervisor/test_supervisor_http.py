"""Supervisor actions, access rules, /metrics, CSV export, reports' SLA table, the push cadence,
and attacker-controlled caller IDs on the wallboard and in exports."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import WSServerHandshakeError
from sqlalchemy import select

from contactcenter.agency.models import Agency
from contactcenter.app import create_app
from contactcenter.audit import AuditLog
from contactcenter.cases.models import Case
from contactcenter.events import (
    AgentStateChanged,
    BroadcastMessage,
    Event,
    QueueJoined,
    QueueLeg,
)
from contactcenter.keys import BUS, PBX, SETTINGS
from contactcenter.queues.models import ServiceType
from contactcenter.security import hash_api_key
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.web.auth import SIGNED_OUT
from contactcenter.web.models import ApiKey
from tests.conftest import app_settings, login, until
from tests.integration.supervisor.conftest import (
    FakePbx,
    origin,
    publish_ended,
    record,
    simulated_day,
    store,
    table_row,
)

pytestmark = pytest.mark.store

NASTY = '<script>alert("x")</script>\n"quoted", \'single\'\r\n=HYPERLINK("http://evil")' + \
    "Z" * 10_000


@pytest.fixture
async def env(aiohttp_client: Any, migrated_url: str, seeded: Any, tz_name: str) -> Any:
    app = create_app(app_settings(migrated_url, timezone=tz_name))
    pbx = FakePbx()
    app[PBX] = pbx
    client = await aiohttp_client(app)

    class Env:
        pass

    e = Env()
    e.app, e.client, e.pbx, e.sessions, e.tz = app, client, pbx, seeded, tz_name  # type: ignore
    return e


async def _member(app: Any, interface: str = "PJSIP/1001", **kw: Any) -> None:
    for queue in ("sanitation", "potholes"):
        await app[BUS].publish(AgentStateChanged(
            server="default", queue=queue, interface=interface, member_name="Ana",
            device_state=kw.get("device", "not_in_use"), paused=kw.get("paused", False),
            pause_reason=kw.get("reason"), at=datetime.now(UTC)))
    await app[BUS].drain()


async def test_pause_unpause_logout_through_the_pbx(env: Any) -> None:
    app, client, pbx = env.app, env.client, env.pbx
    token = await login(client, "supervisor")
    await _member(app)
    hdr = {"X-CSRF-Token": token}
    resp = await client.post("/wallboard/agents/pause", json={"interface": "PJSIP/1001",
                                                              "reason": "training"}, headers=hdr)
    assert resp.status == 200, await resp.text()
    resp = await client.post("/wallboard/agents/unpause", json={"interface": "PJSIP/1001"},
                             headers=hdr)
    assert resp.status == 200
    resp = await client.post("/wallboard/agents/logout", json={"interface": "PJSIP/1001"},
                             headers=hdr)
    assert (await resp.json())["queues"] == ["potholes", "sanitation"]
    assert pbx.calls == [
        ("pause", "PJSIP/1001", True, None, "training"),
        ("pause", "PJSIP/1001", False, None, ""),
        ("remove", "potholes", "PJSIP/1001"),
        ("remove", "sanitation", "PJSIP/1001"),
    ]
    async with env.sessions() as db:
        audit = (await db.execute(select(AuditLog.actor, AuditLog.action))).all()
    assert [tuple(a) for a in audit] == [("supervisor", "agent.pause"),
                                         ("supervisor", "agent.unpause"),
                                         ("supervisor", "agent.logout")]


async def test_actions_refuse_bad_requests_clearly(env: Any) -> None:
    app, client, pbx = env.app, env.client, env.pbx
    token = await login(client, "admin")
    await _member(app)
    hdr = {"X-CSRF-Token": token}
    # no CSRF token: refused before anything reaches Asterisk
    resp = await client.post("/wallboard/agents/pause", json={"interface": "PJSIP/1001"})
    assert resp.status == 403
    cases = [
        ("/wallboard/agents/explode", {"interface": "PJSIP/1001"}, 400, "unknown action"),
        ("/wallboard/agents/pause", {"interface": ""}, 400, "interface"),
        ("/wallboard/agents/pause", {"interface": "PJSIP/9999"}, 404, "no operator"),
        ("/wallboard/agents/pause", {"interface": "PJSIP/1001", "reason": "x" * 41}, 400,
         "reason"),
        ("/wallboard/broadcast", {"text": "   "}, 400, "empty"),
        ("/wallboard/broadcast", {"text": "x" * 501}, 400, "longer"),
    ]
    for url, body, status, words in cases:
        resp = await client.post(url, json=body, headers=hdr)
        assert resp.status == status, (url, body)
        assert words in (await resp.json())["error"]
    resp = await client.post("/wallboard/agents/pause", data=b"{not json",
                             headers={**hdr, "Content-Type": "application/json"})
    assert resp.status == 400 and "JSON" in await resp.text()
    pbx.fail = "Interface not found"
    resp = await client.post("/wallboard/agents/pause", json={"interface": "PJSIP/1001"},
                             headers=hdr)
    assert resp.status == 502 and "Interface not found" in (await resp.json())["error"]
    assert pbx.calls == []
    with warnings.catch_warnings():  # aiohttp frowns on changing a started app; tests only
        warnings.simplefilter("ignore", DeprecationWarning)
        del app[PBX]  # a web process without the AMI link
    resp = await client.post("/wallboard/agents/pause", json={"interface": "PJSIP/1001"},
                             headers=hdr)
    assert resp.status == 503


async def test_broadcast_reaches_the_bus(env: Any) -> None:
    app, client = env.app, env.client
    got: list[Event] = []

    async def collect(event: Event) -> None:
        got.append(event)

    sub = app[BUS].subscribe(collect, types=(BroadcastMessage,))
    token = await login(client, "supervisor")
    resp = await client.post("/wallboard/broadcast", json={"text": "Storm: expect a surge"},
                             headers={"X-CSRF-Token": token})
    assert resp.status == 200
    await until(lambda: got)
    assert got[0].sender == "supervisor" and got[0].text == "Storm: expect a surge"
    await sub.close()


async def test_access_rules(env: Any) -> None:
    client = env.client
    for path in ("/api/queues", "/metrics"):
        assert (await client.get(path, headers={"Accept": "application/json"})).status == 401
        assert (await client.get(path, headers={"X-API-Key": "cc_wrong"})).status == 401
    key = "cc_test_key_0123456789"
    async with env.sessions() as db, db.begin():
        db.add(ApiKey(name="grafana", prefix=key[:8], key_hash=hash_api_key(key)))
    assert (await client.get("/api/queues", headers={"X-API-Key": key})).status == 200
    assert (await client.get("/metrics", headers={"X-API-Key": key})).status == 200
    # an API key opens neither the pages nor the actions
    resp = await client.get("/wallboard", headers={"X-API-Key": key, "Accept": "text/html"},
                            allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login")
    await login(client, "operator")
    for path in ("/wallboard", "/reports", "/api/queues", "/metrics", "/reports/calls.csv"):
        assert (await client.get(path)).status == 403, path
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/wallboard/ws", headers=origin(client))
    assert refused.value.status == 403
    client.session.cookie_jar.clear()
    await login(client, "supervisor")
    resp = await client.get("/wallboard/ws", headers={
        "Origin": "http://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert resp.status == 403
    assert (await client.get("/wallboard?group=nope")).status == 404
    resp = await client.get("/api/queues?window=week")
    assert resp.status == 400 and "window" in (await resp.json())["error"]


async def test_metrics_in_prometheus_format(env: Any) -> None:
    app, client = env.app, env.client
    await login(client, "supervisor")
    now = datetime.now(UTC)
    day = simulated_day(now)
    # issue 19: timed out of general-311, answered in potholes (two legs, two queues)
    t = now - timedelta(hours=3)
    day.append(record("m1", t, "answered", "general-311", agent="Dan", legs=(
        QueueLeg(queue="general-311", joined_at=t, left_at=t + timedelta(seconds=8),
                 outcome="timed_out", wait_seconds=8),
        QueueLeg(queue="potholes", joined_at=t + timedelta(seconds=8),
                 left_at=t + timedelta(seconds=30), outcome="answered", wait_seconds=2,
                 talk_seconds=20, agent="Dan"))))
    await publish_ended(app, day)
    await app[BUS].publish(QueueJoined(server="default", linkedid="w1", queue="potholes",
                                       position=1, caller_number="1", caller_name="A",
                                       at=now - timedelta(seconds=30)))
    await app[BUS].drain()
    resp = await client.get("/metrics", headers={
        "Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await resp.text()).rstrip().endswith("# EOF")
    resp = await client.get("/metrics")
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await resp.text()
    assert 'cc_queue_calls_today{outcome="answered",queue="sanitation"} 3.0' in text
    assert 'cc_calls_total{outcome="answered",queue="sanitation"} 4.0' in text  # y1 too
    # each queue's own legs: m1 timed out in general-311 and was answered in potholes
    assert 'cc_queue_legs_total{outcome="timed_out",queue="general-311"} 1.0' in text
    assert 'cc_queue_legs_total{outcome="answered",queue="potholes"} 3.0' in text
    assert 'cc_queue_calls_today{outcome="timed_out",queue="general-311"} 1.0' in text
    assert 'cc_queue_calls_today{outcome="answered",queue="potholes"} 3.0' in text
    assert 'cc_calls_total{outcome="answered",queue="general-311"} 1.0' in text  # first queue
    assert 'cc_queue_waiting_callers{queue="potholes"} 1.0' in text
    assert 'cc_queue_service_level_ratio{queue="sanitation",window="today"} 0.4' in text
    assert 'cc_queue_service_level_ratio{queue="general-311"' not in text  # 0/0: absent
    assert "cc_event_lag_seconds_count" in text and "cc_wallboard_stale 0.0" in text
    # a second app in the same process has its own registry (no duplicate-metric error)
    other = create_app(app_settings(env.app[SETTINGS].database_url))
    assert other is not None


async def test_csv_export_escapes_caller_id_and_bounds_it(env: Any) -> None:
    client = env.client
    await login(client, "supervisor")
    now = datetime.now(UTC)
    recs = [
        record("n1", now - timedelta(minutes=5), "answered", "sanitation", name=NASTY,
               number="+15551234", wait_seconds=3, talk_seconds=40, agent="@Ana"),
        record("n2", now - timedelta(minutes=4), "abandoned", "potholes", name="-2+3",
               number="5550101", wait_seconds=9),
    ]
    await store(env.sessions, recs)
    today = now.astimezone(ZoneInfo(env.tz)).date().isoformat()
    resp = await client.get(f"/reports/calls.csv?from={today}&to={today}")
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    text = await resp.text()
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) == 3 and len(text.splitlines()) == 3  # no newline inside any cell
    head = rows[0]
    first = dict(zip(head, rows[1], strict=True))
    assert first["caller_name"].startswith('<script>alert("x")</script> "quoted"')  # one line
    # the case writer keeps 200 characters of a caller name; the export never more than 201
    assert 150 < len(first["caller_name"]) <= 201 and "Z" * 300 not in text
    assert first["caller_number"] == "'+15551234" and first["agent"] == "'@Ana"
    second = dict(zip(head, rows[2], strict=True))
    assert second["caller_name"] == "'-2+3" and second["outcome"] == "abandoned"
    assert (await client.get("/reports/calls.csv?from=2026-13-01")).status == 400


async def test_reports_page_range_and_sla_by_agency(env: Any) -> None:
    client = env.client
    await login(client, "supervisor")
    now = datetime.now(UTC)
    async with env.sessions() as db, db.begin():
        san = (await db.execute(select(Agency).where(Agency.code == "SAN"))).scalar_one()
        st = (await db.execute(select(ServiceType).where(ServiceType.code == "pothole")))\
            .scalar_one()
        hour = timedelta(hours=1)
        cases = [  # (agency, status, due, closed); pothole: 72 calendar hours
            (san.id, "closed", now + hour, now - hour),  # closed on time
            (san.id, "closed", now - 2 * hour, now - hour),  # closed late
            (san.id, "open", now + 48 * hour, None),  # on track: open, not due (never on time)
            (san.id, "open", now + 3 * hour, None),  # under 20 % of 72 h left: at risk
            (san.id, "open", now - hour, None),  # past due: overdue
            (None, "open", None, None),  # no SLA, no agency
        ]
        for i, (agency, status, due, closed) in enumerate(cases):
            db.add(Case(number=f"311-T-{i}", token=f"tok{i}", service_type_id=st.id,
                        agency_id=agency, status=status, sla_due_at=due, closed_at=closed,
                        created_at=now - timedelta(minutes=10)))
    today = now.astimezone(ZoneInfo(env.tz)).date().isoformat()
    html = await (await client.get(f"/reports?from={today}&to={today}")).text()
    # agency, cases, on time, late, overdue, at risk, open not due, no SLA, compliance
    assert table_row(html, "sla", "Department of Sanitation") == \
        ["Department of Sanitation", "5", "1", "1", "1", "1", "1", "0", "33.3%"]
    assert table_row(html, "sla", "(no agency)")[1:8] == ["1", "0", "0", "0", "0", "0", "1"]
    counts = " ".join(html.split('id="case-sla-counts"')[1].split("</p>")[0].split())
    assert "cases at risk <b>1</b>" in counts and "overdue <b>1</b>" in counts
    board = await (await client.get("/wallboard")).text()
    assert 'id="case-sla-counts"' in board and "cases at risk <b>1</b>" in board
    live = await client.get("/wallboard/cases")  # what wallboard.js refreshes every minute
    assert live.status == 200 and await live.json() == {"at_risk": 1, "overdue": 1}
    assert html.count("<svg") == 3 and "<script" not in html.split("<main>")[1].split(
        "</main>")[0]
    for bad, words in [("from=2026-02-30", "YYYY-MM-DD"), ("from=2026-03-02&to=2026-03-01",
                       "after"), ("from=2020-01-01&to=2026-01-01", "at most")]:
        resp = await client.get(f"/reports?{bad}")
        assert resp.status == 400 and words in await resp.text()


async def test_wallboard_escapes_and_truncates_caller_id(env: Any) -> None:
    app, client = env.app, env.client
    await login(client, "supervisor")
    await app[BUS].publish(QueueJoined(server="default", linkedid="x1", queue="sanitation",
                                       position=1, caller_number="5550100", caller_name=NASTY,
                                       at=datetime.now(UTC)))
    await app[BUS].drain()
    page = await (await client.get("/wallboard")).text()
    assert "<script>alert" not in page and "ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ" not in page
    assert "\\u003cscript\\u003e" in page  # inside the JSON data block, escaped
    ws = await client.ws_connect("/wallboard/ws", headers=origin(client))
    snap = json.loads((await ws.receive(timeout=5)).data)
    await ws.close()
    (san,) = [q for q in snap["queues"] if q["name"] == "sanitation"]
    (caller,) = san["now"]["callers"]
    assert len(caller["caller"]) <= 40 and "\n" not in caller["caller"]


async def test_signing_out_closes_that_supervisors_wallboards(env: Any) -> None:
    app, client = env.app, env.client
    token = await login(client, "supervisor")
    ws = await client.ws_connect("/wallboard/ws", headers=origin(client))
    await ws.receive(timeout=5)  # the snapshot on joining
    resp = await client.post("/logout", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 302
    async with asyncio.timeout(5):
        while (await ws.receive()).type.name not in ("CLOSE", "CLOSED", "CLOSING"):
            pass
    assert ws.close_code == SIGNED_OUT
    assert app[SUPERVISOR].hub.count() == 0
    with pytest.raises(WSServerHandshakeError):
        await client.ws_connect("/wallboard/ws", headers=origin(client))


async def test_push_is_coalesced_and_serialized_once_per_group(env: Any) -> None:
    app, client = env.app, env.client
    await login(client, "supervisor")
    hub = app[SUPERVISOR].hub
    screens = [await client.ws_connect("/wallboard/ws", headers=origin(client))
               for _ in range(3)]
    for ws in screens:
        await ws.receive(timeout=5)  # the snapshot on joining
    base_broadcasts, base_serialized = hub.broadcasts, hub.serialized
    started = time.monotonic()
    now = datetime.now(UTC)
    for i in range(200):
        await app[BUS].publish(QueueJoined(server="default", linkedid=f"b{i}", queue="potholes",
                                           position=i + 1, caller_number=None, caller_name=None,
                                           at=now))
    await app[BUS].drain()

    async def latest(ws: Any) -> dict[str, Any]:
        while True:
            snap = json.loads((await ws.receive(timeout=5)).data)
            pot = next(q for q in snap["queues"] if q["name"] == "potholes")
            if pot["now"]["waiting"] == 200:
                return snap

    await asyncio.wait_for(asyncio.gather(*(latest(ws) for ws in screens)), 10)
    elapsed = time.monotonic() - started
    pushes = hub.broadcasts - base_broadcasts
    assert 1 <= pushes <= elapsed / hub.interval + 1  # at most one a second
    assert hub.serialized - base_serialized == pushes  # once per group, not per screen
    for ws in screens:
        await ws.close()
    await until(lambda: hub.count() == 0)
