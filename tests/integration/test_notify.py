"""Citizens hear back (issue 21), over real sockets: the app with its e-mail intake, a local
SMTP relay recording what is sent, and a local SMS webhook. Public changes reach the citizen
by e-mail (in the language of the case) and SMS; internal ones do not; a reply becomes a note
on the same case; the signed opt-out link stops further messages; a relay that is down delays
a message (retries) and never loses it; the agencies' digest lists at-risk and overdue cases."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.app import create_app
from contactcenter.cases.keys import CASE_STORE, EMAIL_INTAKE
from contactcenter.cases.models import Case
from contactcenter.cases.retention import purge_personal_data
from contactcenter.cases.store import CaseStore, NewCase
from contactcenter.clock import FixedClock
from contactcenter.config import load_settings
from contactcenter.events import CaseChanged
from contactcenter.keys import BUS, SESSIONS
from contactcenter.notify import messages
from contactcenter.notify.keys import NOTIFIER
from contactcenter.notify.models import NotifyOptOut, NotifyOutbox
from contactcenter.notify.optout import make_token, read_token
from contactcenter.notify.senders import MailRelay
from contactcenter.notify.services import Notifier
from contactcenter.seed import seed_reference
from tests.conftest import HEALTH, HEALTH_KEY, SECRET_KEY, until
from tests.integration.test_email_intake import INTAKE, Relay, free_port, message, send

pytestmark = pytest.mark.store
ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    from aiosmtpd.smtp import SMTP

    r = Relay()
    loop = asyncio.get_running_loop()
    r.server = await loop.create_server(lambda: SMTP(r, loop=loop), "127.0.0.1", 0)
    yield r
    r.server.close()
    await r.server.wait_closed()


class SmsHook:
    """A city's SMS webhook: keeps every JSON body; answers `status`."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.status = 200
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(await request.json())
        return web.json_response({"ok": self.status == 200}, status=self.status)


@pytest.fixture
async def sms() -> AsyncIterator[SmsHook]:
    hook = SmsHook()
    app = web.Application()
    app.router.add_post("/send", hook.handle)
    hook.runner = web.AppRunner(app)
    await hook.runner.setup()
    site = web.TCPSite(hook.runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    hook.url = f"http://127.0.0.1:{port}/send"
    yield hook
    await hook.runner.cleanup()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str, relay: Relay,
                 sms: SmsHook) -> TestClient:
    settings = load_settings(env={
        "CC_DATABASE_URL": migrated_url, "CC_AGI_ENABLED": "false", "CC_AMI_ENABLED": "false",
        "CC_SMTP_HOST": "127.0.0.1", "CC_SMTP_PORT": str(free_port()),
        "CC_SMTP_INTAKE_ADDRESS": INTAKE, "CC_SMTP_RELAY_HOST": "127.0.0.1",
        "CC_SMTP_RELAY_PORT": str(relay.port), "CC_HEALTH_API_KEY": HEALTH_KEY,
        "CC_SECRET_KEY": SECRET_KEY, "CC_PUBLIC_URL": "https://311.city.example",
        "CC_SMS_WEBHOOK_URL": sms.url, "CC_SLA_DIGEST_TIME": "",
    })
    client = await aiohttp_client(create_app(settings))
    await seed_reference(client.app[SESSIONS])
    return client


def mails_to(relay: Relay, address: str) -> list[EmailMessage]:
    return [m for _, rcpts, m in relay.messages if address in rcpts]


async def case_count(client: TestClient) -> int:
    async with client.app[SESSIONS]() as s:
        return int((await s.execute(select(func.count()).select_from(Case))).scalar_one())


