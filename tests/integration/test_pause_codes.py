"""Pause codes managed by admins: the console offers and accepts the codes in use, the
wallboard's pause menu lists them, a retired one is refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.agents.keys import CONSOLE
from contactcenter.app import create_app
from contactcenter.audit import AuditLog
from contactcenter.keys import SESSIONS
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store


async def test_admins_add_and_retire_pause_codes(aiohttp_client: Any, migrated_url: str,
                                                 seeded: Any) -> None:
    app = create_app(app_settings(migrated_url))
    client = await aiohttp_client(app)
    ops = app[CONSOLE].operators
    assert "lunch" in ops.pause_reasons and "meeting" in ops.pause_reasons  # the seed
    token = await login(client, "admin")
    page = await (await client.get("/admin/pause-codes")).text()
    assert "Lunch" in page and "With a supervisor" in page
    r = await client.post("/admin/pause-codes", data={"_csrf": token, "code": "coaching",
                                                      "label": "Coaching"},
                          allow_redirects=False)
    assert r.status == 302
    assert ops.pause_reasons["coaching"] == "Coaching"  # this process's consoles at once
    r = await client.post("/admin/pause-codes", data={"_csrf": token, "code": "Bad Code!",
                                                      "label": "x"})
    assert r.status == 400 and "Code: 1 to 40" in await r.text()
    r = await client.post("/admin/pause-codes", data={"_csrf": token, "code": "wrap-up",
                                                      "label": "x"})
    assert r.status == 400
    page = await (await client.get("/admin/pause-codes")).text()
    lunch = re.search(r'/admin/pause-codes/(\d+)/toggle"[^<]*<input[^>]*>[^<]*<button[^>]*>'
                      r'Retire</button></form></td></tr>\s*<tr><td>training', page)
    assert lunch is not None
    r = await client.post(f"/admin/pause-codes/{lunch.group(1)}/toggle",
                          data={"_csrf": token}, allow_redirects=False)
    assert r.status == 302 and "lunch" not in ops.pause_reasons
    hello = app[CONSOLE].hello(_operator())
    assert {"code": "coaching", "label": "Coaching"} in hello["pause_reasons"]
    async with app[SESSIONS]() as db:
        audit = (await db.execute(select(AuditLog.action, AuditLog.entity_id).where(
            AuditLog.entity == "pause_code"))).all()
    assert sorted(audit) == [("create", "coaching"), ("update", "lunch")]
    # the wallboard's pause menu
    await login(client, "supervisor")
    board = await (await client.get("/wallboard")).text()
    assert '<option value="coaching">Coaching</option>' in board
    assert '<option value="lunch">' not in board


def _operator() -> Any:
    from contactcenter.web.auth import Principal

    return Principal(1, "operator", "operator", "Ana", "PJSIP/1001", ("sanitation",))
