"""Issue 22: one clock per contact. A call → case → acknowledgement → close gives the citizen's
timeline with each step's duration, on the status page (public) and the case page (staff)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from contactcenter.app import create_app
from contactcenter.cases.citizen_clock import citizen_clock
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Call
from contactcenter.cases.store import NewCase
from contactcenter.clock import FixedClock
from contactcenter.keys import SESSIONS
from contactcenter.seed import seed_demo_users, seed_reference
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store

T0 = datetime(2026, 4, 6, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in Panama


@pytest.fixture
async def world(aiohttp_client: Any, migrated_url: str) -> tuple[TestClient, FixedClock]:
    clock = FixedClock(T0)
    client: TestClient = await aiohttp_client(create_app(
        app_settings(migrated_url, timezone="America/Panama"), clock=clock))
    await seed_reference(client.app[SESSIONS])
    await seed_demo_users(client.app[SESSIONS])
    return client, clock


async def test_call_case_acknowledge_close_gives_the_steps_and_their_durations(
        world: tuple[TestClient, FixedClock]) -> None:
    client, clock = world
    store = client.app[CASE_STORE]
    # the call starts at T0: 20 s of IVR, 40 s in the queue, then the operator opens the case
    clock.set(T0 + timedelta(minutes=3))
    view = await store.open_case(NewCase(service_code="pothole", phone="5075550100",
                                         description="deep hole"), actor="operator")
    async with client.app[SESSIONS]() as db, db.begin():
        db.add(Call(server="default", linkedid="L1", caller_number="5075550100",
                    started_at=T0, ended_at=T0 + timedelta(minutes=4), outcome="answered",
                    ivr_seconds=20.0, wait_seconds=40.0, talk_seconds=170.0,
                    queue="potholes", case_id=view.id))
    clock.set(T0 + timedelta(hours=2))
    await store.acknowledge(view.number, actor="dpw")
    clock.set(T0 + timedelta(hours=5))
    steps, total = await citizen_clock(client.app[SESSIONS], store, view, clock.now())
    assert [(s.name, s.seconds) for s in steps] == [
        ("contact", 0.0), ("answered", 60.0), ("acknowledged", 2 * 3600 - 60.0),
        ("resolved", None)]
    assert total == 5 * 3600  # open: the clock runs
    clock.set(T0 + timedelta(hours=26))
    closed = await store.close(view.number, actor="dpw", reason="filled", code="resolved")
    steps, total = await citizen_clock(client.app[SESSIONS], store, closed,
                                       clock.now() + timedelta(days=3))
    assert steps[-1].name == "resolved" and steps[-1].seconds == 24 * 3600
    assert [s.held_by for s in steps] == ["citizen", "queue", "center", "agency"]
    assert total == 26 * 3600  # stops at the resolution

    page = await (await client.get(f"/status/{view.number}?lang=es")).text()
    assert "El reloj de su solicitud" in page
    assert 'id="clock-total">26.0 h<' in page
    assert "(+60 s)" in page
    await login(client, "supervisor")
    staff = await (await client.get(f"/cases/{view.number}")).text()
    assert "data-step=\"acknowledged\"" in staff and "(+2.0 h, with the center)" in staff
    assert 'id="clock-total">26.0 h<' in staff


async def test_a_web_request_has_no_answered_step(world: tuple[TestClient, FixedClock]
                                                  ) -> None:
    client, clock = world
    store = client.app[CASE_STORE]
    view = await store.open_case(NewCase(service_code="pothole", channel="web",
                                         email="a@example.org"), actor="web")
    clock.set(T0 + timedelta(minutes=30))
    steps, total = await citizen_clock(client.app[SESSIONS], store, view, clock.now())
    assert steps[1].name == "answered" and steps[1].at is None
    assert total == 1800
    page = await (await client.get(f"/status/{view.number}")).text()
    assert "An operator answered" not in page and "The agency took it on" in page
