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

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from ..bus import BaseBus
from ..clock import SYSTEM
from ..events import CaseChanged
from ..security import hash_api_key, new_api_key
from .citizens import match_citizen
from .models import (
    CASE_STATUSES,
    CHANNELS,
    Agency,
    ApiKey,
    AuditLog,
    Case,
    CaseEvent,
    CaseMedia,
    CaseNote,
    CaseSequence,
    Citizen,
    ResolutionCode,
    ServiceType,
    User,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Forward only; any step may be skipped (a call taker can close on first contact). A closed case
# changes only through `reopen` (back to open, with a reason), never through `transition`.
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"acknowledged", "in_progress", "closed"}),
    "acknowledged": frozenset({"in_progress", "closed"}),
    "in_progress": frozenset({"closed"}),
    "closed": frozenset(),
}
# A case is "at risk" when less than this fraction of its SLA time is left.
AT_RISK_FRACTION = 0.25
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
        cleaned = (reason or "").strip()
        if not cleaned:
            raise IllegalTransition("closing a case needs a reason")
        if len(cleaned) > MAX_REASON:
            raise IllegalTransition(f"the close reason is longer than {MAX_REASON} characters")
        return cleaned
    return None


def sla_due(opened_at: datetime, sla_hours: int) -> datetime:
    return opened_at + timedelta(hours=sla_hours)


def sla_state(
    status: str, created_at: datetime, due: datetime | None, now: datetime
) -> str:
    """"closed", "none" (no SLA), "overdue" (past due), "at_risk" (less than 25% of the SLA
    time left) or "ok"."""
    if status == "closed":
        return "closed"
    if due is None:
        return "none"
    if now >= due:
        return "overdue"
    total = (due - created_at).total_seconds()
    if total > 0 and (due - now).total_seconds() < AT_RISK_FRACTION * total:
        return "at_risk"
    return "ok"


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
        if len(whole) == 10:
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
    assignee: str | None = None  # the username in the agency working it
    resolution_code: str | None = None

    def sla(self, now: datetime) -> str:
        return sla_state(self.status, self.created_at, self.sla_due_at, now)

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


# --- the store ----------------------------------------------------------------------------------


