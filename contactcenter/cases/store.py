"""The case store's services: lifecycle, public numbers, SLAs, agencies, notes, audit, API keys.

Every write runs in one transaction together with its audit entry, and `CaseChanged` is published
on the bus only after the commit, so a subscriber never sees a change that was rolled back.
Time comes in from a clock the store is given (tests pass a fixed one).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, and_, exists, false, func, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from ..agency.models import Agency
from ..audit import audit
from ..bus import BaseBus
from ..clock import SYSTEM
from ..events import CaseChanged
from ..queues.models import ServiceType
from ..security import hash_api_key, new_api_key
from ..web.api_keys import active_api_key
from ..web.models import ApiKey, User
from . import sla
from .citizens import match_citizen
from .models import (
    CASE_STATUSES,
    CHANNELS,
    Case,
    CaseEvent,
    CaseMedia,
    CaseNote,
    CaseSequence,
    CaseSlaPause,
    Citizen,
    ResolutionCode,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Forward only; any step may be skipped (a call taker can close on first contact). A closed case
# changes only through `reopen` (back to open, with a reason), never through `transition`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "in_progress", "closed"}),
    "acknowledged": frozenset({"in_progress", "closed"}),
    "in_progress": frozenset({"closed"}),
    # left by resume() (back to the status it had) or by closing
    "waiting_citizen": frozenset({"closed"}),
    "closed": frozenset(),
}
# what a status change is called on the bus, and whether the citizen is told of it
CHANGE_OF = {"acknowledged": "acknowledged", "in_progress": "started", "closed": "closed"}
PUBLIC_STATUSES = frozenset({"acknowledged", "closed"})
NUMBER_RE = re.compile(r"^311-(\d{4})-(\d{6,})$")
MAX_NOTE = 4000
MAX_REASON = 200


# --- domain errors ------------------------------------------------------------------------------


class CaseError(Exception):
    """A request the case rules refuse; the message says why (shown to the user)."""


class CaseNotFound(CaseError):
    pass


class IllegalTransition(CaseError):
    pass


class UnknownServiceType(CaseError):
    pass


class UnknownAgency(CaseError):
    pass


class InvalidCaseData(CaseError):
    pass


# --- pure rules ---------------------------------------------------------------------------------


def check_transition(current: str, target: str, reason: str | None) -> str | None:
    """Validate a status change; returns the cleaned close reason (None unless closing)."""
    if target not in CASE_STATUSES:
        raise IllegalTransition(f"unknown status {target!r} (one of {', '.join(CASE_STATUSES)})")
    if target == current:
        raise IllegalTransition(f"the case is already {current}")
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"a case that is {current} cannot become {target}")
    if target == "closed":
        cleaned = (reason or "").replace("\x00", "").strip()
        if not cleaned:
            raise IllegalTransition("closing a case needs a reason")
        if len(cleaned) > MAX_REASON:
            raise IllegalTransition(f"the close reason is longer than {MAX_REASON} characters")
        return cleaned
    return None


def sla_rule(stype: ServiceType, agency: Agency | None, timezone: str) -> sla.SlaRule:
    """The service's SLA clock; a business-hours service of an agency whose calendar cannot be
    read counts calendar hours (logged), so a typo never stops a case from being opened."""
    try:
        return sla.rule_for(stype.sla_hours, stype.sla_mode,
                            agency.office_hours if agency else None,
                            agency.holidays if agency else None, timezone)
    except sla.SlaConfigError as exc:
        log.error("SLA of %s: %s; counting calendar hours", stype.code, exc)
        return sla.SlaRule(float(stype.sla_hours))


def language_of(value: str | None) -> str:
    """en or es from whatever a channel knows ("es", "es-MX", "spa", "Spanish"...); else en."""
    low = (value or "").strip().lower()
    return "es" if low[:2] == "es" or low.startswith("spa") else "en"


def format_number(year: int, seq: int) -> str:
    return f"311-{year:04d}-{seq:06d}"


def is_case_number(value: str) -> bool:
    return bool(NUMBER_RE.match(value))


_LOOSE_NUMBER = re.compile(r"^(?:311\D*)?((?:19|20)\d\d)\D+(\d{1,9})$")


def normalize_case_number(text: str) -> str | None:
    """Any reasonable spelling of a case number as people type or read it, or None:
    "311-2026-000423", "3112026000423", "2026000423", "311 2026 423", "2026-423", "#2026/423".
    Only the year and the sequence count, so a number can never be guessed into another."""
    value = text.strip().strip("#").strip()
    if len(value) > 40:
        return None
    digits = re.sub(r"\D", "", value)
    if value.isdigit():
        whole = digits[3:] if len(digits) == 13 and digits.startswith("311") else digits
        if len(whole) == 10 and whole[:2] in ("19", "20"):
            return format_number(int(whole[:4]), int(whole[4:]))
    match = _LOOSE_NUMBER.match(value)
    if match:
        seq = int(match.group(2))
        return format_number(int(match.group(1)), seq) if seq > 0 else None
    return None


# --- inputs and views ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewCase:
    """What a channel (phone console, Open311, e-mail) hands the store to open a case."""

    service_code: str
    channel: str = "phone"
    description: str = ""
    address: str | None = None
    address_id: str | None = None
    lat: float | None = None
    long: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    media_url: str | None = None
    phone: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    citizen_id: int | None = None  # when the caller is already known (screen pop)
    origin: dict[str, Any] = field(default_factory=dict)  # device_id, api key id...: audit only
    staff_note: str | None = None  # written as an internal note (contact details not kept)
    media_key: str | None = None  # an uploaded photo (CaseMedia) this case takes
    language: str | None = None  # the citizen's (the call's LANG, the form's): en or es


@dataclass(frozen=True, slots=True)
class NoteView:
    author: str
    body: str
    public: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CaseView:
    """A case with what the console, the status page and Open311 show about it."""

    id: int
    number: str
    token: str
    status: str
    close_reason: str | None
    channel: str
    service_code: str
    service_name: str
    agency_code: str | None
    agency_name: str | None
    citizen_id: int | None
    description: str
    address: str | None
    address_id: str | None
    lat: float | None
    long: float | None
    attributes: dict[str, Any]
    media_url: str | None
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    sla_due_at: datetime | None
    created_by: str | None
    notes: tuple[NoteView, ...] = ()
    citizen_phone: str | None = None  # personal: staff views only, never public output
    citizen_email: str | None = None
    language: str = "en"
    sla_rule: sla.SlaRule | None = None  # the service's clock (business hours or calendar)
    paused_since: datetime | None = None  # waiting on the citizen since
    assignee: str | None = None  # the username in the agency working it
    resolution_code: str | None = None

    def sla(self, now: datetime) -> str:
        """ok, at_risk, overdue, paused, closed or none: the one definition (cases/sla.py)."""
        return sla.state(self.status, self.sla_due_at, now, self.sla_rule, self.paused_since)

    @property
    def public_notes(self) -> tuple[NoteView, ...]:
        return tuple(n for n in self.notes if n.public)


@dataclass(frozen=True, slots=True)
class PublicUpdate:
    """One change the citizen may see (a public history row): the status page's timeline and
    Open311's servicerequestupdates."""

    id: int
    number: str
    at: datetime
    change: str
    status: str  # the case's status after the change
    code: str | None  # the resolution code, for a close
    note: str
    known: tuple[str | None, str | None] = (None, None)  # the citizen's e-mail, phone: masked
    agency_name: str | None = None  # of the agency that had the case then