async def test_public_changes_reach_the_citizen_and_a_reply_becomes_a_note(
    client: TestClient, relay: Relay, sms: SmsHook
) -> None:
    store = client.app[CASE_STORE]
    port = client.app[EMAIL_INTAKE].port
    code, reply = await send(port, message().as_bytes())
    assert code == 250, reply
    number = reply.decode().split("case ", 1)[1].strip()
    await until(lambda: mails_to(relay, "ana@example.org"))  # the intake's confirmation

    await store.acknowledge(number, actor="crew")
    await store.add_note(number, "internal: crew of three", author="crew")  # not told
    await store.add_note(number, "The crew comes on Tuesday.", author="crew", public=True)
    got = await until(lambda: len(mails_to(relay, "ana@example.org")) >= 3 and
                      mails_to(relay, "ana@example.org"))
    ack, note = got[1], got[2]
    assert number in str(ack["Subject"]) and ack["Reply-To"] == INTAKE
    assert ack["Auto-Submitted"] == "auto-generated" and ack["From"] == INTAKE
    text = ack.get_content()
    assert "received by Department of Public Works" in text
    assert f"https://311.city.example/status/{number}" in text
    assert "https://311.city.example/notify/optout/" in text
    assert "The crew comes on Tuesday." in note.get_content()
    assert not any("crew of three" in m.get_content() for m in mails_to(relay, "ana@example.org"))
    assert sms.got == []  # an e-mail citizen: no phone, no SMS

    # the citizen answers the update: a note on the same case, never a new case
    before = await case_count(client)
    answer = message(subject=f"Re: {note['Subject']}",
                     body="It is on the north side.\n\nOn Tue, 3-1-1 wrote:\n> The crew comes")
    code, text_reply = await send(port, answer.as_bytes())
    assert code == 250 and number.encode() in text_reply, text_reply
    assert await case_count(client) == before
    view = await store.by_number(number)
    assert view is not None
    last = view.notes[-1]
    assert (last.author, last.public) == ("citizen", False)
    assert "It is on the north side." in last.body and "ana@example.org" in last.body
    assert "The crew comes" not in last.body  # the quoted part is left out
    # a reply to the intake confirmation lands the same way
    confirmation = mails_to(relay, "ana@example.org")[0]
    code, _ = await send(port, message(subject=f"RE: {confirmation['Subject']}",
                                       body="Also a second hole.").as_bytes())
    assert code == 250 and await case_count(client) == before
    view = await store.by_number(number)
    assert view is not None and "Also a second hole." in view.notes[-1].body

    # closing tells the citizen with the closing note
    await store.close(number, actor="crew", reason="Filled the hole.")
    closed = await until(lambda: [m for m in mails_to(relay, "ana@example.org")
                                  if "has been closed" in m.get_content()])
    assert "Filled the hole." in closed[0].get_content()
    health = await (await client.get("/health", headers=HEALTH)).json()
    assert health["parts"]["notify"]["sent"] == 3
    assert health["parts"]["email_intake"]["replies"] == 2


