"""Issue 21's SLA and notification pages in a real browser (Debian chromium, headless): the
supervisor's board and report show "cases at risk N, overdue M", an admin sets an agency's
business hours, and a citizen's opt-out link asks, then stops messages."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from sqlalchemy import select

from contactcenter.agency.models import Agency
from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.store import NewCase
from contactcenter.clock import FixedClock
from contactcenter.keys import SESSIONS
from contactcenter.notify.models import NotifyOptOut
from contactcenter.notify.optout import make_token
from contactcenter.supervisor.http import CASE_COUNTS
from tests.conftest import SECRET_KEY, app_settings
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e, pytest.mark.store]
SHOTS = os.environ.get("CCTEST_SCREENSHOTS", "")


async def shot(page: Any, tmp_path: Path, name: str) -> None:
    await page.screenshot(path=str(Path(SHOTS or tmp_path) / f"{name}.png"), full_page=True)


async def test_counts_agency_hours_and_opt_out_in_a_browser(
    aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    opened = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(opened)
    app = create_app(app_settings(migrated_url), clock=clock)
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    store = app[CASE_STORE]
    for code in ("missed-pickup", "missed-pickup", "pothole"):  # 48, 48, 72 calendar hours
        await store.open_case(NewCase(service_code=code, email="ana@example.org"), actor="op")
    clock.set(opened + timedelta(hours=45))  # the pickups: 3 of 48 h left; the pothole fine
    assert await store.sla_counts() == {"at_risk": 2, "overdue": 0}
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(8000)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            await page.clock.install()  # to run the board's once-a-minute refresh now
            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "supervisor")
            await page.fill("input[name=password]", "supervisor")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/wallboard")
            counts = page.locator("#case-sla-counts")
            await expect(counts).to_contain_text("cases at risk 2")
            await expect(counts).to_contain_text("overdue 0")
            await shot(page, tmp_path, "wallboard-counts")
            # a case closes: the board's next refresh (each minute) shows it without a reload
            first = (await store.recent(3))[-1]
            await store.close(first.number, actor="crew", reason="done")
            app[CASE_COUNTS].at = -1e9  # the process's 15-second cache
            await page.clock.run_for(61_000)
            await expect(counts).to_contain_text("cases at risk 1")
            today = opened.date().isoformat()
            await page.goto(f"{base}/reports?from={today}&to={today}")
            await expect(page.locator("#case-sla-counts")).to_contain_text("cases at risk 1")
            await expect(page.locator("#sla")).to_contain_text("Open, not due")
            await shot(page, tmp_path, "reports-sla")

            admin = await browser.new_page(viewport={"width": 1200, "height": 1100})
            await admin.goto(f"{base}/login")
            await admin.fill("input[name=username]", "admin")
            await admin.fill("input[name=password]", "admin")
            await admin.click("button[type=submit]")
            async with app[SESSIONS]() as db:
                dpw = (await db.execute(select(Agency).where(Agency.code == "DPW"))).scalar_one()
            await admin.goto(f"{base}/admin/agencies/{dpw.id}")
            await admin.fill("input[name=open_mon]", "07:30")
            await admin.fill("input[name=close_mon]", "16:00")
            await admin.fill("textarea[name=holidays]", "2026-12-25")
            await shot(admin, tmp_path, "agency-hours")
            await admin.click("button:has-text('Save')")
            await admin.wait_for_url(f"{base}/admin/agencies?saved=DPW")
            async with app[SESSIONS]() as db:
                dpw = await db.get(Agency, dpw.id)
            assert dpw is not None and dpw.office_hours == {"mon": ["07:30", "16:00"]}

            citizen = await browser.new_page(viewport={"width": 420, "height": 800},
                                             locale="es-ES")
            view = (await store.recent(3))[-1]
            assert view is not None and view.citizen_id is not None
            link = f"{base}/notify/optout/{make_token(SECRET_KEY, view.citizen_id)}"
            await citizen.goto(link)
            await expect(citizen.locator("h1")).to_have_text("No recibir más mensajes del 3-1-1")
            await shot(citizen, tmp_path, "optout-ask")
            await citizen.click("button[type=submit]")
            await expect(citizen.locator("[role=status]")).to_contain_text("no recibirá más")
            await shot(citizen, tmp_path, "optout-done")
            async with app[SESSIONS]() as db:
                assert await db.get(NotifyOptOut, view.citizen_id) is not None
        finally:
            await browser.close()
    assert problems == []