# --- the store ----------------------------------------------------------------------------------


class CaseStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: BaseBus | None = None,
        *,
        clock: Clock,
        timezone: str = "UTC",  # the center's (CC_TIMEZONE): agencies' business hours
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.clock = clock
        self.tz = timezone

    async def _publish(self, view: CaseView, change: str, at: datetime, *, actor: str,
                       public: bool = False, note: str = "") -> None:
        if self.bus is None:
            return
        await self.bus.publish(
            CaseChanged(number=view.number, status=view.status, citizen_id=view.citizen_id,
                        at=at, change=change, public=public, note=note, actor=actor[:80],
                        agency=view.agency_code)
        )

    # --- writes ---

    async def open_case(self, data: NewCase, *, actor: str) -> CaseView:
        if data.channel not in CHANNELS:
            raise InvalidCaseData(f"unknown channel {data.channel!r}")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            stype = await _service_type(session, data.service_code)
            agency = None if stype.agency_id is None else await session.get(Agency, stype.agency_id)
            # The number first: on SQLite this takes the write lock before anything else.
            number = await next_case_number(session, now.year)
            citizen_id = data.citizen_id
            if citizen_id is None:
                citizen = await match_citizen(
                    session, phone=data.phone, email=data.email,
                    first_name=data.first_name, last_name=data.last_name,
                )
                citizen_id = citizen.id if citizen is not None else None
            case = Case(
                number=number,
                token=secrets.token_urlsafe(24),
                service_type_id=stype.id,
                agency_id=stype.agency_id,
                citizen_id=citizen_id,
                status="open",
                channel=data.channel,
                description=data.description,
                address=data.address,
                address_id=data.address_id,
                lat=data.lat,
                long=data.long,
                attributes=dict(data.attributes),
                media_url=data.media_url,
                sla_due_at=sla_rule(stype, agency, self.tz).due(now),
                # the call's LANG, the web form's language (its origin), else English
                language=language_of(data.language or data.origin.get("lang")),
                created_by=actor,
                created_at=now,
                updated_at=now,
            )
            session.add(case)
            await session.flush()
            if data.staff_note:
                session.add(CaseNote(case_id=case.id, author=actor[:80],
                                     body=data.staff_note[:MAX_NOTE], public=False,
                                     created_at=now))
            if data.media_key is not None:
                # the photo becomes the case's in the same transaction, or stays unclaimed
                claimed = await session.execute(
                    update(CaseMedia)
                    .where(CaseMedia.key == data.media_key, CaseMedia.case_id.is_(None))
                    .values(case_id=case.id)
                    .execution_options(synchronize_session=False)
                )
                if cast("CursorResult[Any]", claimed).rowcount != 1:
                    raise InvalidCaseData("the photo was not found or belongs to another case")
            _audit(session, actor, "case.created", number, now, {
                "service": stype.code, "channel": data.channel, "citizen_id": citizen_id,
                **data.origin,
            })
            _history(session, case.id, now, actor, "created", None, "open",
                     to_agency=await _agency_code(session, stype.agency_id))
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "created", now, actor=actor)
        return view

    async def transition(
        self, number: str, target: str, *, actor: str, reason: str | None = None,
        code: str | None = None,
    ) -> CaseView:
        """A forward status change. Closing needs `reason`, the public resolution note the
        citizen reads (status page, Open311 status_notes), and takes a resolution `code`."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            cleaned = check_transition(case.status, target, reason)
            if code is not None:
                await _resolution(session, code)
            before = case.status
            values: dict[str, Any] = {"status": target, "updated_at": now}
            if target == "closed":
                values.update(close_reason=cleaned, closed_at=now, resolution_code=code)
            if before == "waiting_citizen":  # closed while waiting: the pause ends here
                values["sla_due_at"] = await _end_pause(session, case, now, self.tz)
            await _guarded_update(session, case.id, Case.status == before, values)
            _audit(session, actor, "case.status", number, now,
                   {"from": before, "to": target, "reason": cleaned, "code": code})
            agency = await _agency_code(session, case.agency_id)
            change = CHANGE_OF.get(target, "updated")
            public, note = _public_text(change, cleaned, agency_name=await _agency_name(
                session, case.agency_id))
            # the history row of "started" is public too: the status page shows work began
            # (the citizen is not messaged for it: CaseChanged.public stays False)
            _history(session, case.id, now, actor, change, before, target, to_agency=agency,
                     reason=code, note=note or None, public=public or change == "started")
            view = await _view(session, case.id, self.tz)
        # the acknowledgement's words are each reader's own (the notifier's, in the citizen's
        # language; the status page's): the event carries no English sentence for it
        await self._publish(view, change, now, actor=actor, public=public,
                            note="" if change == "acknowledged" else note)
        return view

    async def acknowledge(self, number: str, *, actor: str) -> CaseView:
        return await self.transition(number, "acknowledged", actor=actor)

    async def start(self, number: str, *, actor: str) -> CaseView:
        return await self.transition(number, "in_progress", actor=actor)

    async def close(
        self, number: str, *, actor: str, reason: str, code: str | None = None
    ) -> CaseView:
        return await self.transition(number, "closed", actor=actor, reason=reason, code=code)

    async def wait_on_citizen(self, number: str, *, actor: str, note: str) -> CaseView:
        """The agency needs something from the citizen (`note` says what; it is public, so the
        citizen is told): the SLA clock stops until resume()."""
        text = note.strip()
        if not text:
            raise InvalidCaseData("say what the citizen is asked for")
        if len(text) > MAX_NOTE:
            raise InvalidCaseData(f"a note is limited to {MAX_NOTE} characters")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            before = case.status
            if before in ("closed", "waiting_citizen"):
                raise IllegalTransition(f"a case that is {before} cannot wait on the citizen")
            await _guarded_update(session, case.id, Case.status == before,
                                  {"status": "waiting_citizen", "updated_at": now})
            session.add(CaseSlaPause(case_id=case.id, started_at=now, resume_status=before,
                                     actor=actor[:80]))
            session.add(CaseNote(case_id=case.id, author=actor[:80], body=text, public=True,
                                 created_at=now))
            _audit(session, actor, "case.waiting", number, now, {"from": before})
            _history(session, case.id, now, actor, "waiting", before, "waiting_citizen",
                     to_agency=await _agency_code(session, case.agency_id), note=text,
                     public=True)
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "waiting", now, public=True, note=text, actor=actor)
        return view

    async def resume(self, number: str, *, actor: str) -> CaseView:
        """The citizen answered: back to the status before the wait, the due time moved out by
        the paused time in the service's clock."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            if case.status != "waiting_citizen":
                raise IllegalTransition(f"the case is {case.status}, not waiting on the citizen")
            pause = await _open_pause(session, case.id)
            back = pause.resume_status if pause is not None else "open"
            due = await _end_pause(session, case, now, self.tz)
            await _guarded_update(session, case.id, Case.status == "waiting_citizen",
                                  {"status": back, "updated_at": now, "sla_due_at": due})
            _audit(session, actor, "case.resumed", number, now,
                   {"to": back, "sla_due_at": due.isoformat() if due else None})
            _history(session, case.id, now, actor, "resumed", "waiting_citizen", back,
                     to_agency=await _agency_code(session, case.agency_id), public=True)
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "resumed", now, actor=actor)
        return view

    async def reopen(
        self, number: str, *, actor: str, reason: str, within_days: int | None = None
    ) -> CaseView:
        """A closed case goes back to open (the problem is still there). `within_days`: the
        operator's limit (CC_REOPEN_DAYS) counted from the close; agencies have none.

        The SLA clock restarts: due = the service's rule applied from the reopening (the agency
        is held to a full SLA for the new work; the old due date has usually passed)."""
        text = _clean_reason(reason, "reopening a case")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            if case.status != "closed":
                raise IllegalTransition(f"only a closed case can be reopened (it is {case.status})")
            if within_days is not None and case.closed_at is not None and \
                    now - case.closed_at > timedelta(days=within_days):
                raise IllegalTransition(
                    f"the case was closed more than {within_days} days ago: open a new case "
                    f"that mentions {number}")
            stype = await session.get(ServiceType, case.service_type_id)
            owner = None if case.agency_id is None else await session.get(Agency, case.agency_id)
            due = sla_rule(stype, owner, self.tz).due(now) if stype is not None else None
            await _guarded_update(session, case.id, Case.status == "closed", {
                "status": "open", "updated_at": now, "closed_at": None, "close_reason": None,
                "resolution_code": None, "sla_due_at": due,
            })
            _audit(session, actor, "case.reopened", number, now,
                   {"reason": text, "within_days": within_days})
            # a public note too: Open311's status_notes of an open case is its latest one
            session.add(CaseNote(case_id=case.id, author=actor[:80], body=text, public=True,
                                 created_at=now))
            agency = await _agency_code(session, case.agency_id)
            _history(session, case.id, now, actor, "reopened", "closed", "open",
                     to_agency=agency, note=text, public=True)
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "reopened", now, actor=actor, public=True, note=text)
        return view

    async def assign(self, number: str, username: str | None, *, actor: str) -> CaseView:
        """Give the case to a person of its agency (an active `agency` user linked to it), or
        to nobody (None)."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            if case.status == "closed":
                raise IllegalTransition("a closed case cannot be assigned")
            agency = await _agency_code(session, case.agency_id)
            if username:
                user = (await session.execute(
                    select(User).where(User.username == username))).scalar_one_or_none()
                if user is None or not user.active or user.role != "agency" or \
                        agency not in (user.agencies or []):
                    raise InvalidCaseData(f"{username!r} is not an active user of agency "
                                          f"{agency or '-'}")
            before = case.assignee
            if (before or None) == (username or None):
                raise InvalidCaseData(f"the case is already assigned to {username or 'nobody'}")
            await _guarded_update(
                session, case.id,
                (Case.assignee == before) if before is not None else Case.assignee.is_(None),
                {"assignee": username or None, "updated_at": now},
            )
            _audit(session, actor, "case.assigned", number, now,
                   {"from": before, "to": username or None})
            _history(session, case.id, now, actor, "assigned", case.status, case.status,
                     to_agency=agency, assignee=username or None)
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "assigned", now, actor=actor)
        return view

    async def reassign(
        self, number: str, agency_code: str, *, actor: str, reason: str
    ) -> CaseView:
        """Send the case to another agency, with a reason. The SLA due time is kept: the
        citizen's expected date does not move because the city routed the request internally
        (and the clock keeps the cost of misrouting visible). The assignee is cleared (a person
        of the old agency)."""
        text = _clean_reason(reason, "reassigning a case")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            if case.status == "closed":
                raise IllegalTransition("a closed case cannot be reassigned")
            agency = (
                await session.execute(select(Agency).where(Agency.code == agency_code))
            ).scalar_one_or_none()
            if agency is None:
                raise UnknownAgency(f"no agency {agency_code!r}")
            if agency.id == case.agency_id:
                raise InvalidCaseData(f"the case is already with {agency_code}")
            before = case.agency_id
            await _guarded_update(
                session, case.id,
                (Case.agency_id == before) if before is not None else Case.agency_id.is_(None),
                {"agency_id": agency.id, "assignee": None, "updated_at": now},
            )
            _audit(session, actor, "case.reassigned", number, now,
                   {"from_agency_id": before, "to": agency.code, "reason": text})
            _history(session, case.id, now, actor, "reassigned", case.status, case.status,
                     from_agency=await _agency_code(session, before), to_agency=agency.code,
                     reason=text)
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "reassigned", now, actor=actor)
        return view

    async def add_note(
        self, number: str, body: str, *, author: str, public: bool = False
    ) -> CaseView:
        text = body.replace("\x00", "").strip()  # PostgreSQL stores no NUL character
        if not text:
            raise InvalidCaseData("a note needs some text")
        if len(text) > MAX_NOTE:
            raise InvalidCaseData(f"a note is limited to {MAX_NOTE} characters")
        now = self.clock()
        async with self.sessions() as session, session.begin():
            case = await _case_for_update(session, number)
            session.add(CaseNote(case_id=case.id, author=author, body=text, public=public,
                                 created_at=now))
            case.updated_at = now
            await session.flush()
            _audit(session, author, "case.noted", number, now, {"public": public})
            _history(session, case.id, now, author, "noted", case.status, case.status,
                     to_agency=await _agency_code(session, case.agency_id), note=text,
                     public=public)
            view = await _view(session, case.id, self.tz)
        await self._publish(view, "noted", now, actor=author, public=public,
                            note=text if public else "")
        return view

    # --- reads the console and the public pages need ---

    async def by_number(self, number: str) -> CaseView | None:
        async with self.sessions() as session:
            case_id = (
                await session.execute(select(Case.id).where(Case.number == number))
            ).scalar_one_or_none()
            return None if case_id is None else await _view(session, case_id, self.tz)

    async def public_history(self, case_id: int) -> list[PublicUpdate]:
        async with self.sessions() as session:
            rows = (await session.execute(
                select(CaseEvent, Case.number, Agency.name)
                .join(Case, Case.id == CaseEvent.case_id)
                .outerjoin(Agency, Agency.code == CaseEvent.to_agency)
                .where(CaseEvent.case_id == case_id, CaseEvent.public.is_(True))
                .order_by(CaseEvent.at, CaseEvent.id).limit(500))).all()
        return [_update(e, number, agency_name=name) for e, number, name in rows]

    async def public_updates(
        self, start: datetime, end: datetime, limit: int = 1000
    ) -> list[PublicUpdate]:
        """Every public change in [start, end], oldest first (ix_case_events_public_at)."""
        async with self.sessions() as session:
            rows = (await session.execute(
                select(CaseEvent, Case.number, Citizen.email, Citizen.phone)
                .join(Case, Case.id == CaseEvent.case_id)
                .outerjoin(Citizen, Citizen.id == Case.citizen_id)
                .where(CaseEvent.public.is_(True), CaseEvent.at >= start, CaseEvent.at <= end)
                .order_by(CaseEvent.at, CaseEvent.id).limit(limit))).all()
        return [_update(e, number, (email, phone)) for e, number, email, phone in rows]

    async def by_token(self, token: str) -> CaseView | None:
        async with self.sessions() as session:
            case_id = (
                await session.execute(select(Case.id).where(Case.token == token))
            ).scalar_one_or_none()
            return None if case_id is None else await _view(session, case_id, self.tz)

    async def citizen_open_cases(self, citizen_id: int, limit: int = 50) -> list[CaseView]:
        async with self.sessions() as session:
            ids = (await session.execute(
                select(Case.id)
                .where(Case.citizen_id == citizen_id, Case.status != "closed")
                .order_by(Case.created_at.desc(), Case.id.desc())
                .limit(limit)
            )).scalars().all()
            return await _views(session, ids, self.tz)

    async def open_cases_for_contact(
        self, *, phone: str | None = None, email: str | None = None
    ) -> list[CaseView]:
        """The screen pop: a caller's open cases from every channel (matched, never created)."""
        async with self.sessions() as session:
            citizen = await match_citizen(session, phone=phone, email=email, create=False)
            citizen_id = citizen.id if citizen is not None else None
            # match_citizen may fill in a missing field; this read never writes
            await session.rollback()
        if citizen_id is None:
            return []
        return await self.citizen_open_cases(citizen_id)

    async def recent(self, limit: int = 20) -> list[CaseView]:
        async with self.sessions() as session:
            ids = (await session.execute(
                select(Case.id).order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)
            )).scalars().all()
            return await _views(session, ids, self.tz)

    async def sla_watch(
        self, limit: int = 200, *, agency: str | None = None
    ) -> list[tuple[CaseView, str]]:
        """Open cases that are overdue or at risk (cases/sla.py), soonest due first, with their
        SLA state; `agency`: that agency's only (its code). Selected in SQL by the same rule."""
        now = self.clock()
        async with self.sessions() as session:
            watch = await self._watch(session, now, agency)
            ids = (await session.execute(
                select(Case.id).where(*watch.scope, or_(watch.overdue, watch.at_risk))
                .order_by(Case.sla_due_at, Case.id).limit(limit)
            )).scalars().all()
            views = await _views(session, ids, self.tz)
        return [(v, v.sla(now)) for v in views]

    async def sla_counts(self, *, agency: str | None = None) -> dict[str, int]:
        """{"at_risk": N, "overdue": M} over every open case (or one agency's), by the same
        definition as `CaseView.sla`, counted in SQL."""
        now = self.clock()
        async with self.sessions() as session:
            watch = await self._watch(session, now, agency)
            # one pass over the open cases: both figures in the same scan
            overdue, at_risk = (await session.execute(
                select(sla_tally(watch.overdue), sla_tally(watch.at_risk))
                .select_from(Case).where(*watch.scope, Case.status != "closed")
            )).one()
        return {"at_risk": int(at_risk or 0), "overdue": int(overdue or 0)}

    async def _watch(
        self, session: AsyncSession, now: datetime, agency: str | None
    ) -> _Watch:
        scope: list[Any] = []
        if agency is not None:
            agency_id = (await session.execute(
                select(Agency.id).where(Agency.code == agency))).scalar_one_or_none()
            if agency_id is None:
                raise UnknownAgency(f"no agency {agency!r}")
            scope.append(Case.agency_id == agency_id)
        return await sla_conditions(session, now, self.tz, scope)

    async def search(
        self,
        *,
        numbers: Sequence[str] | None = None,
        service_codes: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[CaseView]:
        """Open311 GET requests: by numbers (overrides the rest) or by code/status/date range."""
        async with self.sessions() as session:
            query = select(Case.id)
            if numbers:
                query = query.where(Case.number.in_(list(numbers)))
            else:
                if service_codes:
                    query = query.join(ServiceType, ServiceType.id == Case.service_type_id).where(
                        ServiceType.code.in_(list(service_codes))
                    )
                if statuses:
                    query = query.where(Case.status.in_(list(statuses)))
                if start is not None:
                    query = query.where(Case.created_at >= start)
                if end is not None:
                    query = query.where(Case.created_at <= end)
            query = query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit)
            ids = (await session.execute(query)).scalars().all()
            return await _views(session, ids, self.tz)

    async def service_types(self, *, active_only: bool = True) -> list[ServiceType]:
        async with self.sessions() as session:
            query = select(ServiceType).order_by(ServiceType.group_name, ServiceType.code)
            if active_only:
                query = query.where(ServiceType.active.is_(True))
            return list((await session.execute(query)).scalars().all())

    async def service_type(self, code: str) -> ServiceType | None:
        async with self.sessions() as session:
            return (await session.execute(
                select(ServiceType).where(ServiceType.code == code, ServiceType.active.is_(True))
            )).scalar_one_or_none()


