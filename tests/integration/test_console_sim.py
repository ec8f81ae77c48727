"""The console against the simulator through the real AMI bridge: log in, pop, answer, hang up,
wrap-up, the record with the console's disposition."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.agents.keys import CONSOLE, SIM_PHONES
from contactcenter.app import create_app
from contactcenter.cases.models import Call
from contactcenter.keys import SESSIONS
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.pbx import SimPbx
from contactcenter.telephony.simulator.phones import PhoneControl
from contactcenter.telephony.simulator.scenarios import capture_queues
from tests.conftest import app_settings, login, until
from tests.integration.test_console_ws import (
    SEEN,
    command,
    open_ws,
    receive_until,
    seen_or_next,
)

pytestmark = pytest.mark.store


@pytest.fixture
async def sim() -> Any:
    pbx = SimPbx(agi_port=1)  # no FastAGI server: the dialplan's fallback queue, general-311
    capture_queues(pbx)
    server = AmiServer(pbx, "cc", "secret", port=0)
    await server.start()
    yield pbx, server
    await server.close()
    await pbx.close()


async def test_a_simulated_call_end_to_end(aiohttp_client: Any, migrated_url: str,
                                           seeded: Any, sim: Any, tmp_path: Any) -> None:
    pbx, server = sim
    app = create_app(app_settings(
        migrated_url, ami_enabled="true", ami_port=str(server.port), ami_username="cc",
        ami_secret="secret", spool_dir=str(tmp_path / "spool")))
    app[SIM_PHONES] = PhoneControl(pbx)
    client = await aiohttp_client(app)
    await login(client, "operator")
    ws = await open_ws(client)
    await until(lambda: server.clients, timeout=10)  # the bridge is logged in
    r = await command(ws, "1", type="login")
    assert r["ok"] is True, r
    await seen_or_next(ws, lambda m: m["type"] == "state" and m["state"] == "available"
                       and len(m["queues"]) == 3, timeout=10)

    pbx.originate_citizen("7875550199", "Pat Doe", "3", 60.0, prewait=0.2)
    pop = await receive_until(ws, lambda m: m["type"] == "call" and m["status"] == "ringing",
                              timeout=15)
    assert pop["caller_number"] == "7875550199" and pop["queue"] == "general-311"
    assert (await command(ws, "2", type="answer"))["ok"] is True
    await seen_or_next(ws, lambda m: m["type"] == "call" and m["status"] == "connected")
    r = await command(ws, "3a", type="create_case", call_id=pop["call_id"], service="pothole",
                      description="hole on 5th", address="5th Ave", email="pat at home")
    assert r["ok"] is False and "e-mail address does not look right" in r["error"], r
    r = await command(ws, "3", type="create_case", call_id=pop["call_id"], service="pothole",
                      description="hole on 5th", address="5th Ave", email="pat@example.org")
    assert r["ok"] is True, r
    assert (await command(ws, "4", type="hangup"))["ok"] is True
    await seen_or_next(ws, lambda m: m["type"] == "state" and m["state"] == "wrapup",
                       timeout=10)
    r = await command(ws, "5", type="disposition", call_id=pop["call_id"],
                      disposition="case-created")
    assert r["ok"] is True
    # Asterisk (the simulator) has the operator paused for wrap-up
    assert all(m.paused and m.reason == "wrap-up" for q in pbx.queues.values()
               for m in q.members.values() if m.interface == "PJSIP/1001")
    mark = len(SEEN[id(ws)])
    assert (await command(ws, "6", type="ready"))["ok"] is True
    await seen_or_next(ws, lambda m: m["type"] == "state" and m["state"] == "available"
                       and not any(q["paused"] for q in m["queues"]), timeout=10, after=mark)

    async def recorded() -> Any:
        await app[CONSOLE].tick()
        async with app[SESSIONS]() as db:
            call = (await db.execute(select(Call))).scalar_one_or_none()
        return call if call is not None and call.wrap_seconds is not None else None

    call = await until(recorded, timeout=15)
    assert call.outcome == "answered" and call.agent_interface == "PJSIP/1001"
    assert call.disposition == "case-created" and call.wrap_seconds is not None
    assert json.dumps(pop)  # the pop is plain JSON
    await ws.close()
