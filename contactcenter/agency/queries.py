"""Reads of the agency work queue, the case page's timeline, the operators' case search and
the duplicate suggestion. Every list is bounded; the work queue pages by keyset (SLA due, id)
on `ix_cases_agency_due`, so page 1,000 costs what page 1 does."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..cases.citizens import normalize_phone
from ..cases.models import CASE_STATUSES, Call, Case, CaseEvent, CaseMedia, Citizen, ResolutionCode
from ..cases.store import CaseView, load_views, normalize_case_number
from ..queues.models import ServiceType
from ..web.models import User
from .models import Agency

PAGE = 50
SEARCH_LIMIT = 50
SIMILAR_DAYS = 30
OPEN = "open-all"  # the status filter's default: every status but closed


class QueryError(ValueError):
    """A malformed filter or cursor; the message is for the person who typed it."""


@dataclass(frozen=True, slots=True)
class QueueFilter:
    agencies: tuple[str, ...] | None  # agency codes; None: every agency (staff)
    service: str = ""
    status: str = OPEN  # open-all, all, or one status
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive
    address: str = ""
    assignee: str = ""  # a username, or "-" for nobody


@dataclass(frozen=True, slots=True)
class QueuePage:
    cases: list[CaseView]
    next_cursor: str | None
    counts: dict[str, int]  # per status but closed, the agency filter only


def encode_cursor(view: CaseView) -> str:
    due = view.sla_due_at.isoformat() if view.sla_due_at else ""
    return f"{due}~{view.id}"


def decode_cursor(raw: str) -> tuple[datetime, int]:
    due, _, ident = raw.partition("~")
    try:
        return datetime.fromisoformat(due), int(ident)
    except ValueError:
        raise QueryError("that page link is broken; start from the first page") from None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def _agency_ids(session: AsyncSession, codes: Sequence[str]) -> list[int]:
    return list((await session.execute(
        select(Agency.id).where(Agency.code.in_(list(codes))))).scalars())


async def work_queue(
    sessions: async_sessionmaker[AsyncSession], flt: QueueFilter, *, after: str | None = None,
    limit: int = PAGE, timezone: str = "UTC",
) -> QueuePage:
    """One page of cases sorted by SLA due (soonest, overdue first), then id."""
    if flt.status not in (OPEN, "all", *CASE_STATUSES):
        raise QueryError(f"unknown status {flt.status[:20]!r}")
    async with sessions() as session:
        scope: list[Any] = []
        if flt.agencies is not None:
            scope.append(Case.agency_id.in_(await _agency_ids(session, flt.agencies)))
        query = select(Case.id).where(*scope, Case.sla_due_at.is_not(None))
        if flt.status == OPEN:
            query = query.where(Case.status != "closed")
        elif flt.status != "all":
            query = query.where(Case.status == flt.status)
        if flt.service:
            stype = (await session.execute(select(ServiceType.id).where(
                ServiceType.code == flt.service))).scalar_one_or_none()
            if stype is None:
                raise QueryError(f"unknown service type {flt.service[:80]!r}")
            query = query.where(Case.service_type_id == stype)
        if flt.created_from is not None:
            query = query.where(Case.created_at >= flt.created_from)
        if flt.created_to is not None:
            query = query.where(Case.created_at < flt.created_to)
        text = flt.address.strip()
        if text:
            # a text under 3 characters has no trigram: filter, do not ask the index (_word)
            column: Any = Case.address if len(text) >= 3 else func.coalesce(Case.address, "")
            query = query.where(column.ilike(_like(text), escape="\\"))
        if flt.assignee == "-":
            query = query.where(Case.assignee.is_(None))
        elif flt.assignee:
            query = query.where(Case.assignee == flt.assignee)
        if after:
            due, ident = decode_cursor(after)
            query = query.where(or_(Case.sla_due_at > due,
                                    and_(Case.sla_due_at == due, Case.id > ident)))
        ids = list((await session.execute(
            query.order_by(Case.sla_due_at, Case.id).limit(limit + 1))).scalars())
        views = await load_views(session, ids[:limit], timezone)
        # the work in hand: closed cases pile up for ever, counting them would cost a scan of
        # the agency's whole past on every page (ix_cases_agency_status covers this)
        counts: dict[str, int] = {status: n for status, n in (await session.execute(
            select(Case.status, func.count()).where(*scope, Case.status != "closed")
            .group_by(Case.status))).all()}
    more = len(ids) > limit
    return QueuePage(views, encode_cursor(views[-1]) if more and views else None,
                     {s: int(counts.get(s, 0)) for s in CASE_STATUSES if s != "closed"})


async def search(
    sessions: async_sessionmaker[AsyncSession], text: str, *,
    agencies: tuple[str, ...] | None = None, limit: int = SEARCH_LIMIT, timezone: str = "UTC",
) -> list[CaseView]:
    """The operators' search box: a case number (any spelling), a caller's phone number, or
    words that must all appear in the address or the description. Newest first."""
    text = text.strip()[:200]
    if not text:
        return []
    async with sessions() as session:
        scope: list[Any] = []
        if agencies is not None:
            scope.append(Case.agency_id.in_(await _agency_ids(session, agencies)))
        number = normalize_case_number(text)
        if number is not None:
            ids = list((await session.execute(
                select(Case.id).where(Case.number == number, *scope))).scalars())
            if ids:  # else it may be a phone number that looks like one (202 555 1234)
                return await load_views(session, ids, timezone)
        phone = normalize_phone(text) if re.fullmatch(r"[\d\s()+.-]{7,}", text) else None
        if phone is not None:
            variants = {phone, phone[-10:]} if len(phone) > 10 else {phone}
            query = (select(Case.id).join(Citizen, Citizen.id == Case.citizen_id)
                     .where(Citizen.phone.in_(variants), *scope))
        else:
            words = [w for w in re.split(r"\s+", text) if w][:8]
            query = select(Case.id).where(*scope, *(_word(w) for w in words))
        ids = list((await session.execute(
            query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit))).scalars())
        return await load_views(session, ids, timezone)


def _word(word: str) -> Any:
    """One search word in the address or the description. PostgreSQL's trigram indexes
    (ix_cases_*_trgm) find words of 3 characters or more; a shorter one ("12") has no trigram
    and would make the index read every entry, so it is checked on the rows the others found
    (through an expression no index matches)."""
    address: Any
    description: Any
    if len(word) >= 3:
        address, description = Case.address, Case.description
    else:
        address, description = func.coalesce(Case.address, ""), func.coalesce(
            Case.description, "")
    return or_(address.ilike(_like(word), escape="\\"),
               description.ilike(_like(word), escape="\\"))


def _address_key(address: str) -> str:
    """Addresses as typed differ in case, spaces and punctuation: "12 Main St." = "12 main st"."""
    return re.sub(r"[^a-z0-9]+", " ", address.lower()).strip()


async def similar_open(
    sessions: async_sessionmaker[AsyncSession], service: str, address: str, now: datetime,
    *, days: int = SIMILAR_DAYS, limit: int = 10, timezone: str = "UTC",
) -> list[CaseView]:
    """Open cases of the same service at the same address opened in the last `days` days:
    the duplicates an operator should link the caller to instead of opening another."""
    key = _address_key(address)
    if not key or not service:
        return []
    async with sessions() as session:
        rows = (await session.execute(
            select(Case.id, Case.address)
            .join(ServiceType, ServiceType.id == Case.service_type_id)
            .where(ServiceType.code == service, Case.status != "closed",
                   Case.created_at >= now - timedelta(days=days), Case.address.is_not(None))
            .order_by(Case.created_at.desc()).limit(2000))).all()
        ids = [ident for ident, addr in rows if _address_key(addr or "") == key][:limit]
        return await load_views(session, ids, timezone)


# --- the case page ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimelineItem:
    at: datetime
    kind: str  # created, call, change, note, photo
    actor: str
    text: str
    public: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CasePage:
    case: CaseView
    items: list[TimelineItem]
    calls: int
    photos: list[str]  # media URLs


CHANGE_WORDS = {
    "created": "opened", "acknowledged": "acknowledged", "started": "started work",
    "assigned": "assigned", "reassigned": "reassigned", "noted": "added a note",
    "closed": "closed", "reopened": "reopened", "waiting": "is waiting on the citizen",
    "resumed": "resumed", "updated": "updated",
}


async def case_page(sessions: async_sessionmaker[AsyncSession], view: CaseView) -> CasePage:
    """Everything about one case in time order: how it came in, its calls, its history (status
    changes, assignments, notes), its photos."""
    async with sessions() as session:
        events = (await session.execute(
            select(CaseEvent).where(CaseEvent.case_id == view.id).order_by(CaseEvent.id)
        )).scalars().all()
        calls = (await session.execute(
            select(Call).where(or_(Call.case_id == view.id, Call.case_number == view.number))
            .order_by(Call.started_at).limit(200))).scalars().all()
        media = (await session.execute(
            select(CaseMedia.key).where(CaseMedia.case_id == view.id).order_by(CaseMedia.id)
        )).scalars().all()
    items: list[TimelineItem] = []
    if not any(e.change == "created" for e in events):  # cases from before the history
        items.append(TimelineItem(view.created_at, "created", view.created_by or "",
                                  f"came in by {view.channel}"))
    for e in events:
        items.append(_event_item(e, view))
    for c in calls:
        who = c.caller_number or "unknown number"
        how = f"answered by {c.agent}" if c.outcome == "answered" and c.agent else \
            c.outcome.replace("_", " ")
        text = f"call from {who}: {how}" + (f", queue {c.queue}" if c.queue else "")
        items.append(TimelineItem(c.started_at, "call", c.agent or "", text, detail={
            "talk_seconds": c.talk_seconds, "wait_seconds": c.wait_seconds,
            "disposition": c.disposition, "language": c.language,
            "keyed": c.case_number == view.number and c.case_id != view.id}))
    items.sort(key=lambda i: (i.at, 0 if i.kind == "created" else 1))
    photos = [f"/open311/v2/media/{k}.jpg" for k in media]
    return CasePage(view, items, len(calls), photos)


def _event_item(e: CaseEvent, view: CaseView) -> TimelineItem:
    if e.change == "created":
        text = f"came in by {view.channel}" + (f" to {e.to_agency}" if e.to_agency else "")
    elif e.change == "noted":
        text = e.note or ""
    elif e.change == "reassigned":
        text = f"from {e.from_agency or '-'} to {e.to_agency or '-'}: {e.reason or ''}"
    elif e.change == "assigned":
        text = f"to {e.assignee}" if e.assignee else "to nobody"
    elif e.change == "closed":
        text = (f"[{e.reason}] " if e.reason else "") + (e.note or "")
    elif e.change == "reopened":
        text = e.note or ""
    else:
        text = f"{e.from_status or '-'} → {e.to_status}"
    kind = {"noted": "note", "created": "created"}.get(e.change, "change")
    return TimelineItem(e.at, kind, e.actor, text,
                        e.public, {"change": e.change, "words": CHANGE_WORDS.get(e.change,
                                                                                 e.change),
                                   "from": e.from_status, "to": e.to_status})


async def agency_people(sessions: async_sessionmaker[AsyncSession], agency: str | None
                        ) -> list[str]:
    """Usernames a case of `agency` can be assigned to."""
    if agency is None:
        return []
    async with sessions() as session:
        users = (await session.execute(
            select(User).where(User.role == "agency", User.active.is_(True))
            .order_by(User.username))).scalars().all()
    return [u.username for u in users if agency in (u.agencies or [])]


async def resolution_codes(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = (await session.execute(
            select(ResolutionCode.code, ResolutionCode.label)
            .where(ResolutionCode.active.is_(True)).order_by(ResolutionCode.id))).all()
    return [(c, label) for c, label in rows]


async def agency_codes(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, str]]:
    async with sessions() as session:
        rows = (await session.execute(select(Agency.code, Agency.name).order_by(Agency.code))).all()
    return [(c, n) for c, n in rows]
