"""What the TV wallboard is sent: the same figures as the supervisor's view, with no person in
them (callers' numbers and names, operators' names and interfaces), on the page and the socket;
a supervisor's socket on the same group still gets everything."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contactcenter.app import create_app
from contactcenter.events import AgentStateChanged, QueueJoined
from contactcenter.keys import BUS, PBX
from tests.conftest import app_settings, login
from tests.integration.supervisor.conftest import FakePbx, origin

pytestmark = pytest.mark.store
PEOPLE = ("7875550123", "Maria Lopez", "Zelda Operator", "PJSIP/1042")


async def test_tv_page_and_socket_carry_no_person(aiohttp_client: Any, migrated_url: str,
                                                  seeded: Any) -> None:
    app = create_app(app_settings(migrated_url))
    app[PBX] = FakePbx()
    client = await aiohttp_client(app)
    await login(client, "supervisor")
    now = datetime.now(UTC)
    await app[BUS].publish(AgentStateChanged(
        server="default", queue="sanitation", interface="PJSIP/1042",
        member_name="Zelda Operator", device_state="not_in_use", paused=False,
        pause_reason=None, at=now))
    await app[BUS].publish(QueueJoined(
        server="default", linkedid="x1", queue="sanitation", position=1,
        caller_number="7875550123", caller_name="Maria Lopez", at=now - timedelta(seconds=30)))
    await app[BUS].drain()

    page = await (await client.get("/wallboard/tv")).text()
    assert "tv-queues" in page and "<button" not in page and "<form" not in page
    for person in PEOPLE:
        assert person not in page, person

    tv = await client.ws_connect("/wallboard/ws?tv=1", headers=origin(client))
    snap = json.loads((await tv.receive(timeout=5)).data)
    await tv.close()
    text = json.dumps(snap)
    for person in PEOPLE:
        assert person not in text, person
    (san,) = [q for q in snap["queues"] if q["name"] == "sanitation"]
    assert san["now"]["waiting"] == 1 and san["now"]["agents"]["available"] == 1
    assert san["now"]["callers"][0]["joined_at"]  # the longest wait still ticks on the TV

    staff = await client.ws_connect("/wallboard/ws", headers=origin(client))
    full = json.dumps(json.loads((await staff.receive(timeout=5)).data))
    await staff.close()
    assert "7875550123" in full and "Zelda Operator" in full  # the supervisor's own view

    client.session.cookie_jar.clear()
    assert (await client.get("/wallboard/tv", allow_redirects=False)).status in (302, 401)