@dataclass(frozen=True, slots=True)
class _Watch:
    scope: list[Any]
    overdue: Any  # SQL condition: open past due (or late already when the wait began)
    at_risk: Any  # SQL condition: open, less than the fraction of the allowance left
    # `overdue`'s two disjoint parts: open (not waiting) past due; waiting on the citizen and
    # already late when the wait began (a correlated EXISTS: a query using it runs serially)
    overdue_live: Any = None
    late_waiting: Any = None


def sla_tally(condition: Any) -> Any:
    """SUM(CASE WHEN condition THEN 1 ELSE 0 END): a count of one condition in an aggregate."""
    return func.sum(sql_case((condition, 1), else_=0))


async def sla_conditions(
    session: AsyncSession, now: datetime, timezone: str, scope: list[Any] | None = None
) -> _Watch:
    """The one definition (cases/sla.py) as SQL conditions on `cases`, so no case has to be
    loaded to be classified: each rule becomes its risk horizon (sla.risk_horizon), and a case
    is at risk when due before its rule's horizon. Calendar-hour services need one horizon per
    service; business-hour ones one per (service, agency) pair that has open cases."""
    live = Case.status.not_in(("closed", "waiting_citizen"))
    rules = await SlaRules.load(session, timezone)
    by_horizon: dict[datetime, list[Any]] = {}
    business: list[int] = []
    for st in rules.types.values():
        if st.sla_mode == "business":
            business.append(st.id)
        else:
            horizon = sla.risk_horizon(rules.rule(st.id, None), now)
            by_horizon.setdefault(horizon, []).append(Case.service_type_id == st.id)
    if business:
        pairs = (await session.execute(
            select(Case.service_type_id, Case.agency_id)
            .where(live, Case.service_type_id.in_(business), *(scope or ())).distinct()
        )).all()
        for st_id, ag_id in pairs:
            horizon = sla.risk_horizon(rules.rule(st_id, ag_id), now)
            by_horizon.setdefault(horizon, []).append(
                and_(Case.service_type_id == st_id, _same(Case.agency_id, ag_id)))
    risky = [and_(Case.sla_due_at < horizon, or_(*which))
             for horizon, which in by_horizon.items()]
    # waiting on the citizen: overdue only if it was late when the wait began
    late_waiting = and_(Case.status == "waiting_citizen", exists(
        select(CaseSlaPause.id).where(CaseSlaPause.case_id == Case.id,
                                      CaseSlaPause.ended_at.is_(None),
                                      CaseSlaPause.started_at >= Case.sla_due_at)))
    overdue_live = and_(live, Case.sla_due_at <= now)
    return _Watch(
        scope=[Case.sla_due_at.is_not(None), *(scope or ())],
        overdue=or_(overdue_live, late_waiting), overdue_live=overdue_live,
        late_waiting=late_waiting,
        at_risk=and_(live, Case.sla_due_at > now, or_(*risky)) if risky else false(),
    )


