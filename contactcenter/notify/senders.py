"""How messages leave: e-mail through the relay (`CC_SMTP_RELAY_*`), SMS through one of two
documented gateways. Each `send` raises `SendError` with a one-line reason on failure; the
outbox (services.py) retries."""

from __future__ import annotations

import asyncio
import re
import smtplib
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Protocol

import aiohttp

SEND_TIMEOUT = 10.0


class SendError(Exception):
    """A message was not accepted; the text says why (kept in notify_outbox.last_error)."""


class MailRelay:
    def __init__(self, host: str, port: int, sender: str) -> None:
        self.host = host
        self.port = port
        self.sender = sender  # the intake address: replies come back as notes

    def build(self, to: str, subject: str, body: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = to
        msg["Reply-To"] = self.sender
        msg["Subject"] = subject
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-reply loops
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or "localhost")
        msg.set_content(body)
        return msg

    def _send(self, msg: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=SEND_TIMEOUT) as smtp:
            smtp.send_message(msg, from_addr=self.sender)

    async def send(self, to: str, subject: str, body: str) -> None:
        msg = self.build(to, subject, body)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, msg), SEND_TIMEOUT + 2)
        except (OSError, smtplib.SMTPException, TimeoutError) as exc:
            raise SendError(f"relay {self.host}:{self.port}: {exc!r}"[:380]) from None


class SmsGateway(Protocol):
    name: str

    async def send(self, to: str, text: str) -> None: ...


class WebhookSms:
    """POST {"to": "+15551234567" or digits, "text": "..."} as JSON to `CC_SMS_WEBHOOK_URL`;
    any 2xx is accepted. A city points it at its SMS provider (directly or through a small
    adapter)."""

    name = "webhook"

    def __init__(self, url: str) -> None:
        self.url = url

    async def send(self, to: str, text: str) -> None:
        timeout = aiohttp.ClientTimeout(total=SEND_TIMEOUT)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, \
                    http.post(self.url, json={"to": to, "text": text}) as resp:
                if not 200 <= resp.status < 300:
                    raise SendError(f"SMS webhook answered HTTP {resp.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SendError(f"SMS webhook: {exc!r}"[:380]) from None


class EmailSms:
    """An e-mail-to-SMS gateway: the text goes by the relay to <digits>@`CC_SMS_EMAIL_DOMAIN`."""

    name = "email-gateway"

    def __init__(self, relay: MailRelay, domain: str) -> None:
        self.relay = relay
        self.domain = domain

    async def send(self, to: str, text: str) -> None:
        digits = re.sub(r"\D", "", to)
        if not digits:
            raise SendError(f"no digits in phone number {to[:40]!r}")
        await self.relay.send(f"{digits}@{self.domain}", "3-1-1", text)
