"""Issue 17's browser test: an admin changes the Spanish words of the main menu, hears them (the
editor's audio element loads and plays the new speech), publishes, and the next simulated call
plays the new sound file, found by the simulated Asterisk in CC_SOUNDS_DIR under es/.

Headless Debian chromium via Playwright drives the app (HTTP and its FastAGI server on ephemeral
ports); the simulator's Asterisk reads the app's sounds directory as a real one would.
Screenshots go to the test's tmp dir."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.ivr.models import MenuVersion
from contactcenter.keys import SETTINGS
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import wait_idle
from contactcenter.telephony.simulator.pbx import AgentBehaviour, SimPbx, SimQueueConfig
from tests.conftest import app_settings
from tests.e2e.browser import launch

pytestmark = [pytest.mark.e2e, pytest.mark.store]

TIMEOUT_MS = 15_000
NEW_ES = "Hola, gracias por llamar. Para basura, oprima uno. Para baches, oprima dos."


@pytest.fixture
async def live_app(migrated_url: str, seeded: Any) -> AsyncIterator[tuple[str, int, Path]]:
    app = create_app(app_settings(migrated_url, agi_enabled="true", agi_port="0",
                                  agi_host="127.0.0.1"))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", app[AGI_SERVER].port, Path(app[SETTINGS].sounds_dir)
    finally:
        await runner.cleanup()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async with async_playwright() as pw:
        browser = await launch(pw, timeout=30_000)
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 1000})
            pg = await context.new_page()
            pg.set_default_timeout(TIMEOUT_MS)
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error"
                  and not msg.text.startswith("Failed to load resource") else None)
            pg.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
                  and not r.url.endswith("/favicon.ico") else None)
            yield pg
            assert errors == [], f"browser errors (CSP or script): {errors}"
        finally:
            await browser.close()


async def test_admin_changes_the_spanish_words_hears_them_publishes_and_the_next_call_plays_them(
    live_app: tuple[str, int, Path], page: Page, tmp_path: Path, seeded: Any
) -> None:
    base, agi_port, sounds_dir = live_app

    async def screenshot(name: str) -> None:
        await page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)

    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", "admin")
    await page.fill("input[name=password]", "admin")
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{base}/admin")

    await page.goto(f"{base}/admin/ivr")
    await page.click("text=New draft from the active version")
    await expect(page).to_have_url(re.compile(r"/admin/ivr/versions/2$"))
    # the main node: its words, not a file path
    words = page.locator("#node-prompt_es")
    await expect(words).to_have_value(re.compile(r"^Bienvenido a los servicios municipales"))
    await words.fill(NEW_ES)
    await page.click("text=Save node")
    await expect(page.locator(".notice")).to_contain_text("Saved: node main")
    await expect(page.locator("#node-prompt_es")).to_have_value(NEW_ES)

    # hear it: the player loads the new words' speech and plays it
    audio = page.locator("#audio-main-es")
    await expect(audio).to_have_count(1)
    heard = await audio.evaluate("""async (a) => {
        a.muted = true;  // headless: no sound card; muted play needs no user gesture
        a.preload = "auto";
        a.load();
        await new Promise((ok, bad) => {
            a.addEventListener("loadedmetadata", ok, {once: true});
            a.addEventListener("error", () => bad(new Error("audio error " + a.error.code)),
                               {once: true});
        });
        await a.play();
        await new Promise((ok) => a.addEventListener("timeupdate", ok, {once: true}));
        return {duration: a.duration, time: a.currentTime, src: a.currentSrc};
    }""")
    assert heard["src"].endswith("/admin/ivr/versions/2/prompts/main/es.wav")
    # 13 words: a few seconds of speech
    assert 2.0 < heard["duration"] < 10.0 and heard["time"] > 0, heard
    await page.reload()
    badge = page.locator('.prompt-audio[data-slot="main"][data-lang="es"] .badge')
    await expect(badge).to_have_text("synthesized · current")
    await screenshot("words-and-player")
    # every prompt of the menu, its words per language and where its audio comes from
    await page.click("#prompts-link")
    table = page.locator("#prompt-table")
    await expect(table.locator("tbody tr")).to_have_count(18)
    await expect(table).to_contain_text("status in_progress")
    await expect(page.locator("#w-main-es")).to_have_value(NEW_ES)
    await screenshot("prompts-table")
    # a recording (a 44.1 kHz stereo MP3) for the English goodbye, through the editor's script
    mp3 = tmp_path / "goodbye.mp3"
    proc = await asyncio.create_subprocess_exec(
        "sox", "-n", "-r", "44100", "-c", "2", str(mp3), "synth", "2", "sine", "440")
    assert await proc.wait() == 0
    row = page.locator("#prompt-menu-goodbye_prompt")
    await row.locator('input[type="file"]').first.set_input_files(str(mp3))
    async with page.expect_request(lambda r: r.method == "POST"
                                   and r.url.endswith("/recording")) as sent:
        await row.locator("text=Upload recording").first.click()
    request = await sent.value
    # the script sent the file itself, the token in a header (no 2 MB form limit)
    headers = await request.all_headers()
    assert headers.get("x-filename") == "goodbye.mp3" and "x-csrf-token" in headers
    await expect(page.locator(".notice")).to_contain_text(
        "Saved: recording of goodbye prompt (en)")
    badge = page.locator('.prompt-audio[data-slot="menu.goodbye_prompt"][data-lang="en"] .badge')
    await expect(badge).to_have_text("recorded · current")
    await page.click('#outline a.node-link[href$="node=main"]')

    # the preview speaks the words too
    await page.click("text=Preview")
    await page.keyboard.press("2")
    await expect(page.locator("#heard")).to_contain_text(NEW_ES)
    await expect(page.locator("#heard audio.preview-audio")).to_have_count(2)
    await screenshot("preview")

    # publish: the audio goes where Asterisk reads sounds
    await page.click("text=Back to the editor")
    await page.click("#publish")
    await expect(page.locator(".notice")).to_contain_text("Version 2 is now active")
    await screenshot("published")
    async with seeded() as db:
        v2 = (await db.execute(select(MenuVersion).where(MenuVersion.version == 2))
              ).scalar_one()
    new_file = v2.sounds["main"]["es"]["file"]
    assert re.fullmatch(r"311/main-[0-9a-f]{16}", new_file)
    assert (sounds_dir / "es" / f"{new_file}.wav").is_file()

    # the next simulated call (Asterisk reading that directory): Spanish, then 1
    pbx = SimPbx(VirtualClock(50.0), agi_port=agi_port, sounds_dir=sounds_dir)
    for queue in ("sanitation", "potholes", "general-311"):
        pbx.add_queue(SimQueueConfig(queue, "ringall"))
        pbx.queue_add(queue, "Local/2001@agents/n", "Ana", 0, "Local/2001@agents")
    pbx.behaviour = lambda m: AgentBehaviour(1, 2)
    try:
        pbx.originate_citizen("7875550101", "Maria Lopez", "", 60, answers=["2", "1"])
        assert await wait_idle(pbx, 20)
    finally:
        await pbx.close()
    assert ("es", new_file) in list(pbx.played)
    assert pbx.calls[0].outcome == "answered"