class SlaRules:
    """Every (service type, agency) pair's SLA rule, read once (reports, counts)."""

    def __init__(self, types: dict[int, ServiceType], agencies: dict[int, Agency],
                 timezone: str) -> None:
        self.types = types
        self.agencies = agencies
        self.tz = timezone
        self._cache: dict[tuple[int, int | None], sla.SlaRule] = {}

    @classmethod
    async def load(cls, session: AsyncSession, timezone: str) -> SlaRules:
        types = {t.id: t for t in (await session.execute(select(ServiceType))).scalars()}
        agencies = {a.id: a for a in (await session.execute(select(Agency))).scalars()}
        return cls(types, agencies, timezone)

    def rule(self, service_type_id: int, agency_id: int | None) -> sla.SlaRule:
        key = (service_type_id, agency_id)
        if key not in self._cache:
            agency = self.agencies.get(agency_id) if agency_id is not None else None
            self._cache[key] = sla_rule(self.types[service_type_id], agency, self.tz)
        return self._cache[key]


def _same(column: Any, value: int | None) -> Any:
    return column.is_(None) if value is None else column == value


# --- API keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiKeyView:
    id: int
    name: str
    prefix: str
    created_by: str | None
    created_at: datetime
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _key_view(row: ApiKey) -> ApiKeyView:
    return ApiKeyView(row.id, row.name, row.prefix, row.created_by, row.created_at,
                      row.revoked_at)


