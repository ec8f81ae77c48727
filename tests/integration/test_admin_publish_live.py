"""Publish and roll back from the admin editor while callers are in the IVR: a session in
progress finishes on the version it started with; the next call plays the new one.

The admin side goes through HTTP (the editor's publish and rollback buttons); the callers are
scripted FastAGI peers on real sockets talking to the real engine on the same store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.ivr.models import MenuVersion
from contactcenter.ivr.services import IvrServices
from tests.agi_fake import Caller
from tests.conftest import app_settings, login, until
from tests.ivr_support import Recorder, running_ivr

pytestmark = pytest.mark.store


async def statuses(sessions: Any) -> dict[int, str]:
    async with sessions() as db:
        return {v.version: v.status for v in (await db.execute(select(MenuVersion))).scalars()}


def paused_at_main_menu(gate: asyncio.Event, reached: asyncio.Event) -> Any:
    """An on_command hook: hold the caller at the main menu's GET DATA until `gate` opens."""
    async def hook(index: int, cmd: str) -> None:
        # the seeded v1 plays the files of old; a published version its words' audio
        if cmd.startswith(("GET DATA 311/en/main-menu", "GET DATA 311/main-")) \
                and not reached.is_set():
            reached.set()
            await gate.wait()
    return hook


async def test_publish_and_rollback_while_calls_are_in_the_menu(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    client = await aiohttp_client(create_app(app_settings(migrated_url)))
    token = await login(client, "admin")
    # the draft: key 1 now goes to potholes
    resp = await client.post("/admin/ivr/drafts", data={"_csrf": token}, allow_redirects=False)
    assert resp.headers["Location"] == "/admin/ivr/versions/2"
    resp = await client.post("/admin/ivr/versions/2/nodes/main/options/0", data={
        "_csrf": token, "digit": "1", "action": "queue", "queue": "potholes",
        "service": "pothole"}, allow_redirects=False)
    assert resp.status == 302

    recorder = Recorder()
    # menu_freshness=0: every call checks the active version itself (by default calls that
    # arrive within 0.2 s of a check share it), so "the next call" here is exact
    async with running_ivr(IvrServices(seeded, menu_freshness=0), recorder) as server:
        # caller A is listening to v1's main menu when v2 is published
        gate, reached = asyncio.Event(), asyncio.Event()
        a = Caller(inputs=["1", "1"], on_command=paused_at_main_menu(gate, reached))
        a_call = asyncio.create_task(a.call(server.port, timeout=10))
        await asyncio.wait_for(reached.wait(), 5)
        resp = await client.post("/admin/ivr/versions/2/publish", data={"_csrf": token},
                                 allow_redirects=False)
        assert resp.status == 302
        assert await statuses(seeded) == {1: "archived", 2: "active"}
        b = await Caller(inputs=["1", "1"]).call(server.port)  # arrives after the publish
        gate.set()
        await a_call
        assert a.variables["QUEUE"] == "sanitation"  # v1: started before the publish
        assert a.variables["SERVICE"] == "missed-pickup"
        assert b.variables["QUEUE"] == "potholes"  # v2
        assert b.variables["SERVICE"] == "pothole"

        # caller C is in v2's menu when the admin rolls back to v1 (a new v3, a copy of v1)
        gate, reached = asyncio.Event(), asyncio.Event()
        c = Caller(inputs=["1", "1"], on_command=paused_at_main_menu(gate, reached))
        c_call = asyncio.create_task(c.call(server.port, timeout=10))
        await asyncio.wait_for(reached.wait(), 5)
        resp = await client.post("/admin/ivr/versions/1/rollback", data={"_csrf": token},
                                 allow_redirects=False)
        assert resp.status == 302
        assert await statuses(seeded) == {1: "archived", 2: "archived", 3: "active"}
        d = await Caller(inputs=["1", "1"]).call(server.port)
        gate.set()
        await c_call
        assert c.variables["QUEUE"] == "potholes"  # v2, as it started
        assert d.variables["QUEUE"] == "sanitation"  # v3 == v1
        await until(lambda: len(recorder.results) == 4)
    versions = sorted((r.menu_version, r.queue) for r in recorder.results)
    assert versions == [(1, "sanitation"), (2, "potholes"), (2, "potholes"), (3, "sanitation")]
