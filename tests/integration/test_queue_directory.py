"""Issue 16: one home for queue settings. Every part of every process reads the QueueDirectory;
an admin's save reaches all of them at once (on Redis: in another process too), and a store that
cannot be read keeps the last copy."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db
from contactcenter.agents.keys import CONSOLE
from contactcenter.app import create_app
from contactcenter.ivr.keys import IVR_ENGINE
from contactcenter.queues.directory import QUEUE_DIRECTORY, QueueDirectory
from contactcenter.queues.models import Queue
from contactcenter.supervisor.keys import SUPERVISOR
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.telephony.plugin import BRIDGE
from tests.conftest import app_settings, login, until
from tests.integration.test_admin_pages import queue_form

pytestmark = pytest.mark.store


async def test_load_listeners_and_a_failed_reload_keeps_the_last_copy(
    seeded: async_sessionmaker[AsyncSession], tmp_path: Any,
) -> None:
    directory = QueueDirectory(seeded)
    seen: list[int] = []
    directory.on_change(lambda d: seen.append(len(d.all())))
    assert directory.get("sanitation") is None and directory.health()["loaded"] is False
    assert await directory.load() is True
    sanitation = directory.get("sanitation")
    assert sanitation is not None and sanitation.wrapup_seconds >= 0
    assert seen == [len(directory.all())] and seen[0] >= 3
    async with seeded() as s, s.begin():
        await s.execute(update(Queue).where(Queue.name == "sanitation").values(
            short_abandon_seconds=9, holidays=["2026-12-25"]))
    assert await directory.load() is True
    reloaded = directory.get("sanitation")
    assert reloaded is not None and reloaded.short_abandon_seconds == 9
    assert reloaded.holidays == ("2026-12-25",)

    broken = db.make_engine(f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # no tables
    try:
        directory._sessions = db.make_sessionmaker(broken)
        assert await directory.load() is False
    finally:
        await broken.dispose()
    assert directory.get("sanitation") == reloaded  # the last copy stays
    assert "no such table" in directory.health()["error"]
    assert len(seen) == 2  # listeners only hear of successful loads


async def test_an_admin_edit_reaches_every_reader_without_a_restart(
    aiohttp_client: Any, migrated_url: str, seeded: Any,
) -> None:
    app = create_app(app_settings(migrated_url, agi_enabled="true", agi_port="0",
                                  ami_enabled="true", ami_port="1"))
    client = await aiohttp_client(app)
    token = await login(client, "admin")
    async with seeded() as s:
        qid = (await s.execute(select(Queue.id).where(Queue.name == "sanitation"))).scalar_one()
    resp = await client.post(f"/admin/queues/{qid}", allow_redirects=False, data={
        **queue_form(name="sanitation", short_abandon_seconds="7", wrapup_seconds="11",
                     service_level_seconds="25", open_mon="", close_mon="",
                     holidays="2026-12-25"),
        "_csrf": token})
    assert resp.status == 302, await resp.text()

    directory = app[QUEUE_DIRECTORY]
    await until(lambda: (q := directory.get("sanitation")) and q.wrapup_seconds == 11)
    assert app[BRIDGE].short_abandon("sanitation") == 7.0  # the recorded outcome
    config = app[SUPERVISOR].service.stats.config("sanitation")  # the wallboard's figures
    assert (config.service_level_seconds, config.short_abandon_seconds) == (25, 7)
    assert app[CONSOLE].presence.wrapup_seconds["sanitation"] == 11  # the console's wrap-up
    ivr = app[IVR_ENGINE]._store  # the IVR's services: office hours and holidays
    assert await ivr.queue_open("sanitation", datetime(2026, 12, 25, 18, tzinfo=UTC)) is False
    assert app[AGI_SERVER].port > 0


async def test_a_save_in_one_process_reloads_the_others_on_redis(
    aiohttp_client: Any, migrated_url: str, seeded: Any, redis_url: str,
) -> None:
    channel = f"cc:test:{uuid.uuid4().hex}"
    shared = {"redis_url": redis_url, "bus_channel": channel}
    web = create_app(app_settings(migrated_url, **shared), role="web")
    # the bridge's AMI points at a closed port (it retries); its FastAGI listens on port 0
    bridge = create_app(app_settings(migrated_url, ami_enabled="true", ami_port="1",
                                     agi_port="0", **shared), role="bridge")
    admin = await aiohttp_client(web)
    await aiohttp_client(bridge)
    token = await login(admin, "admin")
    resp = await admin.post("/admin/queues/new", allow_redirects=False,
                            data={**queue_form(name="graffiti", short_abandon_seconds="3"),
                                  "_csrf": token})
    assert resp.status == 302, await resp.text()
    await until(lambda: bridge[QUEUE_DIRECTORY].get("graffiti") is not None)
    assert bridge[BRIDGE].short_abandon("graffiti") == 3.0