class CaseStore:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: BaseBus | None = None,
        *,
        clock: Clock,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.clock = clock

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
                sla_due_at=sla_due(now, stype.sla_hours),
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
            view = await _view(session, case.id)
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
            await _guarded_update(session, case.id, Case.status == before, values)
            _audit(session, actor, "case.status", number, now,
                   {"from": before, "to": target, "reason": cleaned, "code": code})
            agency = await _agency_code(session, case.agency_id)
            change = CHANGE_OF_STATUS.get(target, "updated")
            public, note = _public_text(change, cleaned, agency_name=await _agency_name(
                session, case.agency_id))
            # the history row of "started" is public too: the status page shows work began
            # (the citizen is not messaged for it: CaseChanged.public stays False)
            _history(session, case.id, now, actor, change, before, target, to_agency=agency,
                     reason=code, note=note or None, public=public or change == "started")
            view = await _view(session, case.id)
        await self._publish(view, change, now, actor=actor, public=public, note=note)
        return view

    async def acknowledge(self, number: str, *, actor: str) -> CaseView:
        return await self.transition(number, "acknowledged", actor=actor)

    async def start(self, number: str, *, actor: str) -> CaseView:
        return await self.transition(number, "in_progress", actor=actor)

    async def close(
        self, number: str, *, actor: str, reason: str, code: str | None = None
    ) -> CaseView:
        return await self.transition(number, "closed", actor=actor, reason=reason, code=code)

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
            hours = stype.sla_hours if stype is not None else 72
            await _guarded_update(session, case.id, Case.status == "closed", {
                "status": "open", "updated_at": now, "closed_at": None, "close_reason": None,
                "resolution_code": None, "sla_due_at": sla_due(now, hours),
            })
            _audit(session, actor, "case.reopened", number, now,
                   {"reason": text, "within_days": within_days})
            # a public note too: Open311's status_notes of an open case is its latest one
            session.add(CaseNote(case_id=case.id, author=actor[:80], body=text, public=True,
                                 created_at=now))
            agency = await _agency_code(session, case.agency_id)
            _history(session, case.id, now, actor, "reopened", "closed", "open",
                     to_agency=agency, note=text, public=True)
            view = await _view(session, case.id)
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
            view = await _view(session, case.id)
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
            view = await _view(session, case.id)
        await self._publish(view, "reassigned", now, actor=actor)
        return view

    async def add_note(
        self, number: str, body: str, *, author: str, public: bool = False
    ) -> CaseView:
        text = body.strip()
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
            view = await _view(session, case.id)
        await self._publish(view, "noted", now, actor=author, public=public,
                            note=text if public else "")
        return view

    # --- reads the console and the public pages need ---

    async def by_number(self, number: str) -> CaseView | None:
        async with self.sessions() as session:
            case_id = (
                await session.execute(select(Case.id).where(Case.number == number))
            ).scalar_one_or_none()
            return None if case_id is None else await _view(session, case_id)

    async def public_history(self, case_id: int) -> list[PublicUpdate]:
        async with self.sessions() as session:
            rows = (await session.execute(
                select(CaseEvent, Case.number)
                .join(Case, Case.id == CaseEvent.case_id)
                .where(CaseEvent.case_id == case_id, CaseEvent.public.is_(True))
                .order_by(CaseEvent.at, CaseEvent.id).limit(500))).all()
        return [_update(e, number) for e, number in rows]

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
            return None if case_id is None else await _view(session, case_id)

    async def citizen_open_cases(self, citizen_id: int, limit: int = 50) -> list[CaseView]:
        async with self.sessions() as session:
            ids = (await session.execute(
                select(Case.id)
                .where(Case.citizen_id == citizen_id, Case.status != "closed")
                .order_by(Case.created_at.desc(), Case.id.desc())
                .limit(limit)
            )).scalars().all()
            return await _views(session, ids)

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
            return await _views(session, ids)

    async def sla_watch(self, limit: int = 200) -> list[tuple[CaseView, str]]:
        """Open cases that are overdue or at risk, soonest due first, with their SLA state."""
        now = self.clock()
        async with self.sessions() as session:
            ids = (await session.execute(
                select(Case.id)
                .where(Case.status != "closed", Case.sla_due_at.is_not(None))
                .order_by(Case.sla_due_at, Case.id)
                .limit(limit * 4)
            )).scalars().all()
            views = await _views(session, ids)
        out = [(v, v.sla(now)) for v in views]
        return [(v, state) for v, state in out if state in ("overdue", "at_risk")][:limit]

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
            return await _views(session, ids)

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
            session.add(AuditLog(actor=actor, action="apikey.created", entity="api_key",
                                 entity_id=str(row.id), detail={"name": name}, at=now))
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
            session.add(AuditLog(actor=actor, action="apikey.revoked", entity="api_key",
                                 entity_id=str(row.id), detail={"name": row.name}, at=now))
            return _key_view(row)

    async def verify(self, key: str | None) -> ApiKeyView | None:
        """The active key matching `key`, or None (missing, unknown or revoked)."""
        if not key or len(key) > 200:
            return None
        async with self.sessions() as session:
            row = (await session.execute(
                select(ApiKey).where(ApiKey.key_hash == hash_api_key(key))
            )).scalar_one_or_none()
        if row is None or row.revoked_at is not None:
            return None
        return _key_view(row)


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


CHANGE_OF_STATUS = {"acknowledged": "acknowledged", "in_progress": "started", "closed": "closed"}


def _public_text(change: str, reason: str | None, *, agency_name: str | None) -> tuple[bool, str]:
    """Whether the citizen hears of a status change, and the text they read."""
    if change == "acknowledged":
        return True, f"{agency_name or '3-1-1'} has received your request and will look into it."
    if change == "closed":
        return True, reason or ""
    return False, ""


def _clean_reason(reason: str | None, what: str) -> str:
    text = (reason or "").strip()
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
            known: tuple[str | None, str | None] = (None, None)) -> PublicUpdate:
    return PublicUpdate(e.id, number, e.at, e.change, e.to_status,
                        e.reason if e.change == "closed" else None, e.note or "", known)


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
    session.add(AuditLog(actor=actor[:80], action=action, entity="case", entity_id=number,
                         detail={k: v for k, v in detail.items() if v is not None}, at=at))


async def _views(session: AsyncSession, ids: Sequence[int]) -> list[CaseView]:
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
    by_id = {row[0].id: _to_view(*row) for row in rows}
    return [by_id[i] for i in ids if i in by_id]


async def load_views(session: AsyncSession, ids: Sequence[int]) -> list[CaseView]:
    """Views of the cases `ids`, in that order (for other features' queries)."""
    return await _views(session, ids)


async def _view(session: AsyncSession, case_id: int) -> CaseView:
    (view,) = await _views(session, [case_id])
    return view


def _to_view(
    case: Case, stype: ServiceType, agency: Agency | None, citizen: Citizen | None
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
        assignee=case.assignee,
        resolution_code=case.resolution_code,
    )
