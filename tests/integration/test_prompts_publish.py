"""Issue 17: publishing knows audio, and what it publishes reaches Asterisk.

Over HTTP as an admin: a recording made for other words (stale) or a prompt without words in a
language refuses the publish with a message per prompt; a publish writes every prompt's audio to
CC_SOUNDS_DIR (`<lang>/311/<slot>-<hash>.wav`) before the version goes live; the simulator's
Asterisk, reading that directory as Asterisk would, then plays the new file names, Spanish from
`es/` once the IVR set CHANNEL(language). The announcement of the day, typed as words, is spoken
and played on the next call; its times are the center's time zone."""

from __future__ import annotations

import asyncio
import re
import subprocess
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.ivr.models import Announcement, MenuVersion
from contactcenter.ivr.services import IvrServices
from contactcenter.keys import CLOCK, SETTINGS
from contactcenter.prompts.audio import wav_info
from contactcenter.prompts.commands import sync
from contactcenter.prompts.keys import PROMPTS
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import wait_idle
from contactcenter.telephony.simulator.pbx import AgentBehaviour, SimPbx, SimQueueConfig
from tests.conftest import app_settings, login
from tests.ivr_support import Recorder, running_ivr

pytestmark = pytest.mark.store
HTML = {"Accept": "text/html"}
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "asterisk"


async def version(sessions: Any, number: int) -> MenuVersion:
    async with sessions() as db:
        return (await db.execute(select(MenuVersion).where(MenuVersion.version == number))
                ).scalar_one()


def wav(path: Path, seconds: str = "1") -> bytes:
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "2", str(path), "synth", seconds, "sine",
                    "500"], check=True, capture_output=True)
    return path.read_bytes()


async def call(sessions: Any, sounds_dir: Path, answers: list[str]) -> tuple[SimPbx, Recorder]:
    """One simulated caller through Asterisk (reading `sounds_dir`) and our IVR."""
    recorder = Recorder()
    async with running_ivr(IvrServices(sessions, menu_freshness=0), recorder) as server:
        pbx = SimPbx(VirtualClock(50.0), agi_port=server.port, sounds_dir=sounds_dir)
        for queue in ("sanitation", "potholes", "general-311"):
            pbx.add_queue(SimQueueConfig(queue, "ringall"))
            pbx.queue_add(queue, "Local/2001@agents/n", "Ana", 0, "Local/2001@agents")
        pbx.behaviour = lambda m: AgentBehaviour(1, 2)
        try:
            pbx.originate_citizen("7875550101", "Maria Lopez", "", 60, answers=answers)
            assert await wait_idle(pbx, 20)
        finally:
            await pbx.close()
    return pbx, recorder