async def test_spanish_email_and_sms_then_the_opt_out_link_stops_them(
    client: TestClient, relay: Relay, sms: SmsHook
) -> None:
    store = client.app[CASE_STORE]
    case = await store.open_case(NewCase(service_code="missed-pickup", channel="phone",
                                         phone="555-010-2000", email="luz@example.org",
                                         language="es"), actor="op")
    assert case.language == "es"
    await store.add_note(case.number, "Pasaremos el jueves.", author="crew", public=True)
    mail = (await until(lambda: mails_to(relay, "luz@example.org")))[0]
    assert str(mail["Subject"]) == f"Novedades sobre su solicitud 3-1-1 {case.number}"
    assert "Pasaremos el jueves." in mail.get_content()
    assert "Para no recibir más mensajes" in mail.get_content()
    await until(lambda: sms.got)
    assert sms.got[0]["to"] == "5550102000"
    assert "Pasaremos el jueves." in sms.got[0]["text"] and case.number in sms.got[0]["text"]
    assert len(sms.got[0]["text"]) <= messages.SMS_LIMIT

    link = mail.get_content().split("https://311.city.example")[-1].split()[0]
    assert link.startswith("/notify/optout/")
    page = await client.get(link)  # asks first: a mail scanner opening it changes nothing
    assert page.status == 200 and "<form" in await page.text()
    async with client.app[SESSIONS]() as s:
        assert await s.get(NotifyOptOut, case.citizen_id) is None
    done = await client.post(link, data={"lang": "es"})
    assert done.status == 200 and "no recibirá más mensajes" in await done.text()
    again = await client.post(link, data={})  # twice is fine
    assert again.status == 200
    forged = await client.post(f"/notify/optout/{case.citizen_id}.AAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status == 404
    assert (await client.get("/notify/optout/nonsense")).status == 404

    mails, texts = len(mails_to(relay, "luz@example.org")), len(sms.got)
    await store.close(case.number, actor="crew", reason="Recogido.")
    await client.app[BUS].drain()
    await client.app[NOTIFIER].deliver_due()
    assert client.app[NOTIFIER].stats.opted_out == 1
    assert (len(mails_to(relay, "luz@example.org")), len(sms.got)) == (mails, texts)


def test_opt_out_tokens_are_signed() -> None:
    token = make_token("k" * 40, 42)
    assert read_token("k" * 40, token) == 42
    assert read_token("j" * 40, token) is None
    assert read_token("k" * 40, "43." + token.split(".")[1]) is None
    for bad in ("", "42", "x.y", "42.", "." * 5, "9" * 40 + ".abc"):
        assert read_token("k" * 40, bad) is None


async def test_a_relay_that_is_down_delays_but_never_loses_a_message(
    sessions: async_sessionmaker[AsyncSession], relay: Relay, caplog: pytest.LogCaptureFixture,
) -> None:
    await seed_reference(sessions)
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    settings = load_settings(env={"CC_SECRET_KEY": SECRET_KEY, "CC_NOTIFY_ATTEMPTS": "3",
                                  "CC_SMTP_INTAKE_ADDRESS": INTAKE})
    store = CaseStore(sessions, None, clock=clock.now)
    dead = MailRelay("127.0.0.1", free_port(), INTAKE)  # nothing listens there
    notifier = Notifier(sessions, settings, clock, relay=dead)
    case = await store.open_case(NewCase(service_code="pothole", email="bo@example.org"),
                                 actor="op")
    event = CaseChanged(number=case.number, status="acknowledged", citizen_id=case.citizen_id,
                        at=clock.now(), change="acknowledged", public=True)
    assert await notifier.enqueue_change(event) == 1
    assert await notifier.enqueue_change(event) == 0  # the same change twice: one message
    assert await notifier.deliver_due() == 0
    async with sessions() as s:
        row = (await s.execute(select(NotifyOutbox))).scalar_one()
    assert row.attempts == 1 and row.sent_at is None and row.failed_at is None
    assert row.next_attempt_at == clock.now() + timedelta(seconds=30)
    assert "relay 127.0.0.1" in (row.last_error or "")
    assert await notifier.deliver_due() == 0  # not due yet: not tried
    clock.advance(30)
    # the relay is back
    notifier.relay = MailRelay("127.0.0.1", relay.port, INTAKE)
    assert await notifier.deliver_due() == 1
    assert [rcpts for _, rcpts, _ in relay.messages] == [["bo@example.org"]]

    # a message that can never go is marked failed after CC_NOTIFY_ATTEMPTS tries, and logged
    notifier.relay = dead
    other = CaseChanged(number=case.number, status="closed", citizen_id=case.citizen_id,
                        at=clock.now(), change="closed", public=True, note="done")
    await notifier.enqueue_change(other)
    for _ in range(3):
        await notifier.deliver_due()
        clock.advance(3600)
    async with sessions() as s:
        failed = (await s.execute(select(NotifyOutbox).where(
            NotifyOutbox.failed_at.is_not(None)))).scalar_one()
    assert failed.attempts == 3 and "gave up" in caplog.text
    assert await notifier.deliver_due() == 0

    # retention: messages sent or given up on leave with the rest of the personal data; one
    # still waiting to go stays
    waiting = CaseChanged(number=case.number, status="closed", citizen_id=case.citizen_id,
                          at=clock.now(), change="reopened", public=True)
    await notifier.enqueue_change(waiting)
    await purge_personal_data(sessions, 1, clock.now() + timedelta(days=2))
    async with sessions() as s:
        left = (await s.execute(select(NotifyOutbox.key))).scalars().all()
    assert [k.split(":")[1] for k in left] == ["reopened"]


async def test_the_daily_digest_lists_each_agencys_at_risk_and_overdue_cases(
    sessions: async_sessionmaker[AsyncSession], relay: Relay,
) -> None:
    await seed_reference(sessions)
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    settings = load_settings(env={"CC_SECRET_KEY": SECRET_KEY, "CC_SLA_DIGEST_TIME": "07:00",
                                  "CC_TIMEZONE": "America/New_York",
                                  "CC_SMTP_INTAKE_ADDRESS": INTAKE})
    store = CaseStore(sessions, None, clock=clock.now, timezone="America/New_York")
    late = await store.open_case(NewCase(service_code="missed-pickup", address="12 Elm St"),
                                 actor="op")  # 48 h
    soon = await store.open_case(NewCase(service_code="bulk-item"), actor="op")  # 120 h
    clock.set(datetime(2026, 6, 4, 9, 0, tzinfo=UTC))
    await store.open_case(NewCase(service_code="pothole"), actor="op")  # DPW, 72 h: fine
    notifier = Notifier(sessions, settings, clock, relay=MailRelay("127.0.0.1", relay.port,
                                                                    INTAKE))
    clock.set(datetime(2026, 6, 5, 10, 30, tzinfo=UTC))  # 06:30 in New York: not yet
    assert notifier.digest_due(clock.now()) is None
    clock.set(datetime(2026, 6, 5, 11, 0, tzinfo=UTC))  # 07:00 New York
    day = notifier.digest_due(clock.now())
    assert day == date(2026, 6, 5)
    assert await notifier.digest(day) == 1  # SAN only: DPW's pothole is not at risk
    assert notifier.digest_due(clock.now()) is None  # once a day
    assert Notifier(sessions, settings, clock).digest_due(clock.now()) is None  # no relay
    notifier2 = Notifier(sessions, settings, clock, relay=notifier.relay)  # after a restart
    assert await notifier2.digest(day) == 0
    assert await notifier.deliver_due() == 1
    (_, rcpts, mail), = relay.messages
    assert rcpts == ["sanitation@city.example"]
    assert str(mail["Subject"]) == "3-1-1 SLA digest 2026-06-05: 1 at risk, 1 overdue"
    body = mail.get_content()
    assert late.number in body.split("At risk:")[0] and "12 Elm St" in body
    assert soon.number in body.split("At risk:")[1]


def test_settings_refuse_bad_notify_values() -> None:
    from contactcenter.config import SettingsError

    for env, words in [({"CC_SMS_WEBHOOK_URL": "sms.example"}, "CC_SMS_WEBHOOK_URL"),
                       ({"CC_SLA_DIGEST_TIME": "25:00"}, "HH:MM"),
                       ({"CC_SMS_EMAIL_DOMAIN": "x@y"}, "CC_SMS_EMAIL_DOMAIN")]:
        with pytest.raises(SettingsError, match=words):
            load_settings(env=env)


async def test_a_case_waiting_on_the_citizen_asks_them_and_shows_everywhere(
    client: TestClient, relay: Relay
) -> None:
    store = client.app[CASE_STORE]
    case = await store.open_case(NewCase(service_code="pothole", email="cy@example.org"),
                                 actor="op")
    await store.wait_on_citizen(case.number, actor="crew", note="Which side of the street?")
    mail = (await until(lambda: mails_to(relay, "cy@example.org")))[0]
    assert "We need some information from you" in mail.get_content()
    assert "Which side of the street?" in mail.get_content()
    page = await client.get(f"/status/{case.number}")
    assert page.status == 200 and "Waiting for your reply" in await page.text()
    resp = await client.get(f"/open311/v2/requests/{case.number}.json")
    (record,) = await resp.json()
    assert record["status"] == "open" and record["status_notes"] == "Which side of the street?"
    listed = await (await client.get("/open311/v2/requests.json?status=open")).json()
    assert case.number in {r["service_request_id"] for r in listed}


async def test_the_email_to_sms_gateway_sends_the_text_through_the_relay(
    relay: Relay,
) -> None:
    from contactcenter.notify.senders import EmailSms, SendError
    from contactcenter.notify.services import sms_gateway

    gateway = EmailSms(MailRelay("127.0.0.1", relay.port, INTAKE), "sms.example.net")
    await gateway.send("(555) 010-2000", "3-1-1: Your request 311-2026-000001 ...")
    ((mail_from, rcpts, msg),) = relay.messages
    assert rcpts == ["5550102000@sms.example.net"] and mail_from == INTAKE
    assert msg.get_content().strip() == "3-1-1: Your request 311-2026-000001 ..."
    with pytest.raises(SendError, match="no digits"):
        await gateway.send("n/a", "x")
    # which gateway the settings choose: the webhook wins, the e-mail one needs a relay
    relay_ = MailRelay("127.0.0.1", relay.port, INTAKE)
    both = load_settings(env={"CC_SMS_WEBHOOK_URL": "https://sms.city.example/send",
                              "CC_SMS_EMAIL_DOMAIN": "sms.example.net"})
    assert getattr(sms_gateway(both, relay_), "name", None) == "webhook"
    mail_only = load_settings(env={"CC_SMS_EMAIL_DOMAIN": "sms.example.net"})
    assert getattr(sms_gateway(mail_only, relay_), "name", None) == "email-gateway"
    assert sms_gateway(mail_only, None) is None
    assert sms_gateway(load_settings(env={}), relay_) is None


async def test_a_webhook_that_refuses_is_retried(
    sessions: async_sessionmaker[AsyncSession], sms: SmsHook,
) -> None:
    from contactcenter.notify.senders import WebhookSms

    await seed_reference(sessions)
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    settings = load_settings(env={"CC_SECRET_KEY": SECRET_KEY})
    store = CaseStore(sessions, None, clock=clock.now)
    notifier = Notifier(sessions, settings, clock, sms=WebhookSms(sms.url))
    case = await store.open_case(NewCase(service_code="pothole", phone="555 010 3000"),
                                 actor="op")
    sms.status = 500
    await notifier.enqueue_change(CaseChanged(
        number=case.number, status="acknowledged", citizen_id=case.citizen_id,
        at=clock.now(), change="acknowledged", public=True))
    assert await notifier.deliver_due() == 0
    async with sessions() as s:
        row = (await s.execute(select(NotifyOutbox))).scalar_one()
    assert row.channel == "sms" and row.last_error == "SMS webhook answered HTTP 500"
    sms.status = 200
    clock.advance(30)
    assert await notifier.deliver_due() == 1
    assert len(sms.got) == 2 and sms.got[1]["to"] == "5550103000"


async def test_changes_the_bus_lost_are_caught_up_from_the_audit_log(
    sessions: async_sessionmaker[AsyncSession], relay: Relay,
) -> None:
    from contactcenter.bus import LocalBus

    await seed_reference(sessions)
    clock = FixedClock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    settings = load_settings(env={"CC_SECRET_KEY": SECRET_KEY, "CC_SMTP_INTAKE_ADDRESS": INTAKE})
    mail = MailRelay("127.0.0.1", relay.port, INTAKE)
    notifier = Notifier(sessions, settings, clock, relay=mail)
    bus = LocalBus()
    bus.subscribe(notifier.on_event, types=(CaseChanged,), name="notifier")
    live = CaseStore(sessions, bus, clock=clock.now)
    deaf = CaseStore(sessions, None, clock=clock.now)  # its events never reach the notifier

    case = await deaf.open_case(NewCase(service_code="pothole", email="di@example.org"),
                                actor="op")
    await deaf.acknowledge(case.number, actor="crew")
    clock.advance(3600)
    # a new installation: an empty outbox, old changes are not told
    assert await notifier.catch_up() == 0
    clock.advance(60)
    await live.add_note(case.number, "Heard live.", author="crew", public=True)
    await bus.drain()
    clock.advance(60)
    await deaf.add_note(case.number, "Lost on the way.", author="crew", public=True)
    clock.advance(1)
    await deaf.add_note(case.number, "internal only", author="crew")
    clock.advance(1)
    await deaf.wait_on_citizen(case.number, actor="crew", note="Lost question?")
    clock.advance(1)
    await deaf.close(case.number, actor="crew", reason="Lost close.")
    clock.advance(60)
    assert await notifier.catch_up() == 3  # noted, waiting, closed; not the live one again
    assert await notifier.catch_up() == 0
    again = Notifier(sessions, settings, clock, relay=mail)  # a restart
    assert await again.catch_up() == 0
    assert await notifier.deliver_due() == 4
    texts = [m.get_content() for _, _, m in relay.messages]
    for words in ("Heard live.", "Lost on the way.", "Lost question?", "Lost close."):
        assert sum(words in t for t in texts) == 1, words
    assert not any("internal only" in t or "received by" in t for t in texts)
    await bus.close()
