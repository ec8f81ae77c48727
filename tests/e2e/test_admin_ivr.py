"""The issue's "done when", in a real browser: an admin adds a new service to the phone menu
from the browser and the next simulated call can choose it.

Headless Debian chromium via Playwright drives the whole app (HTTP and its FastAGI server on
ephemeral ports): create the service type, draft a menu edit that collides with key 1, see the
validation error next to the node, fix it, preview with the keyboard as the keypad, publish,
then a scripted FastAGI caller keys 1 (English) and 4 and lands in the new service's queue.
Screenshots go to the test's tmp dir."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect

from contactcenter.app import create_app
from contactcenter.telephony.keys import AGI_SERVER
from tests.agi_fake import Caller
from tests.conftest import app_settings
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e, pytest.mark.store]

TIMEOUT_MS = 10_000


@pytest.fixture
async def live_app(migrated_url: str, seeded: Any) -> AsyncIterator[tuple[str, int]]:
    app = create_app(app_settings(migrated_url, agi_enabled="true", agi_port="0",
                                  agi_host="127.0.0.1"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", app[AGI_SERVER].port
    finally:
        await runner.cleanup()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await launch(pw, timeout=30_000)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            pg = await context.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            # script errors and CSP violations; "failed to load" is the refused publish (400)
            # and the favicon (404), checked below by URL
            pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
                  and not msg.text.startswith("Failed to load resource") else None)
            pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
                  and not r.url.endswith(("/favicon.ico", "/publish")) else None)
            yield pg
            assert errors == [], f"browser errors (CSP or script): {errors}"
        finally:
            await browser.close()


async def test_admin_adds_a_service_to_the_menu_and_the_next_call_chooses_it(
    live_app: tuple[str, int], page: Page, tmp_path: Path
) -> None:
    base, agi_port = live_app
    shot = 0

    async def screenshot(name: str) -> None:
        nonlocal shot
        shot += 1
        await page.screenshot(path=str(tmp_path / f"{shot:02d}-{name}.png"), full_page=True)

    # sign in
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", "admin")
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/admin")

    # a new service type, taken by the potholes queue
    await page.goto(f"{base}/admin/services/new")
    await page.fill("#f-code", "tree-trimming")
    await page.fill("#f-name", "Tree trimming")
    await page.select_option("#f-queue_id", label="potholes")
    await page.fill("#f-sla_hours", "120")
    await page.click("form.admin-form button[type=submit]")
    await expect(page.locator(".notice")).to_contain_text("Saved tree-trimming")

    # a draft from the active menu; add key 1 (taken) for the new service
    await page.goto(f"{base}/admin/ivr")
    await page.click("text=New draft from the active version")
    await expect(page).to_have_url(re.compile(r"/admin/ivr/versions/2$"))
    await page.fill("#new_option-digit", "1")
    # the form shows only what the chosen action uses (admin-ivr.js)
    await page.select_option("#new_option-action", "submenu")
    await expect(page.locator("#new_option-node")).to_be_visible()
    await expect(page.locator("#new_option-queue")).to_be_hidden()
    await page.select_option("#new_option-action", "queue")
    await expect(page.locator("#new_option-node")).to_be_hidden()
    await page.select_option("#new_option-queue", "potholes")
    await page.select_option("#new_option-service", "tree-trimming")
    await page.click("text=Add option")
    problems = page.locator('#outline ul.problems[data-node="main"]')
    await expect(problems).to_contain_text("digit 1 is used twice")
    await expect(page.locator("#validation")).to_contain_text("1 problem")
    await screenshot("validation-error")

    # publishing is refused while the problem is there
    await page.click("#publish")
    await expect(page.locator("#page-error")).to_contain_text("Not published")

    # fix: open the new option (the eighth) from the outline and give it key 4
    await page.click('#outline a.opt[href$="option=7"]')
    await expect(page.locator("#option-digit")).to_have_value("1")
    await page.fill("#option-digit", "4")
    await page.click("text=Save option")
    await expect(page.locator("#validation")).to_contain_text("Valid")
    await expect(page.locator('#outline ul.problems[data-node="main"]')).to_have_count(0)
    await expect(page.locator("#outline")).to_contain_text("key 4 → queue potholes · tree-trimming")
    await screenshot("fixed")

    # preview, with the keyboard as the keypad: 1 = English, then 4
    await page.click("text=Preview")
    await expect(page.locator("#waiting")).to_contain_text("language menu")
    await page.keyboard.press("1")
    await expect(page.locator("#waiting")).to_contain_text("main")
    await expect(page.locator("#heard")).to_contain_text("Welcome to 3-1-1 city services")
    await page.keyboard.press("4")
    outcome = page.locator("#outcome")
    await expect(outcome).to_contain_text("waits in queue potholes for tree-trimming")
    await expect(outcome).to_have_attribute("data-service", "tree-trimming")
    await screenshot("preview")

    # publish
    await page.click("text=Back to the editor")
    await page.click("#publish")
    await expect(page.locator(".notice")).to_contain_text("Version 2 is now active")
    await expect(page.locator("#version-2 .badge.active")).to_have_count(1)
    await expect(page.locator("#version-1 .badge.archived")).to_have_count(1)
    await screenshot("published")

    # the next simulated call chooses the new service
    caller = await Caller(inputs=["1", "4"]).call(agi_port)
    assert caller.variables["QUEUE"] == "potholes"
    assert caller.variables["SERVICE"] == "tree-trimming"
    assert caller.variables["LANG"] == "en"

    # and the audit log shows who did it
    await page.goto(f"{base}/admin/audit?entity=menu")
    body = page.locator("table.audit")
    await expect(body).to_contain_text("publish")
    await expect(body).to_contain_text("admin")
    await screenshot("audit")
