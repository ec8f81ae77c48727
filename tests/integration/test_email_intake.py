"""E-mail intake end to end over real SMTP sessions: our aiosmtpd listener in the app, smtplib as
the citizen's mail server (in a thread), and a local aiosmtpd relay that records confirmations."""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import smtplib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from contactcenter.app import create_app
from contactcenter.audit import AuditLog
from contactcenter.cases.keys import CASE_STORE, EMAIL_INTAKE
from contactcenter.cases.models import Case, Citizen
from contactcenter.cases.store import NewCase
from contactcenter.config import load_settings
from contactcenter.keys import SESSIONS
from contactcenter.seed import seed_reference
from tests.conftest import HEALTH, HEALTH_KEY, until

pytestmark = pytest.mark.store

INTAKE = "311@city.example"
ClientFactory = Callable[..., Awaitable[TestClient]]


class Relay:
    """A local SMTP relay that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        msg = email.message_from_bytes(envelope.original_content or b"",
                                       policy=email.policy.default)
        self.messages.append((envelope.mail_from or "", list(envelope.rcpt_tos), msg))
        return "250 OK"

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    r = Relay()
    loop = asyncio.get_running_loop()
    r.server = await loop.create_server(lambda: SMTP(r, loop=loop), "127.0.0.1", 0)
    yield r
    r.server.close()
    await r.server.wait_closed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def make_client(
    aiohttp_client: ClientFactory, url: str, relay_port: int, role: str = "all", **env: str
) -> TestClient:
    settings = load_settings(env={
        "CC_DATABASE_URL": url, "CC_AGI_ENABLED": "false", "CC_AMI_ENABLED": "false",
        "CC_SMTP_HOST": "127.0.0.1",
        "CC_SMTP_PORT": str(free_port()),
        "CC_SMTP_INTAKE_ADDRESS": INTAKE, "CC_SMTP_RELAY_HOST": "127.0.0.1",
        "CC_SMTP_RELAY_PORT": str(relay_port), "CC_SMTP_MAX_BYTES": "20000",
        "CC_HEALTH_API_KEY": HEALTH_KEY, **env,
    })
    client = await aiohttp_client(create_app(settings, role=role))
    await seed_reference(client.app[SESSIONS])
    return client


@pytest.fixture
async def client(aiohttp_client: ClientFactory, migrated_url: str, relay: Relay) -> TestClient:
    return await make_client(aiohttp_client, migrated_url, relay.port)


def message(sender: str = "ana@example.org", subject: str = "[pothole] Hole on Elm St",
            body: str = "A big hole in front of number 12.\nPlease fix.",
            **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = f"Ana Citizen <{sender}>"
    msg["To"] = INTAKE
    msg["Subject"] = subject
    msg["Message-ID"] = "<abc123@example.org>"
    for k, v in headers.items():
        msg[k.replace("_", "-")] = v
    msg.set_content(body)
    return msg


def smtp_session(port: int, steps: Callable[[smtplib.SMTP], Any]) -> Any:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("citizen-mx.example")
        return steps(smtp)


async def send(port: int, raw: bytes, sender: str = "ana@example.org",
               rcpt: str = INTAKE, *, use_size: bool = True) -> tuple[int, bytes]:
    """One whole SMTP transaction; returns the reply to DATA (or to the refused step)."""
    raw = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")  # on the wire: CRLF

    def steps(smtp: smtplib.SMTP) -> tuple[int, bytes]:
        opts = [f"SIZE={len(raw)}"] if use_size else []
        code, text = smtp.mail(sender, opts)
        if code != 250:
            return code, text
        code, text = smtp.rcpt(rcpt)
        if code != 250:
            return code, text
        return smtp.data(raw)

    return await asyncio.wait_for(asyncio.to_thread(smtp_session, port, steps), 20)


async def counts(client: TestClient) -> tuple[int, ...]:
    async with client.app[SESSIONS]() as s:
        return tuple([int((await s.execute(select(func.count()).select_from(m))).scalar_one())
                      for m in (Case, Citizen, AuditLog)])


async def test_mail_becomes_a_case_and_the_sender_gets_its_number(
    client: TestClient, relay: Relay
) -> None:
    store = client.app[CASE_STORE]
    # the same person reported something on the web before: one citizen for both
    web = await store.open_case(NewCase(service_code="missed-pickup", channel="web",
                                        email="ANA@example.org"), actor="open311")
    port = client.app[EMAIL_INTAKE].port
    code, reply = await send(port, message().as_bytes())
    assert code == 250, reply
    number = reply.decode().split("case ", 1)[1].strip()
    case = await store.by_number(number)
    assert case is not None
    assert (case.channel, case.service_code, case.created_by) == ("email", "pothole", "email")
    assert case.description == ("[pothole] Hole on Elm St\n\n"
                                "A big hole in front of number 12.\nPlease fix.")
    assert case.citizen_id == web.citizen_id and case.citizen_email == "ana@example.org"
    assert {c.number for c in await store.open_cases_for_contact(email="ana@example.org")} == {
        web.number, number}

    await until(lambda: relay.messages, timeout=10)
    mail_from, rcpts, confirmation = relay.messages[0]
    assert rcpts == ["ana@example.org"] and mail_from == INTAKE
    assert number in str(confirmation["Subject"])
    assert confirmation["Auto-Submitted"] == "auto-replied"
    assert confirmation["In-Reply-To"] == "<abc123@example.org>"
    text = confirmation.get_content()
    assert number in text and "Pothole" in text and "Department of Public Works" in text
    assert client.app[EMAIL_INTAKE].stats["confirmed"] == 1
    health = await (await client.get("/health", headers=HEALTH)).json()
    assert health["parts"]["email_intake"]["ok"] is True
    assert health["parts"]["email_intake"]["accepted"] == 1


async def test_service_from_subject_tag_else_general_inquiry_and_html_mail(
    client: TestClient, relay: Relay
) -> None:
    store = client.app[CASE_STORE]
    port = client.app[EMAIL_INTAKE].port
    cases = []
    for subject in ("Question about my bill", "[no-such-thing] hello", "Re: [Missed-Pickup]"):
        code, reply = await send(port, message(sender="bo@example.org",
                                               subject=subject).as_bytes())
        assert code == 250, reply
        cases.append(await store.by_number(reply.decode().split("case ", 1)[1].strip()))
    assert [c.service_code for c in cases if c] == ["general-inquiry", "general-inquiry",
                                                    "missed-pickup"]
    html = EmailMessage()
    html["From"] = "cy@example.org"
    html["Subject"] = "Light out"
    html.set_content("<p>The light at <b>5th &amp; Main</b> is out</p>", subtype="html")
    code, reply = await send(port, html.as_bytes(), sender="cy@example.org")
    assert code == 250
    case = await store.by_number(reply.decode().split("case ", 1)[1].strip())
    assert case is not None and "5th & Main" in case.description
    assert "<b>" not in case.description
    await until(lambda: len(relay.messages) == 4, timeout=10)


async def test_refusals_are_smtp_errors_logged_and_write_nothing(
    client: TestClient, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    port = client.app[EMAIL_INTAKE].port
    before = await counts(client)
    caplog.set_level(logging.WARNING, logger="contactcenter.cases.email_intake")

    big = message(body=("x" * 70 + "\n") * 400).as_bytes()
    # announced size too large: refused at MAIL FROM
    code, text = await send(port, big)
    assert code == 552, text
    # size not announced: refused after DATA
    code, text = await send(port, big, use_size=False)
    assert code == 552 and b"Too much mail data" in text, text
    # wrong recipient
    code, text = await send(port, message().as_bytes(), rcpt="someone-else@city.example")
    assert code == 550 and b"no such mailbox" in text
    # no sender (null reverse path) and a sender that is not an address
    code, text = await send(port, message().as_bytes(), sender="")
    assert code == 553 and b"sender address is required" in text, text
    code, text = await send(port, message().as_bytes(), sender="not-an-address")
    assert code == 553 and b"not valid" in text, text
    # undecodable: a charset nobody knows
    raw = (b"From: ana@example.org\r\nSubject: hi\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=x-martian\r\n\r\n\xff\xfe body\r\n")
    code, text = await send(port, raw)
    assert code == 554 and b"could not be decoded" in text
    # nothing to say
    raw = b"From: ana@example.org\r\nSubject: \r\n\r\n\r\n"
    code, text = await send(port, raw)
    assert code == 554 and b"empty message" in text
    # an automatic reply (e.g. a vacation notice answering our confirmation)
    code, text = await send(port, message(Auto_Submitted="auto-replied").as_bytes())
    assert code == 550 and b"automatic replies" in text
    assert await counts(client) == before
    assert relay.messages == []
    refusals = [r for r in caplog.records if "SMTP refused" in r.getMessage()]
    assert len(refusals) >= 8
    assert client.app[EMAIL_INTAKE].stats["refused"] >= 8
    # after all that, the listener still works
    code, _ = await send(port, message().as_bytes())
    assert code == 250


async def test_database_failure_is_a_temporary_error_and_writes_nothing(
    client: TestClient, relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = client.app[CASE_STORE]
    before = await counts(client)

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(store, "open_case", broken)
    code, text = await send(client.app[EMAIL_INTAKE].port, message().as_bytes())
    assert code == 451 and b"try again later" in text
    assert await counts(client) == before and relay.messages == []


async def test_relay_down_keeps_the_case_and_logs(
    aiohttp_client: ClientFactory, migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(aiohttp_client, migrated_url, free_port())  # nothing listens
    caplog.set_level(logging.ERROR, logger="contactcenter.cases.email_intake")
    code, reply = await send(client.app[EMAIL_INTAKE].port, message().as_bytes())
    assert code == 250
    number = reply.decode().split("case ", 1)[1].strip()
    assert await client.app[CASE_STORE].by_number(number) is not None
    assert client.app[EMAIL_INTAKE].stats["confirm_failed"] == 1
    assert any("not sent" in r.getMessage() and number in r.getMessage()
               for r in caplog.records)


async def test_intake_off_when_port_is_zero(
    aiohttp_client: ClientFactory, migrated_url: str
) -> None:
    settings = load_settings(env={"CC_DATABASE_URL": migrated_url, "CC_AGI_ENABLED": "false",
                                  "CC_AMI_ENABLED": "false", "CC_HEALTH_API_KEY": HEALTH_KEY})
    client = await aiohttp_client(create_app(settings))
    assert EMAIL_INTAKE not in client.app
    body = await (await client.get("/health", headers=HEALTH)).json()
    assert "email_intake" not in body["parts"]


async def test_without_a_from_header_the_envelope_sender_is_the_citizen(
    client: TestClient, relay: Relay
) -> None:
    raw = b"Subject: [streetlight-out] dark corner\r\n\r\nThe lamp at the corner is out.\r\n"
    code, reply = await send(client.app[EMAIL_INTAKE].port, raw, sender="Dee@Example.org")
    assert code == 250, reply
    case = await client.app[CASE_STORE].by_number(reply.decode().split("case ", 1)[1].strip())
    assert case is not None and case.service_code == "streetlight-out"
    assert case.citizen_email == "dee@example.org"
    await until(lambda: relay.messages, timeout=10)
    assert relay.messages[0][1] == ["dee@example.org"]


@pytest.mark.parametrize("role", ["bridge", "web"])
async def test_one_listener_per_site_in_the_bridge_not_in_each_web_process(
    aiohttp_client: ClientFactory, migrated_url: str, relay: Relay, role: str
) -> None:
    """Several web processes behind a load balancer would fight over one SMTP port: the
    listener runs where the Asterisk side does, once."""
    client = await make_client(aiohttp_client, migrated_url, relay.port, role=role,
                               CC_AMI_PORT=str(free_port()))
    if role == "web":
        assert EMAIL_INTAKE not in client.app
        return
    code, reply = await send(client.app[EMAIL_INTAKE].port, message().as_bytes())
    assert code == 250, reply
    async with client.app[SESSIONS]() as s:
        assert (await s.execute(select(func.count()).select_from(Case))).scalar_one() == 1
