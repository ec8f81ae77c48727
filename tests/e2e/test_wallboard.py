"""The wallboard in a real browser (Debian chromium, headless): it updates live while calls
happen, shows an attacker's Caller ID as text, flags a stale AMI link, and pauses an operator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from contactcenter.app import create_app
from contactcenter.events import (
    AgentCallCompleted,
    AgentRinging,
    AgentStateChanged,
    AmiLinkChanged,
    CallAnswered,
    QueueJoined,
    QueueLeft,
)
from contactcenter.keys import BUS, PBX, SESSIONS
from contactcenter.supervisor.keys import SUPERVISOR
from tests.conftest import app_settings
from tests.e2e.browser import launch
from tests.integration.supervisor.conftest import (
    FakePbx,
    daytime_zone,
    publish_ended,
    record,
    store,
)

pytestmark = [pytest.mark.e2e, pytest.mark.store]

NASTY = '<img src=x onerror=alert(1)>"\'\n' + "Q" * 10_000
ANA = "PJSIP/1001"


async def test_wallboard_updates_live(
    aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    app = create_app(app_settings(migrated_url, timezone=daytime_zone()))
    pbx = FakePbx()
    app[PBX] = pbx
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    bus = app[BUS]
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            page = await browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(8000)
            page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("console", lambda m: problems.append(f"console: {m.text} {m.location}")
                    if m.type == "error" and not m.location.get("url", "").endswith(
                        "/favicon.ico") else None)

            await page.goto(f"{base}/login")
            await page.fill("input[name=username]", "supervisor")
            await page.fill("input[name=password]", "supervisor")
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/wallboard")
            await expect(page.locator("#conn-badge")).to_have_text("live")
            san = page.locator('section.wb-queue[data-queue="sanitation"]')
            await expect(san.locator('[data-figure="offered"] .tile-value')).to_have_text("0")

            now = datetime.now(UTC)
            await bus.publish(AgentStateChanged(
                server="default", queue="sanitation", interface=ANA, member_name="Ana",
                device_state="not_in_use", paused=False, pause_reason=None, at=now))
            await bus.publish(QueueJoined(
                server="default", linkedid="live1", queue="sanitation", position=1,
                caller_number="5550100", caller_name=NASTY, at=now - timedelta(seconds=3)))
            await expect(san.locator('[data-figure="waiting"] .tile-value')).to_have_text("1")
            caller = san.locator(".caller-id")
            await expect(caller).to_contain_text("<img src=x onerror=alert(1)>")
            text = await caller.text_content()
            assert text is not None and len(text) <= 40 and "\n" not in text
            assert await san.locator("img").count() == 0  # shown as text, never as markup
            await san.screenshot(path=str(tmp_path / "waiting.png"))
            row = san.locator(f'tr.op[data-interface="{ANA}"]')
            await expect(row.locator(".op-state")).to_have_text("Available")

            await bus.publish(AgentRinging(
                server="default", linkedid="live1", queue="sanitation", interface=ANA,
                member_name="Ana", caller_number="5550100", caller_name=NASTY, at=now))
            await expect(row.locator(".op-state")).to_have_text("Ringing")
            await bus.publish(QueueLeft(server="default", linkedid="live1", queue="sanitation",
                                        at=now + timedelta(seconds=1)))
            await bus.publish(CallAnswered(
                server="default", linkedid="live1", queue="sanitation", interface=ANA,
                member_name="Ana", wait_seconds=4, ring_seconds=1,
                at=now + timedelta(seconds=1)))
            await expect(row.locator(".op-state")).to_have_text("On a call")
            await expect(san.locator('[data-figure="waiting"] .tile-value')).to_have_text("0")
            await page.wait_for_timeout(2100)  # time in state ticks in the browser
            ticked = await row.locator(".ticker").text_content()
            assert ticked is not None and ticked != "0:00", ticked

            done = now + timedelta(seconds=2)
            await bus.publish(AgentCallCompleted(server="default", linkedid="live1",
                                                 queue="sanitation", interface=ANA,
                                                 talk_seconds=1, at=done))
            rec = record("live1", now - timedelta(seconds=10), "answered", "sanitation",
                         name=NASTY, wait_seconds=4, talk_seconds=30, agent="Ana",
                         agent_interface=ANA)
            await store(seeded, [rec])
            await publish_ended(app, [rec])
            await expect(row.locator(".op-state")).to_have_text("Wrap-up")
            await expect(san.locator('[data-figure="answered"] .tile-value')).to_have_text("1")
            await expect(san.locator('[data-figure="service_level"] .tile-value')) \
                .to_have_text("100.0%")
            await expect(san.locator('[data-figure="service_level"]')).to_have_class(
                "tile ok")

            # a slow queue: an abandon puts the service level under the 80 % target (red)
            ab = record("ab1", now - timedelta(seconds=60), "abandoned", "sanitation",
                        wait_seconds=40)
            await store(seeded, [ab])
            await publish_ended(app, [ab])
            await expect(san.locator('[data-figure="service_level"] .tile-value')) \
                .to_have_text("50.0%")
            await expect(san.locator('[data-figure="service_level"]')).to_have_class("tile bad")
            await expect(san.locator('[data-figure="abandon_rate"] .tile-value')) \
                .to_have_text("50.0%")
            # a queue timeout (issue 19) is shown on its own, in neither the service level
            # nor the abandon rate
            to = record("to1", now - timedelta(seconds=90), "timed_out", "sanitation",
                        wait_seconds=60)
            await store(seeded, [to])
            await publish_ended(app, [to])
            await expect(san.locator('[data-figure="timed_out"] .tile-value')).to_have_text("1")
            await expect(san.locator('[data-figure="offered"] .tile-value')).to_have_text("3")
            await expect(san.locator('[data-figure="abandon_rate"] .tile-value')) \
                .to_have_text("50.0%")
            await expect(san.locator('[data-figure="service_level"] .tile-value')) \
                .to_have_text("50.0%")
            await san.screenshot(path=str(tmp_path / "timed-out.png"))

            # the supervisor pauses Ana from the wallboard (CSRF token from the meta tag)
            await page.select_option("#pause-reason", "training")
            await row.locator('button[data-action="pause"]').click()
            await expect(page.locator("#action-status")).to_contain_text("pause sent")
            # (the console's presence may have paused Ana for wrap-up before: ours is the last)
            assert pbx.calls[-1] == ("pause", ANA, True, None, "training")

            # the bus dropped events for the figures: stale, rebuilding, then whole again
            app[SUPERVISOR].service.events_dropped(1)
            await expect(page.locator("#stale-badge")).to_have_text("STALE — rebuilding")
            await page.evaluate("window.scrollTo(0, 0)")
            await page.screenshot(path=str(tmp_path / "rebuilding.png"))
            await expect(page.locator("#stale-badge")).to_be_hidden()

            await bus.publish(AmiLinkChanged(server="default", connected=False,
                                             at=datetime.now(UTC)))
            await expect(page.locator("#stale-badge")).to_be_visible()
            await expect(page.locator("#stale-badge")).to_contain_text("Asterisk link down")
            await page.screenshot(path=str(tmp_path / "wallboard.png"), full_page=True)
        finally:
            await browser.close()
    print(f"screenshot: {tmp_path / 'wallboard.png'}, {tmp_path / 'rebuilding.png'}")
    assert problems == []


async def test_wallboard_while_the_simulator_places_calls(
    aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    """The simulator (an Asterisk stand-in on a real AMI socket) places calls; the real bridge
    and case writer handle them; the page, /api/queues and the calls table end up equal."""
    import asyncio

    from sqlalchemy import func, select

    from contactcenter.cases.models import Call
    from contactcenter.seed import QUEUES
    from contactcenter.telephony.simulator.ami_server import AmiServer
    from contactcenter.telephony.simulator.demo import build
    from contactcenter.telephony.simulator.generator import CallGenerator, Mix, wait_idle
    from tests.conftest import until

    pbx = build(QUEUES, "127.0.0.1", 1)  # no IVR: the dialplan's fallback queue, general-311
    ami = AmiServer(pbx, "cc", "s3", host="127.0.0.1", port=0)
    await ami.start()
    settings = app_settings(migrated_url, timezone=daytime_zone(), ami_enabled="true",
                            ami_port=str(ami.port), ami_username="cc", ami_secret="s3",
                            spool_dir=str(tmp_path / "spool"))
    app = create_app(settings)
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    mix = Mix(patience_mean=5, patience_min=1, talk_mean=3, talk_min=1, ring_min=0.5,
              ring_max=1.5, ivr_allowance=0)
    gen = CallGenerator(pbx, 3.0, mix, calls=15, seed=11)
    try:
        async with async_playwright() as pw:
            browser = await launch(pw)
            try:
                page = await browser.new_page(viewport={"width": 1600, "height": 1000})
                page.set_default_timeout(8000)
                await page.goto(f"{base}/login")
                await page.fill("input[name=username]", "supervisor")
                await page.fill("input[name=password]", "supervisor")
                await page.click("button[type=submit]")
                await expect(page.locator("#conn-badge")).to_have_text("live")
                gen_task = asyncio.create_task(gen.run())
                gq = page.locator('section.wb-queue[data-queue="general-311"]')
                # mid-run: callers wait or operators talk, live on the page
                await expect(gq.locator(".op.state-on_call").first).to_be_visible(timeout=15000)
                await page.screenshot(path=str(tmp_path / "simulated-live.png"))
                await asyncio.wait_for(gen_task, 30)
                assert await wait_idle(pbx, 60)

                async def settled() -> tuple[int, dict[str, Any]] | None:
                    async with app[SESSIONS]() as db:
                        n = (await db.execute(select(func.count()).select_from(Call)
                                              .where(Call.queue.is_not(None)))).scalar_one()
                    api = app[SUPERVISOR].service.api_queues("today")
                    offered = sum(q["offered"] for q in api["queues"])
                    return (n, api) if n == offered == 15 else None

                _count, api = await until(settled, 20, 0.2)
                (g,) = [q for q in api["queues"] if q["name"] == "general-311"]
                assert g["offered"] == 15 and g["answered"] + g["abandoned"] \
                    + g["short_abandoned"] <= 15
                await expect(gq.locator('[data-figure="offered"] .tile-value')) \
                    .to_have_text(str(g["offered"]))
                await expect(gq.locator('[data-figure="answered"] .tile-value')) \
                    .to_have_text(str(g["answered"]))
                await page.screenshot(path=str(tmp_path / "simulated-after.png"))
            finally:
                await browser.close()
    finally:
        await ami.close()
        await pbx.close()
    print(f"screenshots: {tmp_path}")
