"""Issue 22: closing the loop by voice. A phone case closed for a citizen with no e-mail is
called back through the PBX (the simulator, over real AMI and FastAGI sockets): the citizen
hears the resolution in their language, keys 2, and the case is reopened with a note; a citizen
who never answers is retried, then given up, and the row says so."""

from __future__ import annotations

import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.callbacks.keys import CALLBACK_SPEAKER, CALLBACKS
from contactcenter.callbacks.models import Callback
from contactcenter.callbacks.policy import (
    CallbackRules,
    after_answer,
    after_no_answer,
    next_slot,
    parse_hours,
    spoken_number,
)
from contactcenter.cases.keys import CASE_STORE
from contactcenter.cases.models import Call, Case
from contactcenter.cases.store import NewCase
from contactcenter.clock import ShiftedClock
from contactcenter.config import SettingsError
from contactcenter.keys import SESSIONS
from contactcenter.seed import seed_reference
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.telephony.plugin import BRIDGE
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.pbx import SimPbx
from tests.conftest import app_settings, until

PANAMA = ZoneInfo("America/Panama")
RULES = CallbackRules(*parse_hours("09:00-19:00"), attempts=3, retry=timedelta(minutes=60),
                      answer_timeout=timedelta(seconds=90))


def test_calls_are_placed_only_within_the_calling_hours() -> None:
    at = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)  # 10:00 in Panama
    assert next_slot(at, RULES, PANAMA) == at
    night = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)  # 21:00 the day before, local
    assert next_slot(night, RULES, PANAMA) == datetime(2026, 3, 4, 9, 0, tzinfo=PANAMA)
    early = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # 07:00 local
    assert next_slot(early, RULES, PANAMA) == datetime(2026, 3, 4, 9, 0, tzinfo=PANAMA)
    # an unanswered call at 18:30 is retried the next morning, not at 19:30
    late = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)
    assert after_no_answer(1, late, RULES, PANAMA) == (
        "pending", datetime(2026, 3, 4, 9, 0, tzinfo=PANAMA))
    assert after_no_answer(3, late, RULES, PANAMA) == ("given_up", None)
    assert [after_answer(d) for d in ("1", "2", "", "7")] == [
        "confirmed", "reopened", "no_choice", "no_choice"]
    assert spoken_number("311-2026-000123") == "311, 2026, 123"
    with pytest.raises(ValueError, match="HH:MM-HH:MM"):
        parse_hours("9 to 5")
    with pytest.raises(ValueError, match="ends before"):
        parse_hours("19:00-09:00")


def test_a_bad_channel_or_hours_stop_start_up(migrated_url: str) -> None:
    with pytest.raises(SettingsError, match=r"\{number\}"):
        app_settings(migrated_url, callback_channel="PJSIP/trunk")
    with pytest.raises(SettingsError, match="CC_CALLBACK_HOURS"):
        app_settings(migrated_url, callback_hours="morning")


class Speaker:
    """The voice, as the service sees it: a sentence in, a sound name out."""

    def __init__(self) -> None:
        self.said: list[tuple[str, str]] = []

    async def __call__(self, text: str, language: str) -> str:
        self.said.append((text, language))
        return f"311/callback/{len(self.said)}"


