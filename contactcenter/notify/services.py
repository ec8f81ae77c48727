"""The notifier: public case changes become outbox rows, a sender delivers them with retries,
and once a day each agency gets its digest of at-risk and overdue cases.

Why an outbox: the case change is already committed when `CaseChanged` arrives; the message is
written to `notify_outbox` first and sent after, so a relay or SMS provider that is down delays
a message (retried with back-off, `CC_NOTIFY_ATTEMPTS` tries) but never loses it, a restart
resumes where it stopped, and `key` (change + channel, or agency + day) makes each message
exactly once even if an event or a digest run is repeated.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..agency.models import Agency
from ..audit import AuditLog
from ..cases.models import Case, CaseNote
from ..cases.store import CHANGE_OF, PUBLIC_STATUSES, CaseStore, CaseView
from ..clock import Clock
from ..config import Settings
from ..events import CaseChanged, Event
from . import messages
from .models import NotifyOptOut, NotifyOutbox
from .optout import make_token
from .senders import EmailSms, MailRelay, SendError, SmsGateway, WebhookSms

log = logging.getLogger(__name__)

BATCH = 50
POLL_SECONDS = 5.0  # the sender looks for due messages at least this often
FIRST_RETRY = 30.0  # seconds; doubles per attempt, at most MAX_RETRY
MAX_RETRY = 3600.0
DIGEST_LIMIT = 500  # cases listed per agency
CATCH_UP_EVERY = 60.0  # seconds between scans of the audit log for changes the bus lost
CATCH_UP_OVERLAP = timedelta(minutes=10)  # re-read: a change's commit can lag its time
CATCH_UP_MAX = timedelta(days=1)  # after a long stop, older changes are not told any more


def base_url(settings: Settings) -> str:
    return (settings.public_url or f"http://{settings.http_host}:{settings.http_port}").rstrip("/")


def sms_gateway(settings: Settings, relay: MailRelay | None) -> SmsGateway | None:
    """The webhook when `CC_SMS_WEBHOOK_URL` is set, else the e-mail gateway when
    `CC_SMS_EMAIL_DOMAIN` (and a relay) is, else no SMS."""
    if settings.sms_webhook_url:
        return WebhookSms(settings.sms_webhook_url)
    if settings.sms_email_domain and relay is not None:
        return EmailSms(relay, settings.sms_email_domain)
    return None


@dataclass(slots=True)
class Stats:
    queued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    opted_out: int = 0


class Notifier:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock,
        *, relay: MailRelay | None = None, sms: SmsGateway | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.relay = relay
        self.sms = sms
        self.store = CaseStore(sessions, None, clock=clock.now, timezone=settings.timezone)
        self.stats = Stats()
        self.wake = asyncio.Event()
        self._digest_day: date | None = None
        self._caught_up_to: datetime | None = None
        self._catch_up_floor = datetime.min.replace(tzinfo=self.zone)
        self.last_error: str | None = None

    @classmethod
    def from_settings(
        cls, sessions: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock
    ) -> Notifier:
        relay = MailRelay(settings.smtp_relay_host, settings.smtp_relay_port,
                          settings.smtp_intake_address) if settings.smtp_relay_host else None
        return cls(sessions, settings, clock, relay=relay, sms=sms_gateway(settings, relay))

    # --- case changes -> outbox -------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        if isinstance(event, CaseChanged) and event.public:
            await self.enqueue_change(event)

    async def enqueue_change(self, event: CaseChanged) -> int:
        """Outbox rows for one public change (e-mail and/or SMS); how many were new."""
        view = await self.store.by_number(event.number)
        if view is None or view.citizen_id is None:
            return 0
        async with self.sessions() as session:
            if await session.get(NotifyOptOut, view.citizen_id) is not None:
                self.stats.opted_out += 1
                log.info("%s: citizen opted out, not told of %s", event.number, event.change)
                return 0
        rows = self._citizen_messages(event, view)
        if not rows:
            log.info("%s: no way to reach the citizen (no e-mail, no SMS gateway)", event.number)
            return 0
        added = await self._insert(rows)
        self.stats.queued += added
        self.wake.set()
        return added

    def _citizen_messages(self, event: CaseChanged, view: CaseView) -> list[dict[str, Any]]:
        assert view.citizen_id is not None
        base = base_url(self.settings)
        token = make_token(self.settings.secret_key, view.citizen_id)
        words: dict[str, Any] = dict(
            change=event.change, language=view.language, number=view.number,
            service=view.service_name, agency=view.agency_name, note=event.note,
            optout_url=f"{base}/notify/optout/{token}")
        key = f"{event.number}:{event.change}:{event.at.isoformat()}"
        now = self.clock.now()
        out: list[dict[str, Any]] = []
        if view.citizen_email and self.relay is not None:
            msg = messages.citizen_email(**words, status_url=f"{base}/status/{view.number}")
            out.append(dict(key=f"{key}:email", channel="email", recipient=view.citizen_email,
                            subject=msg.subject, body=msg.body))
        if view.citizen_phone and self.sms is not None:
            out.append(dict(key=f"{key}:sms", channel="sms", recipient=view.citizen_phone,
                            subject="", body=messages.citizen_sms(**words)))
        for row in out:
            row.update(case_number=view.number, attempts=0, next_attempt_at=now,
                       created_at=now)
        return out

    async def _insert(self, rows: list[dict[str, Any]]) -> int:
        async with self.sessions() as session, session.begin():
            dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
            ins: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
            added = 0
            for row in rows:
                result = await session.execute(
                    ins(NotifyOutbox).values(**row).on_conflict_do_nothing(
                        index_elements=["key"]))
                added += int(getattr(result, "rowcount", 0) or 0)
        return added

    async def catch_up(self) -> int:
        """Outbox rows for public changes the bus did not bring (this process was down or
        behind; Redis pub/sub keeps nothing), rebuilt from the audit log and the notes, which
        the store writes in the change's own transaction. The rebuilt key is the live one, so
        a change already handled is not sent twice. The first run on an empty outbox starts
        from now (a new installation does not tell citizens about old changes)."""
        now = self.clock.now()
        if self._caught_up_to is None:
            async with self.sessions() as session:
                newest = (await session.execute(
                    select(func.max(NotifyOutbox.created_at)))).scalar_one_or_none()
            if newest is None:
                self._caught_up_to = self._catch_up_floor = now
                return 0
            self._catch_up_floor = now - CATCH_UP_MAX
            self._caught_up_to = max(newest, self._catch_up_floor)
        since = max(self._caught_up_to - CATCH_UP_OVERLAP, self._catch_up_floor)
        added = 0
        for event in await self._public_changes_since(since):
            added += await self.enqueue_change(event)
        self._caught_up_to = now
        if added:
            log.warning("notifier: %d message(s) for changes the bus did not bring", added)
        return added

    async def _public_changes_since(self, since: datetime) -> list[CaseChanged]:
        async with self.sessions() as session:
            rows = (await session.execute(
                select(AuditLog).where(
                    AuditLog.at > since, AuditLog.entity == "case",
                    AuditLog.action.in_(("case.status", "case.noted", "case.waiting")))
                .order_by(AuditLog.at, AuditLog.id)
            )).scalars().all()
            out: list[CaseChanged] = []
            for row in rows:
                detail = row.detail or {}
                number = row.entity_id or ""
                if row.action == "case.status":
                    change = CHANGE_OF.get(str(detail.get("to")), "")
                    if detail.get("to") not in PUBLIC_STATUSES:
                        continue
                    note = str(detail.get("note") or detail.get("reason") or "")
                else:
                    if row.action == "case.noted" and not detail.get("public"):
                        continue
                    change = "noted" if row.action == "case.noted" else "waiting"
                    note = (await session.execute(
                        select(CaseNote.body).join(Case, Case.id == CaseNote.case_id)
                        .where(Case.number == number, CaseNote.public.is_(True),
                               CaseNote.created_at == row.at).limit(1)
                    )).scalar_one_or_none() or ""
                out.append(CaseChanged(number=number, status="", citizen_id=None, at=row.at,
                                       change=change, public=True, note=note,
                                       actor=row.actor))
        return out

    # --- the sender ---------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Try every message that is due once; returns how many were sent."""
        now = self.clock.now()
        async with self.sessions() as session:
            due = (await session.execute(
                select(NotifyOutbox)
                .where(NotifyOutbox.sent_at.is_(None), NotifyOutbox.failed_at.is_(None),
                       NotifyOutbox.next_attempt_at <= now)
                .order_by(NotifyOutbox.next_attempt_at, NotifyOutbox.id).limit(BATCH)
            )).scalars().all()
        sent = 0
        for row in due:
            error = await self._send(row)
            sent += error is None
            await self._record(row.id, error)
        return sent

    async def _send(self, row: NotifyOutbox) -> str | None:
        try:
            if row.channel == "sms":
                if self.sms is None:
                    raise SendError("no SMS gateway configured")
                await self.sms.send(row.recipient, row.body)
            else:
                if self.relay is None:
                    raise SendError("no SMTP relay configured (CC_SMTP_RELAY_HOST)")
                await self.relay.send(row.recipient, row.subject, row.body)
        except SendError as exc:
            return str(exc)
        return None

    async def _record(self, row_id: int, error: str | None) -> None:
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            row = await session.get(NotifyOutbox, row_id)
            if row is None:
                return
            row.attempts += 1
            if error is None:
                row.sent_at = now
                row.last_error = None
                self.stats.sent += 1
                log.info("sent %s %s (%s)", row.channel, row.case_number or row.key, row.id)
                return
            row.last_error = error[:400]
            self.last_error = error
            if row.attempts >= self.settings.notify_attempts:
                row.failed_at = now
                self.stats.failed += 1
                log.error("gave up on %s message %d (%s) after %d tries: %s", row.channel,
                          row.id, row.case_number or row.key, row.attempts, error)
            else:
                wait = min(FIRST_RETRY * 2 ** (row.attempts - 1), MAX_RETRY)
                row.next_attempt_at = now + timedelta(seconds=wait)
                self.stats.retried += 1
                log.warning("%s message %d (%s) not sent (try %d of %d, again in %gs): %s",
                            row.channel, row.id, row.case_number or row.key, row.attempts,
                            self.settings.notify_attempts, wait, error)

    # --- the agencies' digest -----------------------------------------------------------------

    def digest_due(self, now: datetime) -> date | None:
        """The local day whose digest is due at `now` (after CC_SLA_DIGEST_TIME), else None."""
        if not self.settings.sla_digest_time or self.relay is None:
            return None  # no digest time set, or no relay to send it by
        local = now.astimezone(self.zone)
        if local.strftime("%H:%M") < self.settings.sla_digest_time:
            return None
        return None if self._digest_day == local.date() else local.date()

    async def digest(self, day: date) -> int:
        """Queue each agency's digest of `day` (agencies with an e-mail and something at risk or
        overdue); once per agency and day, however often it runs."""
        async with self.sessions() as session:
            agencies = (await session.execute(
                select(Agency).where(Agency.email.is_not(None)).order_by(Agency.code)
            )).scalars().all()
        now = self.clock.now()
        rows = []
        for agency in agencies:
            watch = await self.store.sla_watch(DIGEST_LIMIT, agency=agency.code)
            if not watch or not agency.email:
                continue
            lines = [messages.DigestLine(v.number, st, v.service_name, v.sla_due_at, v.address)
                     for v, st in watch if v.sla_due_at is not None]
            msg = messages.agency_digest(agency.name, day.isoformat(), lines, self.zone,
                                         base_url(self.settings))
            rows.append(dict(key=f"digest:{agency.code}:{day.isoformat()}", channel="email",
                             recipient=agency.email, subject=msg.subject, body=msg.body,
                             case_number=None, attempts=0, next_attempt_at=now, created_at=now))
        added = await self._insert(rows) if rows else 0
        self._digest_day = day
        if added:
            self.stats.queued += added
            self.wake.set()
        return added

    # --- the loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver due messages, catch up on lost changes, and queue the digest when it is
        time, until cancelled."""
        caught_up = -1e9
        while True:
            try:
                if time.monotonic() - caught_up >= CATCH_UP_EVERY:
                    await self.catch_up()
                    caught_up = time.monotonic()
                day = self.digest_due(self.clock.now())
                if day is not None:
                    await self.digest(day)
                await self.deliver_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away: try again shortly
                self.last_error = repr(exc)[:400]
                log.warning("notifier: %r; retrying in %gs", exc, POLL_SECONDS)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass

    def health(self) -> dict[str, Any]:
        return {"ok": True, "email": self.relay is not None,
                "sms": self.sms.name if self.sms is not None else None,
                "queued": self.stats.queued, "sent": self.stats.sent,
                "retried": self.stats.retried, "failed": self.stats.failed,
                "opted_out": self.stats.opted_out, "last_error": self.last_error}
