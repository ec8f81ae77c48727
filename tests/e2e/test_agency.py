"""Issue 21 in headless Chromium: a simulated call reaches the operator, who opens a case from
the console (with the caller's e-mail); an agency user signs in, finds it in the work queue,
acknowledges it, adds a public note and closes it, while the operator's open case page follows
live. The citizen's e-mail with the closing note reaches a test SMTP server; /status, Open311
and the IVR's case-status answer all say closed, with the note; the citizen's reply to the
e-mail lands as a note on the same case.

Screenshots go to CCTEST_SHOTS (default: the test's tmp_path)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select

from contactcenter.agents.keys import CONSOLE, SIM_PHONES
from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Call
from contactcenter.cases.store import NewCase
from contactcenter.ivr.services import IvrServices
from contactcenter.keys import SESSIONS
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.pbx import SimPbx
from contactcenter.telephony.simulator.phones import PhoneControl
from contactcenter.telephony.simulator.scenarios import capture_queues
from tests.conftest import app_settings, until
from tests.e2e.browser import launch
from tests.integration.test_email_intake import INTAKE, Relay, free_port, message, send
from tests.integration.test_notify import mails_to

pytestmark = [pytest.mark.e2e, pytest.mark.store]

NUMBER = "7875550142"
CITIZEN = "rosa.diaz@example.org"
TIMEOUT = 15_000


@pytest.fixture
async def sim() -> Any:
    pbx = SimPbx(agi_port=1)  # no FastAGI here: the dialplan falls back to general-311
    capture_queues(pbx)
    server = AmiServer(pbx, "cc", "secret", port=0)
    await server.start()
    yield pbx, server
    await server.close()
    await pbx.close()


@pytest.fixture
async def smtp_relay() -> Any:
    """The city's mail relay the notifier sends through: keeps every message."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    r = Relay()
    loop = asyncio.get_running_loop()
    r.server = await loop.create_server(lambda: SMTP(r, loop=loop), "127.0.0.1", 0)
    yield r
    r.server.close()
    await r.server.wait_closed()


async def sign_in(page: Page, base: str, who: str) -> None:
    await page.goto(f"{base}/login")
    await page.get_by_label("User name").fill(who)
    await page.get_by_label("Password").fill(who)
    await page.get_by_role("button", name="Sign in").click()


async def operator_opens_a_case(page: Page, base: str, pbx: Any, earlier: str,
                                shots: Path) -> str:
    await sign_in(page, base, "operator")
    await page.wait_for_url(f"{base}/console", timeout=TIMEOUT)
    await expect(page.locator("#link")).to_have_text("Phone system connected", timeout=TIMEOUT)
    await page.get_by_role("button", name="Log in to queues").click()
    await expect(page.locator("#state")).to_have_text("Available", timeout=TIMEOUT)
    pbx.originate_citizen(NUMBER, "Rosa Diaz", "3", 120.0, prewait=0.2)
    await expect(page.locator("#call-status")).to_have_text("Ringing", timeout=TIMEOUT)
    await page.get_by_role("button", name="Answer").click()
    await expect(page.locator("#call-status")).to_have_text("Connected", timeout=TIMEOUT)
    await page.get_by_label("Service type").select_option("pothole")
    await page.get_by_label("Address").fill("200 calle luna.")
    # the same problem at the same place was reported last week: the console says so
    suggestion = page.locator("#similar")
    await expect(suggestion).to_be_visible(timeout=TIMEOUT)
    await expect(suggestion).to_contain_text(earlier)
    await expect(suggestion.get_by_role("button", name="Link caller to this case")).to_be_visible()
    await page.screenshot(path=str(shots / "console-duplicate.png"))
    # (this caller's pothole is another one, across the street: a new case after all)
    await page.get_by_label("Address").fill("200 Calle Luna")
    await page.get_by_label("Description").fill("Pothole swallowing tires by the bakery")
    await page.get_by_label("Caller's e-mail, for updates").fill(CITIZEN)
    await page.get_by_role("button", name="Create case").click()
    await expect(page.locator("#message")).to_have_text(
        re.compile(r"Case 311-\d{4}-\d{6} opened"), timeout=TIMEOUT)
    number = (await page.locator("#message").inner_text()).split()[1]
    await page.get_by_role("button", name="Hang up").click()
    await expect(page.locator("#state")).to_have_text("Wrap-up", timeout=TIMEOUT)
    return number


