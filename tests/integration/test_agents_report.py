"""The agents report page from stored presence intervals and answered legs (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contactcenter.agents.models import PresenceInterval
from contactcenter.app import create_app
from contactcenter.cases.models import Call, CallLeg
from contactcenter.keys import SESSIONS
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store

T8 = datetime(2026, 11, 20, 8, tzinfo=UTC)
M = timedelta(minutes=1)


async def test_agents_report_page_and_json(aiohttp_client: Any, migrated_url: str,
                                           seeded: Any) -> None:
    app = create_app(app_settings(migrated_url, timezone="UTC"))
    client = await aiohttp_client(app)
    async with app[SESSIONS]() as db, db.begin():
        db.add_all([
            PresenceInterval(interface="PJSIP/1001", state="available", started_at=T8,
                             ended_at=T8 + 20 * M),
            PresenceInterval(interface="PJSIP/1001", state="on_call", started_at=T8 + 20 * M,
                             ended_at=T8 + 25 * M),
            PresenceInterval(interface="PJSIP/1001", state="paused", reason="lunch",
                             started_at=T8 + 25 * M, ended_at=T8 + 55 * M),
        ])
        call = Call(server="default", linkedid="r1", started_at=T8 + 19 * M,
                    ended_at=T8 + 25 * M, outcome="answered", queue="sanitation",
                    agent="Ana Operator", agent_interface="PJSIP/1001", talk_seconds=300.0,
                    wrap_seconds=60.0)
        db.add(call)
        await db.flush()
        db.add(CallLeg(call_id=call.id, seq=0, queue="sanitation", joined_at=T8 + 19 * M,
                       left_at=T8 + 25 * M, outcome="answered", talk_seconds=300.0,
                       agent="Ana Operator", agent_interface="PJSIP/1001"))
    await login(client, "operator")
    assert (await client.get("/reports/agents")).status == 403
    await login(client, "supervisor")
    body = await (await client.get("/reports/agents?day=2026-11-20&format=json")).json()
    (ana,) = body["agents"]
    assert ana["name"] == "Ana Operator" and ana["logged_in_seconds"] == 55 * 60
    assert ana["paused_by_reason"] == {"lunch": 1800} and ana["answered"] == 1
    assert ana["aht_seconds"] == 360 and ana["occupancy"] == 0.2
    html = await (await client.get("/reports/agents?day=2026-11-20")).text()
    assert 'id="agents-report"' in html and "lunch 0:30" in html and "Ana Operator" in html
    r = await client.get("/reports/agents?day=yesterday")
    assert r.status == 400 and "YYYY-MM-DD" in await r.text()