@pytest.fixture
async def world(aiohttp_client: Any, migrated_url: str, tmp_path: Any) -> Any:
    pbx = SimPbx(VirtualClock(scale=20.0), agi_port=1)
    server = AmiServer(pbx, "cc", "secret", port=0)
    await server.start()
    # 10:00 in Panama, real time passing from there
    clock = ShiftedClock(datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    app = create_app(app_settings(
        migrated_url, ami_enabled="true", ami_port=str(server.port), ami_username="cc",
        ami_secret="secret", agi_enabled="true", agi_port="0", timezone="America/Panama",
        spool_dir=str(tmp_path / "spool"), callback_channel="Local/{number}@sim-citizens",
        callback_attempts="2", callback_retry_minutes="0", callback_answer_seconds="1"),
        clock=clock)
    speaker = Speaker()
    app[CALLBACK_SPEAKER] = speaker
    await aiohttp_client(app)
    await seed_reference(app[SESSIONS])
    pbx.agi_port = app[AGI_SERVER].port
    await until(lambda: server.clients, timeout=10)  # the bridge is logged in
    yield app, pbx, speaker
    await server.close()
    await pbx.close()


async def closed_phone_case(app: Any, phone: str, *, email: str | None = None,
                            language: str | None = None, channel: str = "phone") -> str:
    store = app[CASE_STORE]
    view = await store.open_case(NewCase(service_code="missed-pickup", channel=channel,
                                         phone=phone, email=email, description="bins left"),
                                 actor="operator")
    if language:  # the call that brought the case in, in the citizen's language
        async with app[SESSIONS]() as db, db.begin():
            db.add(Call(server="default", linkedid=f"L-{phone}", caller_number=phone,
                        started_at=view.created_at - timedelta(minutes=3),
                        ended_at=view.created_at, outcome="answered", language=language,
                        case_id=view.id))
    await store.acknowledge(view.number, actor="sanitation")
    await store.close(view.number, actor="sanitation", reason="collected on Tuesday")
    return str(view.number)


async def callback_of(app: Any, number: str) -> Callback | None:
    async with app[SESSIONS]() as db:
        return (await db.execute(select(Callback).join(Case, Case.id == Callback.case_id)
                                 .where(Case.number == number))).scalar_one_or_none()


async def state_of(app: Any, number: str) -> str | None:
    cb = await callback_of(app, number)
    return None if cb is None else cb.state


@pytest.mark.store
async def test_a_citizen_who_keys_2_reopens_the_case(world: Any) -> None:
    app, pbx, speaker = world
    pbx.citizen_keys["5075550123"] = "2"
    number = await closed_phone_case(app, "5075550123", language="es")
    await until(lambda: state_of(app, number), timeout=10)
    assert await state_of(app, number) == "pending"
    await app[CALLBACKS].tick()
    await until(lambda: _is(state_of(app, number), "reopened"), timeout=20)
    view = await app[CASE_STORE].by_number(number)
    assert view.status == "open"
    cb = await callback_of(app, number)
    assert cb is not None and cb.attempts == 1 and cb.result == "keyed 2: not fixed"
    # the citizen heard the resolution and the question in Spanish, then the closing words
    texts = [t for t, lang in speaker.said if lang == "es"]
    assert len(texts) == len(speaker.said) >= 3
    assert "311, 2026" in texts[0] and "collected on Tuesday" in texts[0]
    assert texts[1].startswith("Si ya está resuelto, marque 1")
    assert "reabierto" in texts[-1]
    await until(lambda: pbx.outbound, timeout=5)
    assert pbx.outbound == [("5075550123", "answered, AGI HANGUP")]
    # the reopening is on the case's record with the citizen's reason
    async with app[SESSIONS]() as db:
        case = (await db.execute(select(Case).where(Case.number == number))).scalar_one()
        assert case.closed_at is None
    # the call-back is not a citizen's call into the center: the tracker leaves it to the
    # callbacks table (the only call row is the one that brought the case in)
    links = app[BRIDGE].links.values()
    await until(lambda: sum(link.calls.outbound_calls for link in links), timeout=10)
    async with app[SESSIONS]() as db:
        assert [c.linkedid for c in (await db.execute(select(Call))).scalars()] == [
            "L-5075550123"]


async def _is(coro: Any, value: str) -> bool:
    return bool(await coro == value)


@pytest.mark.store
async def test_a_citizen_who_keys_1_confirms_and_the_case_stays_closed(world: Any) -> None:
    app, pbx, speaker = world
    pbx.citizen_keys["5075550124"] = "1"
    number = await closed_phone_case(app, "5075550124")
    await until(lambda: state_of(app, number), timeout=10)
    await app[CALLBACKS].tick()
    await until(lambda: _is(state_of(app, number), "confirmed"), timeout=20)
    view = await app[CASE_STORE].by_number(number)
    assert view.status == "closed"
    assert any("confirmed on the call-back" in n.body for n in view.notes)
    assert all(lang == "en" for _t, lang in speaker.said)


@pytest.mark.store
async def test_a_citizen_who_never_answers_is_retried_then_given_up(world: Any) -> None:
    app, pbx, _speaker = world
    number = await closed_phone_case(app, "5075550125")  # not in citizen_keys: never answers
    await until(lambda: state_of(app, number), timeout=10)
    service = app[CALLBACKS]
    await service.tick()
    assert await state_of(app, number) == "calling"

    async def attempt_over() -> bool:
        await service.tick()
        cb = await callback_of(app, number)
        return cb is not None and (cb.attempts == 2 or cb.state == "given_up")

    await until(attempt_over, timeout=20)
    await until(lambda: _is(_tick_state(service, app, number), "given_up"), timeout=20)
    cb = await callback_of(app, number)
    assert cb is not None and cb.attempts == 2 and cb.result == "attempt 2: not answered"
    await until(lambda: ("5075550125", "no answer") in pbx.outbound, timeout=20)
    view = await app[CASE_STORE].by_number(number)
    assert view.status == "closed"


async def _tick_state(service: Any, app: Any, number: str) -> str | None:
    await service.tick()
    return await state_of(app, number)


@pytest.mark.store
async def test_no_call_back_when_an_email_tells_them_or_the_case_did_not_come_by_phone(
        world: Any) -> None:
    app, _pbx, _speaker = world
    with_mail = await closed_phone_case(app, "5075550126", email="ana@example.org")
    by_web = await closed_phone_case(app, "5075550127", channel="web")
    await app[CALLBACKS].schedule(with_mail)  # what the event would do, awaited here
    await app[CALLBACKS].schedule(by_web)
    assert await callback_of(app, with_mail) is None
    assert await callback_of(app, by_web) is None


@pytest.mark.store
async def test_the_citizen_hears_the_ivrs_own_voice(aiohttp_client: Any, migrated_url: str,
                                                    tmp_path: Any) -> None:
    """No stand-in speaker: the sentences are spoken by the prompts' engine (espeak-ng), written
    to CC_SOUNDS_DIR/<lang>/311-callback/, and the simulator, which plays only files that exist
    there, plays them to a Spanish caller who keys 2."""
    settings = app_settings(
        migrated_url, ami_enabled="true", ami_port="1", ami_username="cc",
        ami_secret="secret", agi_enabled="true", agi_port="0", timezone="America/Panama",
        spool_dir=str(tmp_path / "spool"), callback_channel="Local/{number}@sim-citizens")
    pbx = SimPbx(VirtualClock(scale=20.0), agi_port=1, sounds_dir=settings.sounds_dir)
    server = AmiServer(pbx, "cc", "secret", port=0)
    await server.start()
    try:
        settings = settings.replace(ami_port=server.port)
        app = create_app(settings, clock=ShiftedClock(datetime(2026, 3, 3, 15, 0, tzinfo=UTC)))
        await aiohttp_client(app)
        await seed_reference(app[SESSIONS])
        pbx.agi_port = app[AGI_SERVER].port
        await until(lambda: server.clients, timeout=10)
        pbx.citizen_keys["5075550130"] = "2"
        number = await closed_phone_case(app, "5075550130", language="es")
        await until(lambda: state_of(app, number), timeout=10)
        await app[CALLBACKS].tick()
        await until(lambda: _is(state_of(app, number), "reopened"), timeout=30)
        folder = Path(settings.sounds_dir) / "es" / "311-callback"
        # the resolution, the question, the closing words (spoken after the reopening)
        await until(lambda: len(list(folder.glob("*.wav"))) >= 3, timeout=10)
        files = sorted(folder.glob("*.wav"))
        with wave.open(str(files[0])) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)

        def played() -> list[tuple[str, str]]:
            return [(lang, name) for lang, name in pbx.played
                    if name.startswith("311-callback/")]

        await until(lambda: len(played()) >= 3, timeout=10)
        assert all(lang == "es" for lang, _name in played())
    finally:
        await server.close()
        await pbx.close()
