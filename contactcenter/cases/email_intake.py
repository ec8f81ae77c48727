"""E-mail intake: an SMTP listener (aiosmtpd) that turns a message to the intake address into a
case (channel `email`) and mails the sender a confirmation with the case number.

Refusals are SMTP replies, so the sending server keeps or bounces the mail and nothing is lost:
oversized mail 552 (aiosmtpd enforces the size, also announced in EHLO), a wrong recipient 550,
a missing or invalid sender 501/553, undecodable or empty mail 554, automatic replies 550, and a
database failure 451 (try again later). The case, its citizen and its audit entry are one
transaction; the confirmation is sent after the commit, and a relay failure is logged, not
fatal (the case exists and the SMTP reply already carries its number).

A message whose subject names an existing case (`311-2026-000123`: a reply to a confirmation or
to a notification, contactcenter/notify) becomes an internal note on that case, never a new
case; the quoted part of the reply is left out.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import html
import logging
import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ..config import Settings
from .citizens import normalize_email
from .open311 import MAX_DESCRIPTION, w3
from .store import CaseError, CaseStore, CaseView, NewCase

log = logging.getLogger(__name__)

DEFAULT_SERVICE = "general-inquiry"
SERVICE_TAG = re.compile(r"\[\s*([A-Za-z0-9][A-Za-z0-9_-]{0,79})\s*\]")
# a reply to a confirmation or a notification names its case in the subject
CASE_IN_SUBJECT = re.compile(r"(?<![\d-])(311-\d{4}-\d{6,})(?!\d)")
_QUOTE_HEADER = re.compile(r"^(On .{0,300} wrote:|El .{0,300} escribió:)\s*$", re.M)
_TAGS = re.compile(r"<[^>]*>")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
CONFIRM_TIMEOUT = 10.0
MAX_REPLY = 3500  # characters of a reply kept in its note (a note holds 4000)


class MailRefused(Exception):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True, slots=True)
class IncomingMail:
    sender: str
    subject: str
    body: str
    message_id: str | None

    @property
    def description(self) -> str:
        text = (self.subject + "\n\n" + self.body).strip() if self.body else self.subject
        if len(text) > MAX_DESCRIPTION:
            text = text[: MAX_DESCRIPTION - 12].rstrip() + "\n[truncated]"
        return text

    def case_number(self) -> str | None:
        m = CASE_IN_SUBJECT.search(self.subject)
        return m.group(1) if m else None

    def reply_text(self) -> str:
        """The new part of a reply: without the quoted message (> lines, "On ... wrote:")."""
        head = _QUOTE_HEADER.split(self.body, maxsplit=1)[0]
        lines = [ln for ln in head.splitlines() if not ln.lstrip().startswith(">")]
        text = "\n".join(lines).strip() or self.subject
        return text[:MAX_REPLY] + ("\n[truncated]" if len(text) > MAX_REPLY else "")

    def service_tag(self) -> str | None:
        m = SERVICE_TAG.search(self.subject)
        return m.group(1).lower() if m else None


def read_message(raw: bytes, envelope_sender: str | None) -> IncomingMail:
    """Parse and check one message; MailRefused carries the SMTP reply for bad mail."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        auto = str(msg.get("Auto-Submitted", "") or "").strip().lower()
        sender = None
        from_header = msg.get("From")
        if from_header is not None and getattr(from_header, "addresses", None):
            sender = normalize_email(from_header.addresses[0].addr_spec)
        sender = sender or normalize_email(envelope_sender)
        subject = " ".join(str(msg.get("Subject", "") or "").split())
        part = msg.get_body(preferencelist=("plain", "html"))
        body = ""
        if part is not None:
            content = part.get_content()
            if not isinstance(content, str):
                raise MailRefused("554 5.6.0 the message has no readable text")
            body = content
            if part.get_content_subtype() == "html":
                body = html.unescape(_TAGS.sub(" ", body))
        message_id = str(msg.get("Message-ID", "") or "").strip() or None
    except MailRefused:
        raise
    except LookupError as exc:  # an unknown charset
        raise MailRefused(f"554 5.6.0 the message could not be decoded ({exc})") from None
    except Exception as exc:  # the email package raises many types on broken input
        log.warning("unreadable message from %s: %r", envelope_sender, exc)
        raise MailRefused("554 5.6.0 the message could not be read") from None
    if auto and auto != "no":
        raise MailRefused("550 5.7.1 automatic replies are not accepted here")
    if sender is None:
        raise MailRefused("553 5.1.7 the message has no usable sender address")
    body = _CONTROL.sub("", body).replace("\r\n", "\n").strip()
    if body.count("\ufffd") > max(3, len(body) // 10):
        raise MailRefused("554 5.6.0 the message text could not be decoded")
    subject = _CONTROL.sub("", subject)
    if not subject and not body:
        raise MailRefused("554 5.6.0 an empty message cannot become a request")
    return IncomingMail(sender, subject[:400], body, message_id)


def confirmation(settings: Settings, mail: IncomingMail, view: CaseView) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.smtp_intake_address
    msg["To"] = mail.sender
    msg["Subject"] = f"Your 3-1-1 request {view.number}"
    msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: no auto-reply loops
    msg["Message-ID"] = make_msgid(domain=settings.smtp_intake_address.rpartition("@")[2]
                                   or "localhost")
    if mail.message_id:
        msg["In-Reply-To"] = mail.message_id
        msg["References"] = mail.message_id
    due = w3(view.sla_due_at)
    msg.set_content(
        f"Thank you. Your request has been received as case {view.number}.\n\n"
        f"Service: {view.service_name}\n"
        f"Handled by: {view.agency_name or '3-1-1'}\n"
        + (f"Expected by: {due}\n" if due else "")
        + f"\nPlease quote {view.number} when you call 3-1-1 or write to us about it.\n"
    )
    return msg


def _send(host: str, port: int, msg: EmailMessage, sender: str) -> None:
    with smtplib.SMTP(host, port, timeout=CONFIRM_TIMEOUT) as smtp:
        smtp.send_message(msg, from_addr=sender)


class IntakeHandler:
    """aiosmtpd hooks: check the envelope, then make the case and confirm it."""

    def __init__(self, store: CaseStore, settings: Settings, stats: dict[str, int]) -> None:
        self.store = store
        self.settings = settings
        self.intake = settings.smtp_intake_address.strip().lower()
        self.stats = stats

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        mail_options: list[str],
    ) -> str:
        if address.strip() in ("", "<>"):
            # a bounce or auto-reply: it is not a citizen's request and has no one to confirm to
            return "553 5.1.7 a sender address is required"
        if normalize_email(address) is None:
            return "553 5.1.7 the sender address is not valid"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.strip().lower() != self.intake:
            return f"550 5.1.1 <{address[:100]}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        try:
            mail = read_message(raw, envelope.mail_from)
        except MailRefused as exc:
            return exc.reply
        number = mail.case_number()
        if number is not None:
            noted = await self.reply_note(mail, number)
            if noted is not None:
                return noted
        code = mail.service_tag()
        if code is None or await self.store.service_type(code) is None:
            code = DEFAULT_SERVICE
        try:
            view = await self.store.open_case(
                NewCase(service_code=code, channel="email", description=mail.description,
                        email=mail.sender, origin={"message_id": mail.message_id}),
                actor="email",
            )
        except CaseError as exc:
            log.error("e-mail intake cannot open a case (%s); the sender will retry", exc)
            return "451 4.3.0 the request cannot be recorded right now; try again later"
        except Exception:
            log.exception("e-mail intake: storing a case failed; the sender will retry")
            return "451 4.3.0 the request cannot be recorded right now; try again later"
        self.stats["accepted"] += 1
        log.info("e-mail from %s became case %s (%s)", mail.sender, view.number, code)
        await self.confirm(mail, view)
        return f"250 OK case {view.number}"

    async def reply_note(self, mail: IncomingMail, number: str) -> str | None:
        """A reply about an existing case becomes an internal note on it (staff read it; it is
        not shown publicly), never a new case. None: no such case, so the mail is a new one."""
        try:
            if await self.store.by_number(number) is None:
                return None
            await self.store.add_note(
                number, f"E-mail from {mail.sender}:\n\n{mail.reply_text()}",
                author="citizen", public=False)
        except CaseError as exc:
            log.error("e-mail reply to %s not noted (%s)", number, exc)
            return "451 4.3.0 the reply cannot be recorded right now; try again later"
        except Exception:
            log.exception("e-mail intake: noting a reply to %s failed; the sender will retry",
                          number)
            return "451 4.3.0 the reply cannot be recorded right now; try again later"
        self.stats["replies"] += 1
        log.info("e-mail from %s became a note on %s", mail.sender, number)
        return f"250 OK noted on case {number}"

    async def confirm(self, mail: IncomingMail, view: CaseView) -> None:
        if not self.settings.smtp_relay_host:
            log.info("no SMTP relay configured: no confirmation for %s", view.number)
            return
        msg = confirmation(self.settings, mail, view)
        try:
            await asyncio.wait_for(
                asyncio.to_thread(_send, self.settings.smtp_relay_host,
                                  self.settings.smtp_relay_port, msg,
                                  self.settings.smtp_intake_address),
                CONFIRM_TIMEOUT + 2,
            )
            self.stats["confirmed"] += 1
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            self.stats["confirm_failed"] += 1
            log.error("confirmation of %s to %s not sent: %s", view.number, mail.sender, exc)


