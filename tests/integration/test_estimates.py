"""Issue 22: honest expected dates follow what actually happens (the 80th percentile of the last
90 days' contact-to-resolution times), and fall back to the SLA with too few closed cases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contactcenter.app import create_app
from contactcenter.cases.estimates import estimate_table, expected_at
from contactcenter.cases.keys import ESTIMATES
from contactcenter.clock import FixedClock
from contactcenter.keys import SESSIONS
from contactcenter.seed import seed_reference
from tests.conftest import app_settings
from tests.integration.test_figures import add_call, add_case

pytestmark = pytest.mark.store

NOW = datetime(2026, 6, 15, 17, 0, tzinfo=UTC)
HOUR = 3600.0


def test_the_table_needs_enough_closed_cases() -> None:
    rows = [("pothole", "DPW", float(h) * HOUR) for h in range(1, 11)]  # 10 cases: 1..10 h
    rows += [("pothole", "OTHER", 100 * HOUR)] * 2
    table = estimate_table(rows, min_closed=10)
    assert table[("pothole", "DPW")].seconds == pytest.approx(8.2 * HOUR)  # p80 of 1..10
    assert ("pothole", "OTHER") not in table  # two cases prove nothing
    assert table[("pothole", None)].closed == 12
    created = NOW
    when, basis = expected_at(created, None, "pothole", "OTHER", table)
    assert basis == "service" and when == created + timedelta(
        seconds=table[("pothole", None)].seconds)
    due = NOW + timedelta(hours=72)
    assert expected_at(created, due, "bulk-item", "SAN", table) == (due, "sla")


@pytest.fixture
async def client(aiohttp_client: Any, migrated_url: str) -> TestClient:
    settings = app_settings(migrated_url, timezone="America/Panama", estimate_min_closed="5")
    client: TestClient = await aiohttp_client(create_app(settings, clock=FixedClock(NOW)))
    await seed_reference(client.app[SESSIONS])
    return client


async def expected_of(client: TestClient, number: str) -> str:
    resp = await client.get(f"/open311/v2/requests/{number}.json")
    assert resp.status == 200
    (record,) = await resp.json()
    return str(record["expected_datetime"])


async def test_open311_and_status_promise_what_history_shows(client: TestClient) -> None:
    async with client.app[SESSIONS]() as db, db.begin():
        # five potholes closed in 10, 20, 30, 40 and 50 hours from the citizen's first call
        for i, hours in enumerate((10, 20, 30, 40, 50)):
            created = NOW - timedelta(days=20 + i)
            case = await add_case(db, service="pothole", created=created, status="closed",
                                  closed=created + timedelta(hours=hours), sla_hours=72)
            add_call(db, case, created)  # the call began as the case was opened
        # closed too long ago to count
        old = NOW - timedelta(days=200)
        await add_case(db, service="pothole", created=old, status="closed",
                       closed=old + timedelta(hours=900))
        fresh = await add_case(db, service="pothole", created=NOW, sla_hours=72)
        lonely = await add_case(db, service="bulk-item", created=NOW, sla_hours=120)
    # p80 of 10..50 h = 42 h, against an SLA of 72 h
    assert await expected_of(client, fresh.number) == "2026-06-17T11:00:00Z"
    # bulk items: no history, so the SLA's due time (120 h)
    assert await expected_of(client, lonely.number) == "2026-06-20T17:00:00Z"
    page = await (await client.get(f"/status/{fresh.number}")).text()
    assert 'datetime="2026-06-17T11:00:00Z"' in page


async def test_the_table_is_cached_for_an_hour(client: TestClient) -> None:
    estimates = client.app[ESTIMATES]
    assert await estimates.table() == {}
    async with client.app[SESSIONS]() as db, db.begin():
        for i in range(5):
            created = NOW - timedelta(days=3 + i)
            await add_case(db, service="pothole", created=created, status="closed",
                           closed=created + timedelta(hours=5))
    assert await estimates.table() == {}  # not recomputed yet
    estimates.forget()
    assert await estimates.table() != {}


async def test_the_ivr_says_the_honest_date_in_the_centers_zone(client: TestClient) -> None:
    """The IVR's "expected by" reads the estimates table as last loaded (never waiting on
    history): the history's date once loaded, the SLA's before, in the center's zone."""
    from contactcenter.cases.estimates import Estimates
    from contactcenter.ivr.services import IvrServices

    async with client.app[SESSIONS]() as db, db.begin():
        for i, hours in enumerate((10, 20, 30, 40, 50)):
            created = NOW - timedelta(days=20 + i)
            await add_case(db, service="pothole", created=created, status="closed",
                           closed=created + timedelta(hours=hours), sla_hours=72)
        # created 23:30 in Panama: the SLA due (72 h) and the estimate fall on other days
        fresh = await add_case(db, service="pothole", created=datetime(
            2026, 6, 16, 4, 30, tzinfo=UTC), sla_hours=72)
    estimates = Estimates(client.app[SESSIONS], lambda: NOW, min_closed=5)
    ivr = IvrServices(client.app[SESSIONS], timezone="America/Panama", estimates=estimates)
    digits = fresh.number.replace("-", "")
    before = await ivr.find_case(digits, None)
    assert before is not None and before.expected == date(2026, 6, 18)  # the SLA: 23:30 local
    await estimates.table()  # what the refresher does in the background
    after = await ivr.find_case(digits, None)
    # p80 = 42 h after 2026-06-15 23:30 Panama = 2026-06-17 17:30 local
    assert after is not None and after.expected == date(2026, 6, 17)
    await ivr.close()
