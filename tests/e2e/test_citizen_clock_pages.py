"""Issue 22 in a real browser (Debian chromium, headless): the case page's citizen's clock, the
agency scorecard, and the public figures page with its open data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Call
from contactcenter.cases.store import NewCase
from contactcenter.clock import FixedClock
from contactcenter.keys import SESSIONS
from tests.conftest import app_settings
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e, pytest.mark.store]

T0 = datetime(2026, 4, 6, 14, 0, tzinfo=UTC)


async def test_case_clock_scorecard_and_public_figures(
        aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path) -> None:
    clock = FixedClock(T0 + timedelta(minutes=3))
    app = create_app(app_settings(migrated_url, timezone="America/Panama"), clock=clock)
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    store = app[CASE_STORE]
    view = await store.open_case(NewCase(service_code="pothole", phone="5075550100",
                                         description="deep hole on 5th"), actor="operator")
    async with app[SESSIONS]() as db, db.begin():
        db.add(Call(server="default", linkedid="L1", caller_number="5075550100",
                    started_at=T0, ended_at=T0 + timedelta(minutes=4), outcome="answered",
                    ivr_seconds=20.0, wait_seconds=40.0, talk_seconds=170.0,
                    handle_seconds=170.0, queue="potholes", case_id=view.id))
        # the citizen calls again two days later: a chase call charged to Public Works
        db.add(Call(server="default", linkedid="L2", caller_number="5075550100",
                    started_at=T0 + timedelta(days=2), ended_at=T0 + timedelta(days=2, minutes=3),
                    outcome="answered", wait_seconds=10.0, talk_seconds=120.0,
                    handle_seconds=150.0, queue="potholes", case_id=view.id))
    clock.set(T0 + timedelta(hours=2))
    await store.acknowledge(view.number, actor="dpw")
    clock.set(T0 + timedelta(days=5))  # late: the pothole SLA is 72 h
    await store.close(view.number, actor="dpw", reason="filled with asphalt", code="resolved")
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(8000)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "supervisor")
            await page.fill("input[name=password]", "supervisor")
            await page.click("button[type=submit]")
            await page.wait_for_load_state()

            await page.goto(f"{base}/cases/{view.number}")
            steps = page.locator("#citizen-clock li")
            await expect(steps).to_have_count(4)
            await expect(steps.nth(1)).to_contain_text("(+60 s, with the queue)")
            await expect(steps.nth(3)).to_contain_text("with the agency")
            await expect(page.locator("#clock-total")).to_have_text("5.0 d")
            await page.screenshot(path=str(tmp_path / "case-clock.png"), full_page=True)

            await page.goto(f"{base}/scorecard")
            dpw = page.locator('table.scorecard[data-agency="DPW"]')
            april = dpw.locator("tr", has_text="2026-04")
            await expect(april.locator("td").nth(0)).to_have_text("1")  # received
            await expect(april.locator("td").nth(1)).to_have_text("0 %")  # closed late
            await expect(april.locator("td").nth(3)).to_have_text("1")  # the chase call
            await expect(april.locator("td").nth(4)).to_have_text("100.0")
            await page.screenshot(path=str(tmp_path / "scorecard.png"), full_page=True)

            citizen = await browser.new_page(viewport={"width": 412, "height": 900},
                                             locale="es-PA", extra_http_headers={
                                                 "Accept-Language": "es"})
            await citizen.goto(f"{base}/figures")
            await expect(citizen.locator("h1")).to_have_text("El 3-1-1 en cifras")
            row = citizen.locator("#agencies tr", has_text="Department of Public Works")
            await expect(row.locator("td").nth(1)).to_have_text("1")
            await citizen.screenshot(path=str(tmp_path / "figures.png"), full_page=True)
            async with citizen.expect_download() as download:
                await citizen.click("text=agencies-by-month.csv")
            saved = tmp_path / "agencies.csv"
            await (await download.value).save_as(saved)
            text = saved.read_text()
            assert text.startswith("month,agency_code") and "DPW" in text
            assert "5075550100" not in text and "deep hole" not in text
            await citizen.goto(f"{base}/status/{view.number}")
            await expect(citizen.locator("#clock-total")).to_have_text("5.0 d")
            await citizen.screenshot(path=str(tmp_path / "status.png"), full_page=True)
        finally:
            await browser.close()
    assert not problems, problems
