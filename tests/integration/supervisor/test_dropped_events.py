"""Nothing silently wrong (issue 19): when the bus drops events meant for the wallboard's figures
(its subscriber queue was full), the wallboard says "stale, rebuilding", counts again from the
store, and then agrees with it; /health and /metrics count such rebuilds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from contactcenter.app import create_app
from contactcenter.events import CallEnded, WrapUpEnded
from contactcenter.keys import BUS, CLOCK, SESSIONS
from contactcenter.supervisor.keys import SUPERVISOR
from tests.conftest import HEALTH, app_settings, login, until
from tests.integration.supervisor.conftest import simulated_day, store

pytestmark = pytest.mark.store

QUEUE_SIZE = 10_000  # a bounded subscriber's queue (bus.subscribe's default)


async def test_dropped_call_ends_make_the_wallboard_stale_until_rebuilt(
        aiohttp_client: Any, migrated_url: str, seeded: Any, tz_name: str) -> None:
    app = create_app(app_settings(migrated_url, timezone=tz_name))
    client = await aiohttp_client(app)
    await login(client, "supervisor")
    service = app[SUPERVISOR].service
    now: datetime = app[CLOCK].now()
    records = simulated_day(now)
    await store(app[SESSIONS], records)  # the store is right (the writer never drops)

    # A burst the wallboard cannot keep up with: published without a pause, more events than
    # its queue holds, then the call ends, which it never gets.
    filler = WrapUpEnded("default", "nobody", "PJSIP/1001", 1.0, now)
    for _ in range(QUEUE_SIZE + 10):
        await app[BUS].publish(filler)
    for r in records:
        await app[BUS].publish(CallEnded(record=r))
    assert service.rebuilding and service.drops >= len(records)
    snap = service.snapshot()
    assert snap["stale"] is True and snap["stale_reason"] == "rebuilding"
    body = await (await client.get("/api/queues")).json()
    assert body["stale"] is True and body["stale_reason"] == "rebuilding"

    await until(lambda: not service.rebuilding, timeout=30)
    body = await (await client.get("/api/queues")).json()
    assert body["stale"] is False
    queues = {q["name"]: q for q in body["queues"]}
    # the hand count of simulated_day (supervisor/conftest.py)
    assert (queues["sanitation"]["offered"], queues["sanitation"]["answered"]) == (6, 3)
    assert (queues["potholes"]["offered"], queues["potholes"]["answered"]) == (3, 2)
    assert queues["general-311"]["short_abandoned"] == 1

    health = await (await client.get("/health", headers=HEALTH)).json()
    wall = health["parts"]["wallboard"]
    assert wall["drop_rebuilds"] >= 1 and wall["dropped_events"] >= len(records)
    assert wall["rebuilding"] is False
    assert health["parts"]["bus"]["dropped_by"]["supervisor.stats"] >= len(records)
    metrics = await (await client.get("/metrics")).text()
    assert "cc_wallboard_drop_rebuilds_total" in metrics

