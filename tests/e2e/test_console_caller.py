"""The console's caller block (issue 16): a polite live region that changes, and so is read out,
only when another caller is shown; the status and the history of the same call leave it alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from contactcenter.app import create_app
from contactcenter.clock import SYSTEM
from contactcenter.events import CallAnswered
from contactcenter.keys import BUS, PBX
from tests.conftest import app_settings
from tests.console_helpers import FakePbx, ringing
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e, pytest.mark.store]

ANA = "PJSIP/1001"  # the seeded operator's phone
OBSERVE = """() => {
  window.__changes = 0;
  new MutationObserver((records) => { window.__changes += records.length; })
    .observe(document.getElementById("caller-live"),
             { subtree: true, childList: true, characterData: true, attributes: true });
}"""


async def test_caller_is_announced_once_per_call(
    aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    app = create_app(app_settings(migrated_url))
    app[PBX] = FakePbx()
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    bus = app[BUS]
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            page.set_default_timeout(10_000)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            await page.goto(f"{base}/login")
            await page.get_by_label("User name").fill("operator")
            await page.get_by_label("Password").fill("operator")
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/console")
            await expect(page.locator("#state")).to_have_text("Logged out")
            region = page.locator("#caller-live")
            assert await region.get_attribute("aria-live") == "polite"
            assert await page.locator("[aria-live=assertive]").count() == 0
            # the status badge is beside the region, not in it: "Connected" is not a new caller
            assert await region.locator("#call-status").count() == 0
            await page.evaluate(OBSERVE)

            now = SYSTEM.now()
            await bus.publish(ringing(ANA, "c1", number="7875550101", name="Maria Lopez", at=now))
            await expect(page.locator("#caller-number")).to_have_text("7875550101")
            await expect(page.locator("#caller-name")).to_have_text("Maria Lopez")
            first = await page.evaluate("window.__changes")
            assert first > 0
            # the same call: its history arrives, it is answered
            await expect(page.locator("#history-loading")).to_be_hidden()
            await bus.publish(CallAnswered(
                server="default", linkedid="c1", queue="potholes", interface=ANA,
                member_name="Ana", wait_seconds=3, ring_seconds=1, at=now))
            await expect(page.locator("#call-status")).to_have_text("Connected")
            assert await page.evaluate("window.__changes") == first

            # another caller: announced
            await bus.publish(ringing(ANA, "c2", number="7875550202", name="Luis Ortiz",
                                      at=now + timedelta(seconds=5)))
            await expect(page.locator("#caller-number")).to_have_text("7875550202")
            second = await page.evaluate("window.__changes")
            assert second > first
            await expect(page.locator("#history-loading")).to_be_hidden()
            assert await page.evaluate("window.__changes") == second
            await page.screenshot(path=str(tmp_path / "console-caller.png"))
        finally:
            await browser.close()
    print(f"screenshot: {tmp_path / 'console-caller.png'}")
    assert problems == []