class ApiKeys:
    """Keys for Open311 clients; only the SHA-256 of a key is stored, the key is shown once."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock = SYSTEM.now
    ) -> None:
        self.sessions = sessions
        self.clock = clock

    async def create(self, name: str, *, actor: str) -> tuple[ApiKeyView, str]:
        name = name.strip()
        if not name or len(name) > 120:
            raise InvalidCaseData("an API key needs a name of 1 to 120 characters")
        key = new_api_key()
        now = self.clock()
        async with self.sessions() as session, session.begin():
            row = ApiKey(name=name, prefix=key[:10], key_hash=hash_api_key(key),
                         created_by=actor, created_at=now)
            session.add(row)
            await session.flush()
            audit(session, actor, "apikey.created", "api_key", row.id, {"name": name}, at=now)
            return _key_view(row), key

    async def list(self) -> list[ApiKeyView]:
        async with self.sessions() as session:
            rows = (await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars().all()
            return [_key_view(r) for r in rows]

    async def revoke(self, key_id: int, *, actor: str) -> ApiKeyView:
        now = self.clock()
        async with self.sessions() as session, session.begin():
            row = await session.get(ApiKey, key_id, with_for_update=True)
            if row is None:
                raise CaseNotFound(f"no API key {key_id}")
            if row.revoked_at is not None:
                raise InvalidCaseData(f"API key {key_id} is already revoked")
            row.revoked_at = now
            audit(session, actor, "apikey.revoked", "api_key", row.id, {"name": row.name},
                  at=now)
            return _key_view(row)

    async def verify(self, key: str | None) -> ApiKeyView | None:
        """The active key matching `key`, or None (missing, unknown or revoked)."""
        if not key:
            return None
        async with self.sessions() as session:
            row = await active_api_key(session, key)
        return None if row is None else _key_view(row)


# --- helpers (inside a caller's transaction) ----------------------------------------------------


async def next_case_number(session: AsyncSession, year: int) -> str:
    """The next public number of `year`, unique under concurrency on SQLite and PostgreSQL.

    `UPDATE ... SET last = last + 1 RETURNING last` is atomic on both engines: PostgreSQL holds the
    row lock until commit (a concurrent writer waits, then sees the new value); SQLite allows one
    writer at a time. The year's row is created on first use with INSERT ... ON CONFLICT DO
    NOTHING so two first-of-the-year cases cannot both insert it. It is all inside the caller's
    transaction: a case that fails to be written does not use up a number.
    """
    bump = (
        update(CaseSequence)
        .where(CaseSequence.year == year)
        .values(last=CaseSequence.last + 1)
        .returning(CaseSequence.last)
    )
    seq = (await session.execute(bump)).scalar_one_or_none()
    if seq is None:
        dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
        ins_mod: Any = postgresql if dialect == "postgresql" else sqlite
        await session.execute(
            ins_mod.insert(CaseSequence).values(year=year, last=0).on_conflict_do_nothing()
        )
        seq = (await session.execute(bump)).scalar_one()
    return format_number(year, int(seq))


async def _service_type(session: AsyncSession, code: str) -> ServiceType:
    stype = (await session.execute(
        select(ServiceType).where(ServiceType.code == code, ServiceType.active.is_(True))
    )).scalar_one_or_none()
    if stype is None:
        raise UnknownServiceType(f"no active service type {code!r}")
    return stype


async def _case_for_update(session: AsyncSession, number: str) -> Case:
    case = (await session.execute(
        select(Case).where(Case.number == number).with_for_update()
    )).scalar_one_or_none()
    if case is None:
        raise CaseNotFound(f"no case {number!r}")
    return case


async def _guarded_update(
    session: AsyncSession, case_id: int, unchanged: Any, values: dict[str, Any]
) -> None:
    """Write only if the case is still as it was read. PostgreSQL already holds the row lock
    (SELECT ... FOR UPDATE); SQLite has no row locks, and its reads run before the write lock is
    taken, so two operators acting at once would both pass the check without this."""
    result = await session.execute(
        update(Case).where(Case.id == case_id, unchanged).values(**values)
        .execution_options(synchronize_session=False)
    )
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise IllegalTransition("the case was changed by someone else meanwhile; reload it")




def _public_text(change: str, reason: str | None, *, agency_name: str | None) -> tuple[bool, str]:
    """Whether the citizen hears of a status change, and the text they read."""
    if change == "acknowledged":
        return True, f"{agency_name or '3-1-1'} has received your request and will look into it."
    if change == "closed":
        return True, reason or ""
    return False, ""


def _clean_reason(reason: str | None, what: str) -> str:
    text = (reason or "").replace("\x00", "").strip()
    if not text:
        raise InvalidCaseData(f"{what} needs a reason")
    if len(text) > MAX_REASON:
        raise InvalidCaseData(f"the reason is longer than {MAX_REASON} characters")
    return text


async def _agency_code(session: AsyncSession, agency_id: int | None) -> str | None:
    if agency_id is None:
        return None
    agency = await session.get(Agency, agency_id)
    return agency.code if agency is not None else None


async def _agency_name(session: AsyncSession, agency_id: int | None) -> str | None:
    if agency_id is None:
        return None
    agency = await session.get(Agency, agency_id)
    return agency.name if agency is not None else None


async def _resolution(session: AsyncSession, code: str) -> ResolutionCode:
    row = (await session.execute(
        select(ResolutionCode).where(ResolutionCode.code == code,
                                     ResolutionCode.active.is_(True)))).scalar_one_or_none()
    if row is None:
        raise InvalidCaseData(f"unknown resolution code {code[:40]!r}")
    return row


def _update(e: CaseEvent, number: str,
            known: tuple[str | None, str | None] = (None, None),
            agency_name: str | None = None) -> PublicUpdate:
    return PublicUpdate(e.id, number, e.at, e.change, e.to_status,
                        e.reason if e.change == "closed" else None, e.note or "", known,
                        agency_name)


def _history(
    session: AsyncSession, case_id: int, at: datetime, actor: str, change: str,
    from_status: str | None, to_status: str, *, from_agency: str | None = None,
    to_agency: str | None = None, assignee: str | None = None, reason: str | None = None,
    note: str | None = None, public: bool = False,
) -> None:
    """One row of the case's history, in the caller's transaction (with its audit entry)."""
    session.add(CaseEvent(case_id=case_id, at=at, actor=actor[:80], change=change,
                          from_status=from_status, to_status=to_status, from_agency=from_agency,
                          to_agency=to_agency, assignee=assignee,
                          reason=reason[:200] if reason else None, note=note, public=public))


def _audit(
    session: AsyncSession, actor: str, action: str, number: str, at: datetime,
    detail: dict[str, Any],
) -> None:
    audit(session, actor, action, "case", number,
          {k: v for k, v in detail.items() if v is not None}, at=at)


async def _open_pause(session: AsyncSession, case_id: int) -> CaseSlaPause | None:
    return (await session.execute(
        select(CaseSlaPause).where(CaseSlaPause.case_id == case_id,
                                   CaseSlaPause.ended_at.is_(None))
        .order_by(CaseSlaPause.id.desc()).limit(1)
    )).scalar_one_or_none()


async def _end_pause(
    session: AsyncSession, case: Case, now: datetime, timezone: str
) -> datetime | None:
    """Close the case's open pause; the due time moved out by the paused time of its clock."""
    pause = await _open_pause(session, case.id)
    if pause is None or case.sla_due_at is None:
        return case.sla_due_at
    pause.ended_at = now
    stype = await session.get(ServiceType, case.service_type_id)
    agency = None if case.agency_id is None else await session.get(Agency, case.agency_id)
    assert stype is not None
    return sla_rule(stype, agency, timezone).resume(case.sla_due_at, pause.started_at, now)


