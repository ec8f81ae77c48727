"""The operator console in headless Chromium, against the simulator through the real AMI bridge.

An operator signs in, logs in to their queues, the simulator rings their phone (PJSIP/1001), the
pop shows the caller's history (a seeded earlier call and an open case), they answer with the
demo phone button, open a case, hang up, choose a disposition in wrap-up and go ready. Then a
pop with a hostile caller ID proves it is shown as text, truncated, and never run.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select

from contactcenter.agents.keys import CONSOLE, SIM_PHONES
from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Call, Case, Citizen
from contactcenter.cases.store import NewCase
from contactcenter.clock import SYSTEM
from contactcenter.keys import BUS, SESSIONS
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.pbx import SimPbx
from contactcenter.telephony.simulator.phones import PhoneControl
from contactcenter.telephony.simulator.scenarios import capture_queues
from tests.conftest import app_settings, until
from tests.console_helpers import ringing
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e, pytest.mark.store]

NUMBER = "7875550101"
TIMEOUT = 15_000  # ms, for each wait on the page


@pytest.fixture
async def sim() -> Any:
    pbx = SimPbx(agi_port=1)  # no FastAGI server here: the dialplan falls back to general-311
    capture_queues(pbx)
    server = AmiServer(pbx, "cc", "secret", port=0)
    await server.start()
    yield pbx, server
    await server.close()
    await pbx.close()


async def seed_history(app: Any) -> str:
    now = SYSTEM.now()
    async with app[SESSIONS]() as db, db.begin():
        db.add(Call(server="default", linkedid="1699.1", caller_number=NUMBER,
                    caller_name="Maria Lopez", started_at=now - timedelta(days=3),
                    ended_at=now - timedelta(days=3, seconds=-120), outcome="answered",
                    queue="sanitation", disposition="information"))
    case = await app[CASE_STORE].open_case(
        NewCase("missed-pickup", description="bins skipped twice", address="12 Elm St",
                phone=NUMBER), actor="operator")
    return case.number


async def test_operator_takes_a_simulated_call_end_to_end(
    aiohttp_server: Any, migrated_url: str, seeded: Any, sim: Any, tmp_path: Path,
) -> None:
    pbx, ami = sim
    app = create_app(app_settings(
        migrated_url, ami_enabled="true", ami_port=str(ami.port), ami_username="cc",
        ami_secret="secret", spool_dir=str(tmp_path / "spool")))
    app[SIM_PHONES] = PhoneControl(pbx)
    server = await aiohttp_server(app)
    base = f"http://{server.host}:{server.port}"
    old_case = await seed_history(app)
    await until(lambda: ami.clients, timeout=10)

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                    if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
            await take_the_call(page, base, pbx, app, old_case, tmp_path)
            await hostile_caller_id(page, app, tmp_path)
            # no CSP violation, no script error, nothing missing (the browser's own favicon
            # request is the one 404 it logs)
            assert [e for e in errors if not e.startswith("Failed to load resource")] == []
            await reconnects_and_signs_out(page, app, base)  # (logs the refused handshake)
        finally:
            await browser.close()


async def take_the_call(page: Page, base: str, pbx: Any, app: Any, old_case: str,
                        tmp_path: Path) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("User name").fill("operator")
    await page.get_by_label("Password").fill("operator")
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/console", timeout=TIMEOUT)
    await expect(page.locator("#link")).to_have_text("Phone system connected", timeout=TIMEOUT)
    await expect(page.locator("#state")).to_have_text("Logged out")

    await page.get_by_role("button", name="Log in to queues").click()
    await expect(page.locator("#state")).to_have_text("Available", timeout=TIMEOUT)
    await expect(page.locator("#state-detail")).to_contain_text("general-311")

    # the simulator rings the operator's phone
    pbx.originate_citizen(NUMBER, "Maria Lopez", "3", 120.0, prewait=0.2)
    await expect(page.locator("#call-status")).to_have_text("Ringing", timeout=TIMEOUT)
    await expect(page.locator("#caller-number")).to_have_text(NUMBER)
    await expect(page.locator("#caller-name")).to_have_text("Maria Lopez")
    await expect(page.locator("#call-queue")).to_have_text("general-311")
    cases = page.locator("#cases")
    await expect(cases).to_contain_text(old_case, timeout=TIMEOUT)
    await expect(cases).to_contain_text("Missed garbage pickup")
    await expect(cases).to_contain_text("open")
    await expect(page.locator("#calls")).to_contain_text("answered")
    await expect(page.locator("#calls")).to_contain_text("Information given")
    await page.screenshot(path=str(tmp_path / "console-ringing.png"))

    await page.get_by_role("button", name="Answer").click()
    await expect(page.locator("#call-status")).to_have_text("Connected", timeout=TIMEOUT)
    await expect(page.locator("#state")).to_have_text("On a call", timeout=TIMEOUT)

    # a new case, typed with the keyboard
    await page.get_by_label("Service type").select_option("pothole")
    await page.get_by_label("Address").fill("5th Ave and Main")
    await page.get_by_label("Description").fill("Deep pothole in the right lane")
    await page.get_by_label("Description").press("Tab")
    assert await page.evaluate("document.activeElement.id") == "btn-case"
    await page.keyboard.press("Enter")
    await expect(page.locator("#message")).to_have_text(re.compile(r"Case 311-\d{4}-\d{6} opened"),
                                                        timeout=TIMEOUT)
    new_case = (await page.locator("#message").inner_text()).split()[1]
    await expect(page.locator("#call-cases")).to_contain_text(new_case)

    await page.get_by_role("button", name="Hang up").click()
    await expect(page.locator("#state")).to_have_text("Wrap-up", timeout=TIMEOUT)
    await expect(page.locator("#call-status")).to_have_text(re.compile("Wrap-up|Call ended"))
    await page.get_by_label("Disposition").select_option("case-created")
    await page.get_by_role("button", name="Save disposition").click()
    await expect(page.locator("#message")).to_have_text("Disposition saved: Case created.",
                                                        timeout=TIMEOUT)
    shot = tmp_path / "console-wrapup.png"
    await page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    # readable at 1366×768: the status bar and the pop fit without scrolling sideways
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366
    box = await page.locator("#btn-disposition").bounding_box()
    assert box is not None and box["y"] + box["height"] <= 768  # wrap-up without scrolling

    await page.get_by_role("button", name="Ready").click()
    await expect(page.locator("#state")).to_have_text("Available", timeout=TIMEOUT)
    await expect(page.locator("#no-call")).to_be_visible()

    # everything went through the store: the case, its citizen, the call's record
    async def written() -> Any:
        await app[CONSOLE].tick()
        async with app[SESSIONS]() as db:
            call = (await db.execute(select(Call).where(Call.linkedid != "1699.1"))
                    ).scalar_one_or_none()
            if call is None or call.wrap_seconds is None:
                return None
            case = (await db.execute(select(Case).where(Case.number == new_case))).scalar_one()
            citizen = await db.get(Citizen, case.citizen_id)
            return call, case, citizen

    call, case, citizen = await until(written, timeout=15)
    assert call.outcome == "answered" and call.agent_interface == "PJSIP/1001"
    assert call.disposition == "case-created" and call.case_id == case.id
    assert case.description == "Deep pothole in the right lane" and citizen.phone == NUMBER


async def hostile_caller_id(page: Page, app: Any, tmp_path: Path) -> None:
    """Caller ID is attacker-controlled: HTML, quotes, newlines and 10 kB stay text."""
    name = '<img src=x onerror="window.pwned=1"><b>"Bobby\'</b>\nTables' + "A" * 10_000
    await app[BUS].publish(ringing("PJSIP/1001", "1999.9", number='555<script>1</script>',
                                   name=name, at=SYSTEM.now(), service="streetlight-out"))
    shown = page.locator("#caller-name")
    await expect(shown).to_contain_text('<img src=x onerror="window.pwned=1">', timeout=TIMEOUT)
    text = await shown.inner_text()
    assert len(text) == 80 and text.endswith("…") and "\n" not in text
    assert await page.locator("#call-body img").count() == 0
    assert await page.locator("#call-body b").count() == 0
    assert await page.evaluate("window.pwned === undefined")
    await expect(page.locator("#caller-number")).to_have_text("555<script>1</script>")
    # a new call empties the forms and pre-selects the service chosen in the IVR
    await expect(page.locator("#case-service")).to_have_value("streetlight-out")
    await expect(page.locator("#case-description")).to_have_value("")
    await page.screenshot(path=str(tmp_path / "console-hostile.png"))


async def reconnects_and_signs_out(page: Page, app: Any, base: str) -> None:
    """A dropped socket comes back with the state and the call in progress; a socket refused
    because the session is gone sends the page to the log-in form."""
    hub = app[CONSOLE]
    for conn in list(hub.conns):
        await conn.ws.close(code=1001, message=b"test")
    await expect(page.locator("#link")).to_have_text("Phone system connected", timeout=TIMEOUT)
    await expect(page.locator("#caller-number")).to_have_text("555<script>1</script>")
    await until(lambda: len(hub.conns) == 1, timeout=10)

    await page.context.clear_cookies()
    for conn in list(hub.conns):
        await conn.ws.close(code=1001, message=b"test")
    await page.wait_for_url(re.compile(r"/login\?next="), timeout=TIMEOUT)