async def test_an_agency_works_a_case_from_a_call_and_the_citizen_sees_it_closed(
    aiohttp_server: Any, migrated_url: str, seeded: Any, sim: Any, tmp_path: Path, smtp_relay: Any,
) -> None:
    shots = Path(os.environ.get("CCTEST_SHOTS", str(tmp_path)))
    os.makedirs(shots, exist_ok=True)
    pbx, ami = sim
    intake_port = free_port()
    app = create_app(app_settings(
        migrated_url, ami_enabled="true", ami_port=str(ami.port), ami_username="cc",
        ami_secret="secret", spool_dir=str(tmp_path / "spool"), timezone="America/Puerto_Rico",
        smtp_host="127.0.0.1", smtp_port=str(intake_port), smtp_intake_address=INTAKE,
        smtp_relay_host="127.0.0.1", smtp_relay_port=str(smtp_relay.port), sla_digest_time=""))
    app[SIM_PHONES] = PhoneControl(pbx)
    server = await aiohttp_server(app)
    base = f"http://{server.host}:{server.port}"
    await until(lambda: ami.clients, timeout=10)

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            errors: list[str] = []
            op_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
            ag_ctx = await browser.new_context(viewport={"width": 1366, "height": 900})
            op, ag = await op_ctx.new_page(), await ag_ctx.new_page()
            for p in (op, ag):
                p.on("pageerror", lambda exc: errors.append(str(exc)))
                p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                p.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                     if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)

            earlier = await app[CASE_STORE].open_case(NewCase(
                service_code="pothole", address="200 Calle Luna", description="last week"),
                actor="operator")
            number = await operator_opens_a_case(op, base, pbx, earlier.number, shots)

            async def call_linked() -> bool:  # the record is written, the console links it
                await app[CONSOLE].tick()
                async with app[SESSIONS]() as db:
                    return (await db.execute(select(Call.id).where(
                        Call.case_id.is_not(None)))).first() is not None

            await until(call_linked, timeout=15)
            # the operator keeps the case page open: it follows the agency's work live
            await op.goto(f"{base}/cases/{number}")
            await expect(op.locator("#case-status")).to_have_text("open")

            await sign_in(ag, base, "agency")
            await ag.wait_for_url(f"{base}/agency", timeout=TIMEOUT)
            row = ag.locator("table.queue tr", has_text=number)
            await expect(row).to_contain_text("Pothole")
            await expect(row).to_contain_text("200 Calle Luna")
            await ag.screenshot(path=str(shots / "agency-queue.png"), full_page=True)
            await row.get_by_role("link", name=number).click()
            await ag.wait_for_url(f"{base}/cases/{number}", timeout=TIMEOUT)
            await expect(ag.locator(".timeline")).to_contain_text("call from")
            await expect(ag.locator(".timeline")).to_contain_text("came in by phone")

            await ag.get_by_role("button", name="Acknowledge").click()
            await expect(ag.locator("#case-status")).to_have_text("acknowledged",
                                                                  timeout=TIMEOUT)
            await expect(op.locator("#case-status")).to_have_text("acknowledged",
                                                                  timeout=TIMEOUT)
            await ag.locator("#note-body").fill("A crew will fill it on Thursday.")
            await ag.locator("#note-public").check()
            await ag.locator("#act-note").click()
            await expect(ag.locator(".timeline")).to_contain_text(
                "A crew will fill it on Thursday.", timeout=TIMEOUT)
            await ag.locator("#close-code").select_option("resolved")
            await ag.locator("#close-note").fill("Pothole filled on Thursday. Thank you!")
            await ag.locator("#act-close").click()
            await expect(ag.locator("#case-status")).to_have_text("closed", timeout=TIMEOUT)
            await expect(op.locator("#case-status")).to_have_text("closed", timeout=TIMEOUT)
            await expect(op.locator(".timeline")).to_contain_text("Pothole filled on Thursday.")
            await ag.screenshot(path=str(shots / "agency-case-closed.png"), full_page=True)
            await op.screenshot(path=str(shots / "operator-case-live.png"), full_page=True)

            # the citizen: /status (Spanish by the switch), Open311, the IVR
            citizen = await browser.new_page()
            await citizen.goto(f"{base}/")
            await citizen.get_by_role("link", name="Check the status of a request").click()
            await citizen.get_by_label("Case number").fill(number.replace("-", ""))
            await citizen.get_by_role("button", name="Show").click()
            await citizen.wait_for_url(f"{base}/status/{number}", timeout=TIMEOUT)
            await expect(citizen.locator("#status")).to_have_text("Closed")
            await expect(citizen.locator("#resolution")).to_have_text(
                "Pothole filled on Thursday. Thank you!")
            await expect(citizen.locator("#timeline")).to_contain_text(
                "A crew will fill it on Thursday.")
            await citizen.screenshot(path=str(shots / "status-en.png"), full_page=True)
            await citizen.get_by_role("link", name="Español").click()
            await expect(citizen.locator("#status")).to_have_text("Cerrada")
            await citizen.screenshot(path=str(shots / "status-es.png"), full_page=True)
            # no script error, no CSP violation, no failed request (but the favicon)
            assert [e for e in errors if not e.startswith("Failed to load resource")] == []
        finally:
            await browser.close()

    open311 = await server_get(base, f"/open311/v2/requests/{number}.json")
    (rec,) = open311
    assert (rec["status"], rec["status_notes"]) == (
        "closed", "Pothole filled on Thursday. Thank you!")
    ivr = IvrServices(app[SESSIONS])
    info = await ivr.find_case(number.replace("-", "")[3:], None)
    assert info is not None and info.status == "closed"

    # the citizen heard back by e-mail, with the closing note, and replies to it
    closed = await until(lambda: [m for m in mails_to(smtp_relay, CITIZEN)
                                  if "has been closed" in m.get_content()], timeout=15)
    assert "Pothole filled on Thursday. Thank you!" in closed[0].get_content()
    assert number in closed[0]["Subject"]
    code, _ = await send(intake_port, message(
        sender=CITIZEN, subject=f"Re: {closed[0]['Subject']}",
        body="Thank you, it looks good now.").as_bytes(), sender=CITIZEN)
    assert code == 250

    async def replied() -> bool:
        view = await app[CASE_STORE].by_number(number)
        return view is not None and any("it looks good now" in n.body for n in view.notes)

    await until(replied, timeout=15)


async def server_get(base: str, path: str) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(base + path) as resp:
        assert resp.status == 200
        return await resp.json()