class IntakeSMTP(SMTP):
    """aiosmtpd's server; every refusal (4xx/5xx), its own or ours, is logged once here."""

    stats: dict[str, int]
    on_lost: Any = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.on_lost is not None:
            self.on_lost(self)

    async def push(self, status: Any) -> None:
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if text[:1] in ("4", "5"):
            self.stats["refused"] += 1
            peer = self.session.peer if self.session is not None else None
            sender = self.envelope.mail_from if self.envelope is not None else None
            log.warning("SMTP refused (peer %s, sender %s): %s", peer, sender, text)
        await super().push(status)


class EmailIntake:
    """The listener's lifetime: `start()` in a cleanup context, `stop()` when it unwinds."""

    def __init__(self, store: CaseStore, settings: Settings) -> None:
        self.settings = settings
        self.stats = {"accepted": 0, "refused": 0, "confirmed": 0, "confirm_failed": 0,
                      "replies": 0}
        self.handler = IntakeHandler(store, settings, self.stats)
        self._server: asyncio.Server | None = None
        self._protocols: set[IntakeSMTP] = set()

    def _protocol(self) -> IntakeSMTP:
        proto = IntakeSMTP(
            self.handler,
            data_size_limit=self.settings.smtp_max_bytes,
            hostname=self.settings.smtp_intake_address.rpartition("@")[2] or "localhost",
            ident="contactcenter 3-1-1 intake",
            timeout=60,
            loop=asyncio.get_running_loop(),
        )
        proto.stats = self.stats
        proto.on_lost = self._protocols.discard
        self._protocols.add(proto)
        return proto

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            host or self.settings.smtp_host,
            self.settings.smtp_port if port is None else port,
        )
        log.info("e-mail intake listening on %s:%d for %s", host or self.settings.smtp_host,
                 self.port, self.settings.smtp_intake_address)
        return self.port

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for proto in list(self._protocols):
            if proto.transport is not None:
                proto.transport.close()
            task = getattr(proto, "_handler_coroutine", None)
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._protocols.clear()
        await self._server.wait_closed()
        self._server = None

    def health(self) -> dict[str, Any]:
        return {"ok": self._server is not None, "port": self.port if self._server else None,
                **self.stats}