async def test_publish_refuses_missing_or_stale_audio_then_asterisk_plays_the_new_files(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(app_settings(migrated_url)))
    app = client.server.app
    sounds_dir = Path(app[SETTINGS].sounds_dir)
    token = await login(client, "admin")
    assert (await client.post("/admin/ivr/drafts", data={"_csrf": token})).status == 200
    base = "/admin/ivr/versions/2"

    # the editor shows words and where each prompt's audio comes from
    page = unescape(await (await client.get(f"{base}?edit=prompts", headers=HTML)).text())
    assert "Bienvenido a los servicios municipales 3-1-1." in page
    assert "311/" not in page.split('id="prompt-table"')[1]  # words, not file paths
    assert page.count("not spoken yet: on publish or play") == 18 * 2 or "· current" in page

    # a recording of the Spanish main menu: current while its words stay
    form = FormData()
    form.add_field("_csrf", token)
    form.add_field("file", wav(tmp_path / "menu.wav"), filename="menu.wav",
                   content_type="audio/wav")
    resp = await client.post(f"{base}/prompts/main/es/recording", data=form,
                             allow_redirects=False)
    assert resp.status == 302, await resp.text()
    row = await version(seeded, 2)
    rec = row.data["recordings"]["main/es"]
    assert rec["words"].startswith("Bienvenido") and rec["filename"] == "menu.wav"
    page = unescape(await (await client.get(f"{base}?edit=prompts", headers=HTML)).text())
    assert re.search(r'data-slot="main" data-lang="es">\s*<span class="badge audio-current">'
                     r"recorded · current", page)
    # the player serves that recording, 8 kHz mono
    resp = await client.get(f"{base}/prompts/main/es.wav")
    assert resp.status == 200 and resp.headers["Content-Type"] == "audio/wav"
    body = await resp.read()
    assert app[PROMPTS].library.get(rec["sha256"]) == body

    # garbage is refused with a message, nothing saved
    form = FormData()
    form.add_field("_csrf", token)
    form.add_field("file", b"not audio at all", filename="menu.txt", content_type="text/plain")
    resp = await client.post(f"{base}/prompts/main/en/recording", data=form)
    assert resp.status == 400
    assert "Recording not saved: not a WAV, MP3 or OGG audio file (menu.txt)." in unescape(
        await resp.text())
    assert "main/en" not in (await version(seeded, 2)).data["recordings"]

    # new Spanish words for the main menu: the recording is now older than its words
    new_es = "Bienvenido al 3-1-1. Para basura, oprima 1. Para baches, oprima 2."
    resp = await client.post(f"{base}/nodes/main", data={
        "_csrf": token, "id": "main", "prompt_en": (await version(seeded, 2)).data["nodes"][0][
            "prompt"]["en"], "prompt_es": new_es}, allow_redirects=False)
    assert resp.status == 302
    # ... and the emergency message loses its Spanish words
    resp = await client.post(f"{base}/prompts/main.7", data={
        "_csrf": token, "words_en": "If this is an emergency, hang up and dial 9 1 1.",
        "words_es": ""}, allow_redirects=False)
    assert resp.status == 302
    # the editor says so next to the node, before any publish
    page = unescape(await (await client.get(f"{base}?node=main", headers=HTML)).text())
    problems = re.search(r'<ul class="problems" data-node="main">(.*?)</ul>', page)
    assert problems is not None
    assert "<li>menu main: the es recording is older than its words" in problems.group(1)
    assert re.search(r'data-slot="main" data-lang="es">\s*<span class="badge audio-stale">'
                     r"recorded · stale", page)
    resp = await client.post(f"{base}/publish", data={"_csrf": token})
    text = unescape(await resp.text())
    assert resp.status == 400
    assert "menu main: the es recording is older than its words" in text
    assert "option 7: no words in es" in text
    assert (await version(seeded, 2)).status == "draft"

    # fixed: the recording removed (the words are spoken), the words given back
    assert (await client.post(f"{base}/prompts/main/es/recording/delete",
                              data={"_csrf": token}, allow_redirects=False)).status == 302
    await client.post(f"{base}/prompts/main.7", data={
        "_csrf": token, "words_en": "If this is an emergency, hang up and dial 9 1 1.",
        "words_es": "Si es una emergencia, cuelgue y marque 9 1 1."})
    resp = await client.post(f"{base}/publish", data={"_csrf": token}, allow_redirects=False)
    assert resp.status == 302, unescape(await resp.text())[-2000:]
    row = await version(seeded, 2)
    assert row.status == "active" and row.sounds
    main_es = row.sounds["main"]["es"]["file"]
    assert re.fullmatch(r"311/main-[0-9a-f]{16}", main_es)
    assert main_es != row.sounds["main"]["en"]["file"]
    for slot, per in row.sounds.items():
        for lang, entry in per.items():
            path = sounds_dir / lang / f"{entry['file']}.wav"
            assert path.is_file(), (slot, lang)
    language_menu = row.sounds["language"]["en"]["file"]
    assert row.sounds["language"]["es"]["file"] == language_menu

    # the next caller: Spanish (2), then 1; Asterisk reads sounds_dir
    pbx, recorder = await call(seeded, sounds_dir, ["2", "1"])
    assert recorder.results[0].outcome == "queued" and recorder.results[0].queue == "sanitation"
    assert recorder.engine.missing_prompts == 0
    assert list(pbx.played)[:2] == [("en", language_menu), ("es", main_es)]

    # words changed again: a new name; the previous version's files stay (calls may use them)
    assert (await client.post("/admin/ivr/drafts", data={"_csrf": token})).status == 200
    await client.post("/admin/ivr/versions/3/nodes/main", data={
        "_csrf": token, "id": "main", "prompt_en": row.data["nodes"][0]["prompt"]["en"],
        "prompt_es": new_es + " Gracias."})
    assert (await client.post("/admin/ivr/versions/3/publish", data={"_csrf": token},
                              allow_redirects=False)).status == 302
    v3 = await version(seeded, 3)
    assert v3.sounds["main"]["es"]["file"] != main_es
    assert (sounds_dir / "es" / f"{main_es}.wav").is_file()  # v2 was published moments ago
    pbx, _ = await call(seeded, sounds_dir, ["2", "1"])
    assert ("es", v3.sounds["main"]["es"]["file"]) in list(pbx.played)

    # `contactcenter prompts sync DIR`: the same layout elsewhere, for a remote Asterisk
    remote = tmp_path / "remote"
    written, _ = await sync(app[PROMPTS], remote)
    assert written == len({(lang, e["file"]) for s in (row.sounds, v3.sounds)
                           for per in s.values() for lang, e in per.items()})
    assert (remote / "es" / f"{v3.sounds['main']['es']['file']}.wav").read_bytes() == (
        sounds_dir / "es" / f"{v3.sounds['main']['es']['file']}.wav").read_bytes()
    assert not [p for p in remote.rglob("*") if p.name.startswith(".part-")]


async def test_a_simulated_asterisk_without_the_files_says_they_are_missing(
    seeded: Any, tmp_path: Path
) -> None:
    """The seeded menu's sound files of old do not exist in an empty sounds dir: -1."""
    _, recorder = await call(seeded, tmp_path / "empty", ["1", "1"])
    assert recorder.engine.missing_prompts == 1
    assert recorder.results[0].queue == "general-311"