async def _views(
    session: AsyncSession, ids: Sequence[int], timezone: str = "UTC"
) -> list[CaseView]:
    if not ids:
        return []
    rows = (await session.execute(
        select(Case, ServiceType, Agency, Citizen)
        .join(ServiceType, ServiceType.id == Case.service_type_id)
        .outerjoin(Agency, Agency.id == Case.agency_id)
        .outerjoin(Citizen, Citizen.id == Case.citizen_id)
        .where(Case.id.in_(list(ids)))
        .options(selectinload(Case.notes))
        .execution_options(populate_existing=True)
    )).all()
    waiting = [row[0].id for row in rows if row[0].status == "waiting_citizen"]
    paused: dict[int, datetime] = {}
    if waiting:
        for case_id, started in (await session.execute(
            select(CaseSlaPause.case_id, CaseSlaPause.started_at)
            .where(CaseSlaPause.case_id.in_(waiting), CaseSlaPause.ended_at.is_(None))
        )).all():
            paused[case_id] = started
    by_id = {row[0].id: _to_view(*row, timezone, paused.get(row[0].id)) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


async def load_views(session: AsyncSession, ids: Sequence[int], timezone: str = "UTC"
                     ) -> list[CaseView]:
    """Views of the cases `ids`, in that order (for other features' queries); `timezone`: the
    center's, for business-hours SLA states."""
    return await _views(session, ids, timezone)


async def _view(session: AsyncSession, case_id: int, timezone: str = "UTC") -> CaseView:
    (view,) = await _views(session, [case_id], timezone)
    return view


def _to_view(
    case: Case, stype: ServiceType, agency: Agency | None, citizen: Citizen | None,
    timezone: str = "UTC", paused_since: datetime | None = None,
) -> CaseView:
    return CaseView(
        id=case.id,
        number=case.number,
        token=case.token,
        status=case.status,
        close_reason=case.close_reason,
        channel=case.channel,
        service_code=stype.code,
        service_name=stype.name,
        agency_code=agency.code if agency else None,
        agency_name=agency.name if agency else None,
        citizen_id=case.citizen_id,
        description=case.description,
        address=case.address,
        address_id=case.address_id,
        lat=case.lat,
        long=case.long,
        attributes=dict(case.attributes or {}),
        media_url=case.media_url,
        created_at=case.created_at,
        updated_at=case.updated_at,
        closed_at=case.closed_at,
        sla_due_at=case.sla_due_at,
        created_by=case.created_by,
        notes=tuple(
            NoteView(n.author, n.body, n.public, n.created_at)
            for n in sorted(case.notes, key=lambda n: (n.created_at, n.id))
        ),
        citizen_phone=citizen.phone if citizen else None,
        citizen_email=citizen.email if citizen else None,
        language=case.language or "en",
        sla_rule=sla_rule(stype, agency, timezone),
        paused_since=paused_since,
        assignee=case.assignee,
        resolution_code=case.resolution_code,
    )
