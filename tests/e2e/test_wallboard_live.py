"""The wallboard updates in place (issue 16): a button the supervisor focused keeps the keyboard
focus, and the page its scroll, through pushes; a figure against its target says in words, not
by its colour alone, when it is over or below it (the supervisor's wallboard and the TV)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright, expect

from contactcenter.app import create_app
from contactcenter.events import AgentRinging, AgentStateChanged, CallAnswered, QueueJoined
from contactcenter.keys import BUS, PBX
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

ANA, BEN = "PJSIP/1001", "PJSIP/1002"
FOCUSED = "() => document.activeElement === window.__kept && window.__kept.isConnected"


async def sign_in(page: Page, base: str, path: str) -> None:
    await page.goto(f"{base}/login?next={path}")
    await page.fill("input[name=username]", "supervisor")
    await page.fill("input[name=password]", "supervisor")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")


def watch(page: Page, problems: list[str]) -> None:
    page.set_default_timeout(8000)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console: {m.text}")
            if m.type == "error" and "favicon" not in m.location.get("url", "") else None)


def member(interface: str, name: str, at: datetime, *, paused: bool = False) -> AgentStateChanged:
    return AgentStateChanged(server="default", queue="sanitation", interface=interface,
                             member_name=name, device_state="not_in_use", paused=paused,
                             pause_reason="training" if paused else None, at=at)


async def test_focus_and_scroll_survive_pushes(
    aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    app = create_app(app_settings(migrated_url, timezone=daytime_zone()))
    pbx = FakePbx()
    app[PBX] = pbx
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    bus = app[BUS]
    now = datetime.now(UTC)
    problems: list[str] = []

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            # short enough that the page scrolls
            page = await browser.new_page(viewport={"width": 1280, "height": 600})
            watch(page, problems)
            await sign_in(page, base, "/wallboard")
            await expect(page.locator("#conn-badge")).to_have_text("live")
            await bus.publish(member(ANA, "Ana", now))
            san = page.locator('section.wb-queue[data-queue="sanitation"]')
            ana = san.locator(f'tr.op[data-interface="{ANA}"]')
            await expect(ana.locator(".op-state")).to_have_text("Available")

            button = ana.locator('button[data-action="pause"]')
            await button.scroll_into_view_if_needed()
            await page.evaluate("window.scrollBy(0, 120)")
            await button.focus()
            await page.evaluate("() => { window.__kept = document.activeElement; }")
            assert await page.evaluate("document.activeElement.dataset.interface") == ANA
            scroll = await page.evaluate("window.scrollY")
            assert scroll > 0
            updated = await page.locator("#wb-queues").get_attribute("data-updated")

            # pushes that change the row itself, the figures above it and the rows around it
            await bus.publish(AgentRinging(
                server="default", linkedid="f1", queue="sanitation", interface=ANA,
                member_name="Ana", caller_number="5550100", caller_name="Maria", at=now))
            await expect(ana.locator(".op-state")).to_have_text("Ringing")
            await bus.publish(CallAnswered(
                server="default", linkedid="f1", queue="sanitation", interface=ANA,
                member_name="Ana", wait_seconds=4, ring_seconds=1, at=now))
            await expect(ana.locator(".op-state")).to_have_text("On a call")
            rec = record("f1", now - timedelta(seconds=20), "answered", "sanitation",
                         wait_seconds=4, talk_seconds=30, agent="Ana", agent_interface=ANA)
            await store(seeded, [rec])
            await publish_ended(app, [rec])
            await expect(san.locator('[data-figure="answered"] .tile-value')).to_have_text("1")
            await bus.publish(member(BEN, "Ben", now))  # a row after Ana's
            await expect(san.locator(f'tr.op[data-interface="{BEN}"]')).to_have_count(1)
            assert await page.locator("#wb-queues").get_attribute("data-updated") != updated
            assert await page.evaluate(FOCUSED), await page.evaluate(
                "document.activeElement.outerHTML")
            assert await page.evaluate("window.scrollY") == scroll

            # a caller joins: the list above the table grows; the focus stays on the button
            await bus.publish(QueueJoined(
                server="default", linkedid="f2", queue="sanitation", position=1,
                caller_number="5550111", caller_name="Lee", at=now))
            await expect(san.locator('[data-figure="waiting"] .tile-value')).to_have_text("1")
            assert await page.evaluate(FOCUSED)

            # the keyboard still works from there: Enter pauses Ana (her row's own button)
            await page.select_option("#pause-reason", "training")
            await button.focus()  # (select_option moved the focus)
            await page.evaluate("() => { window.__kept = document.activeElement; }")
            await page.keyboard.press("Enter")
            await expect(page.locator("#action-status")).to_contain_text("pause sent")
            assert pbx.calls[-1] == ("pause", ANA, True, None, "training")
            await bus.publish(member(ANA, "Ana", now, paused=True))
            await expect(ana.locator(".op-state")).to_have_text("Paused")
            # the same button, relabelled in place, still holds the focus
            await expect(ana.locator('button[data-action="unpause"]')).to_have_text("Unpause")
            assert await page.evaluate(FOCUSED)
            await page.keyboard.press("Tab")
            assert await page.evaluate("document.activeElement.textContent") == "Log out"
            await page.screenshot(path=str(tmp_path / "wallboard-focus.png"))
        finally:
            await browser.close()
    print(f"screenshots: {tmp_path}")
    assert problems == []


async def test_over_and_below_target_say_so_in_words(
    aiohttp_server: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    app = create_app(app_settings(migrated_url, timezone=daytime_zone()))
    app[PBX] = FakePbx()
    server = await aiohttp_server(app)
    base = f"http://127.0.0.1:{server.port}"
    bus = app[BUS]
    now = datetime.now(UTC)
    problems: list[str] = []
    # sanitation: a caller waiting 3 minutes (target 60 s), one answer and one abandon (50 %
    # against 80 %); potholes: one answer in time (100 %)
    records = [
        record("c1", now - timedelta(minutes=30), "answered", "sanitation", wait_seconds=4,
               talk_seconds=30),
        record("c2", now - timedelta(minutes=20), "abandoned", "sanitation", wait_seconds=40),
        record("c3", now - timedelta(minutes=10), "answered", "potholes", wait_seconds=2,
               talk_seconds=30),
    ]
    await store(seeded, records)

    async with async_playwright() as pw:
        browser = await launch(pw)
        try:
            context = await browser.new_context(viewport={"width": 1600, "height": 1000})
            page = await context.new_page()
            watch(page, problems)
            await sign_in(page, base, "/wallboard")
            await expect(page.locator("#conn-badge")).to_have_text("live")
            await bus.publish(QueueJoined(
                server="default", linkedid="w1", queue="sanitation", position=1,
                caller_number="5550100", caller_name="Maria", at=now - timedelta(minutes=3)))
            await publish_ended(app, records)
            san = page.locator('section.wb-queue[data-queue="sanitation"]')
            pot = page.locator('section.wb-queue[data-queue="potholes"]')
            lw = san.locator('[data-figure="longest_wait"]')
            sl = san.locator('[data-figure="service_level"]')
            await expect(lw).to_have_class("tile bad")
            await expect(lw.locator(".cue")).to_have_text("▲ over target")
            await expect(sl.locator(".tile-value")).to_have_text("50.0%")
            await expect(sl).to_have_class("tile bad")
            await expect(sl.locator(".cue")).to_have_text("▼ below target")
            await expect(pot.locator('[data-figure="service_level"] .cue')).to_have_text(
                "✓ target met")
            # the icon is decoration: a screen reader reads the words
            assert await sl.locator(".cue [aria-hidden=true]").text_content() == "▼"
            # every red figure on the page says why
            bad = page.locator(".tile.bad")
            assert await bad.count() >= 2
            for i in range(await bad.count()):
                await expect(bad.nth(i).locator(".cue")).to_contain_text("target")
            await san.screenshot(path=str(tmp_path / "wallboard-cues.png"))

            tv = await context.new_page()  # signed in already
            await tv.set_viewport_size({"width": 1920, "height": 1080})
            watch(tv, problems)
            await tv.goto(f"{base}/wallboard/tv")
            tsan = tv.locator('section.tv-queue[data-queue="sanitation"]')
            await expect(tsan.locator('[data-figure="longest_wait"]')).to_have_class("tv-fig bad")
            await expect(tsan.locator('[data-figure="longest_wait"] .cue')).to_have_text(
                "▲ over target")
            await expect(tsan.locator('[data-figure="service_level"] .v')).to_have_text("50%")
            await expect(tsan.locator('[data-figure="service_level"] .cue')).to_have_text(
                "▼ below target")
            tbad = tv.locator(".tv-fig.bad")
            for i in range(await tbad.count()):
                await expect(tbad.nth(i).locator(".cue")).to_contain_text("target")
            await tv.screenshot(path=str(tmp_path / "tv-cues.png"))
        finally:
            await browser.close()
    print(f"screenshots: {tmp_path}")
    assert problems == []