async def test_the_announcement_is_typed_spoken_and_played_on_the_next_call(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    client = await aiohttp_client(create_app(app_settings(
        migrated_url, timezone="America/Puerto_Rico")))
    app = client.server.app
    token = await login(client, "admin")
    today = app[CLOCK].now().date()  # the window spans two years around it
    resp = await client.post("/admin/ivr/announcements/new", data={
        "_csrf": token, "name": "Storm", "prompt_en": "Because of the storm, offices are closed.",
        "prompt_es": "Por la tormenta, las oficinas están cerradas.",
        "starts_at": f"{today.replace(year=today.year - 1)}T08:00",
        "ends_at": f"{today.replace(year=today.year + 1)}T08:00", "enabled": "on"},
        allow_redirects=False)
    assert resp.status == 302, unescape(await resp.text())
    async with seeded() as db:
        ann = (await db.execute(select(Announcement))).scalar_one()
    # typed in Puerto Rico's time (UTC-4): stored in UTC
    assert ann.starts_at.hour == 12 and ann.ends_at.hour == 12
    es = ann.sounds["es"]["file"]
    assert re.fullmatch(r"311/announcement-[0-9a-f]{16}", es)
    sounds_dir = Path(app[SETTINGS].sounds_dir)
    assert (sounds_dir / "es" / f"{es}.wav").is_file()
    page = unescape(await (await client.get(f"/admin/ivr/announcements/{ann.id}",
                                            headers=HTML)).text())
    assert "Starts (America/Puerto_Rico)" in page
    assert f'value="{today.replace(year=today.year - 1)}T08:00"' in page
    assert (await client.get(f"/admin/ivr/announcements/{ann.id}/audio/es.wav")).status == 200
    # the next caller (Spanish) hears it before the menu; the seeded menu's files are there too
    for lang in ("en", "es"):
        for name in ("311/choose-language", f"311/{lang}/main-menu"):
            path = sounds_dir / lang / f"{name}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"")
    pbx, recorder = await call(seeded, sounds_dir, ["2", "1"])
    played = list(pbx.played)
    assert played[:3] == [("en", "311/choose-language"), ("es", es), ("es", "311/es/main-menu")]
    assert recorder.engine.missing_prompts == 0


async def test_a_recording_larger_than_a_form_arrives_as_the_file_itself(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    """The editor's script sends the file as the body (CSRF token in a header): a 30-second
    44.1 kHz stereo WAV (5 MB, over the app's 2 MB form limit) becomes an 8 kHz mono prompt."""
    client = await aiohttp_client(create_app(app_settings(migrated_url)))
    token = await login(client, "admin")
    await client.post("/admin/ivr/drafts", data={"_csrf": token})
    big = tmp_path / "big.wav"
    await asyncio.to_thread(subprocess.run, ["sox", "-n", "-r", "44100", "-c", "2", str(big),
                                             "synth", "30", "sine", "300"], check=True,
                            capture_output=True)
    assert big.stat().st_size > 5_000_000
    url = "/admin/ivr/versions/2/prompts/menu.goodbye_prompt/es/recording"
    resp = await client.post(url, data=big.read_bytes(), allow_redirects=False, headers={
        "X-CSRF-Token": token, "Content-Type": "audio/wav",
        "X-Filename": "adi%C3%B3s.wav"})
    assert resp.status == 302, unescape(await resp.text())[-500:]
    rec = (await version(seeded, 2)).data["recordings"]["menu.goodbye_prompt/es"]
    assert rec["filename"] == "adiós.wav"
    out = client.server.app[PROMPTS].library.path(rec["sha256"])
    assert wav_info(out.read_bytes()).rate == 8000
    # without the token: refused, nothing stored
    resp = await client.post(url.replace("/es/", "/en/"), data=b"RIFF", headers={
        "Content-Type": "audio/wav"})
    assert resp.status == 403


async def test_the_capture_of_a_real_asterisk_playing_synced_prompts_replays_byte_for_byte(
    sessions: Any,
) -> None:
    """tests/data/asterisk/agi-prompts-es.raw: Asterisk 22.10.1 played our synced prompts (the
    language menu in en, the main menu from es/311/ after CHANNEL(language)) with no missing
    file. Replayed against the same published version, our IVR sends exactly those commands."""
    import json

    from sqlalchemy import update

    from contactcenter.seed import seed_reference
    from tests.agi_fake import parse_capture, replay

    sounds = json.loads((CAPTURES / "agi-prompts-es.sounds.json").read_text())
    await seed_reference(sessions)
    async with sessions() as db, db.begin():
        await db.execute(update(MenuVersion).where(MenuVersion.version == 1)
                         .values(sounds=sounds))
    rec = parse_capture((CAPTURES / "agi-prompts-es.raw").read_bytes())
    recorder = Recorder()
    async with running_ivr(IvrServices(sessions), recorder) as server:
        sent = await replay(server.port, rec)
    assert f"GET DATA {sounds['main']['es']['file']} 5000 1" in sent
    assert sent.index('SET VARIABLE CHANNEL(language) "es"') < sent.index(
        f"GET DATA {sounds['main']['es']['file']} 5000 1")
    (result,) = recorder.results
    assert (result.outcome, result.queue, result.service, result.language) == (
        "queued", "sanitation", "missed-pickup", "es")
