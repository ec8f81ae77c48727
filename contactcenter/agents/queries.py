"""The reads behind the screen pop (indexed, one round trip each) and the console's additions
to a call record. Cases and notes are written through `cases/store.py`."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..agency.models import Agency
from ..cases import sla
from ..cases.citizens import normalize_phone
from ..cases.models import Call, CallLeg, Case, CaseSlaPause, Citizen
from ..cases.store import sla_rule
from ..cases.writer import handle_time
from ..queues.models import ServiceType
from ..supervisor import intervals
from ..supervisor.services import LEG_COLUMNS, facts_from_row
from ..supervisor.stats import LegFacts

LAST_CALLS = 5
OPEN_CASES = 10


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def last_calls(
    db: AsyncSession, caller_number: str, *, exclude_linkedid: str | None = None,
    limit: int = LAST_CALLS,
) -> list[dict[str, Any]]:
    """Newest first; uses ix_calls_caller_started."""
    q = (
        select(Call.linkedid, Call.started_at, Call.outcome, Call.queue, Call.service,
               Call.agent, Call.disposition, Call.case_number, Case.number)
        .outerjoin(Case, Case.id == Call.case_id)
        .where(Call.caller_number == caller_number)
        .order_by(Call.started_at.desc())
        .limit(limit + 1)
    )
    out = []
    for row in (await db.execute(q)).all():
        if row.linkedid == exclude_linkedid:
            continue
        out.append({
            "started_at": _iso(row.started_at), "outcome": row.outcome, "queue": row.queue,
            "service": row.service, "agent": row.agent, "disposition": row.disposition,
            "case_number": row.number or row.case_number,
        })
    return out[:limit]


async def calls_since(db: AsyncSession, caller_number: str, since: datetime,
                      exclude_linkedid: str | None = None) -> int:
    q = select(func.count()).select_from(Call).where(
        Call.caller_number == caller_number, Call.started_at >= since
    )
    if exclude_linkedid is not None:
        q = q.where(Call.linkedid != exclude_linkedid)
    return int((await db.execute(q)).scalar_one())


def _case_dict(case: Case, stype: ServiceType, agency: Agency | None, now: datetime,
               timezone: str, paused_since: datetime | None) -> dict[str, Any]:
    # the SLA state by the one definition (cases/sla.py), as of the pop
    state = sla.state(case.status, case.sla_due_at, now, sla_rule(stype, agency, timezone),
                      paused_since)
    return {
        "number": case.number, "status": case.status, "service": stype.name,
        "description": case.description[:300], "address": case.address,
        "sla_due_at": _iso(case.sla_due_at), "created_at": _iso(case.created_at),
        "sla": state,
    }


async def _case_dicts(db: AsyncSession, rows: list[Any], now: datetime,
                      timezone: str) -> list[dict[str, Any]]:
    waiting = [case.id for case, _, _ in rows if case.status == "waiting_citizen"]
    paused: dict[int, datetime] = {}
    if waiting:
        paused = {case_id: started for case_id, started in (await db.execute(
            select(CaseSlaPause.case_id, CaseSlaPause.started_at)
            .where(CaseSlaPause.case_id.in_(waiting), CaseSlaPause.ended_at.is_(None))
        )).all()}
    return [_case_dict(case, stype, agency, now, timezone, paused.get(case.id))
            for case, stype, agency in rows]


async def open_cases(db: AsyncSession, caller_number: str, *, now: datetime,
                     timezone: str = "UTC", limit: int = OPEN_CASES) -> list[dict[str, Any]]:
    """Open cases of the citizen(s) with this phone number (ix_cases_citizen_status)."""
    phone = normalize_phone(caller_number)
    if phone is None:
        return []
    citizens = select(Citizen.id).where(Citizen.phone == phone).scalar_subquery()
    q = (
        select(Case, ServiceType, Agency)
        .join(ServiceType, ServiceType.id == Case.service_type_id)
        .outerjoin(Agency, Agency.id == Case.agency_id)
        .where(Case.citizen_id.in_(citizens), Case.status != "closed")
        .order_by(Case.sla_due_at.asc(), Case.id.asc())
        .limit(limit)
    )
    return await _case_dicts(db, list((await db.execute(q)).all()), now, timezone)


async def case_by_number(db: AsyncSession, number: str, *, now: datetime,
                         timezone: str = "UTC") -> dict[str, Any] | None:
    rows = list((
        await db.execute(
            select(Case, ServiceType, Agency)
            .join(ServiceType, ServiceType.id == Case.service_type_id)
            .outerjoin(Agency, Agency.id == Case.agency_id)
            .where(Case.number == number)
        )
    ).all())
    found = await _case_dicts(db, rows, now, timezone)
    return found[0] if found else None


async def service_types(db: AsyncSession) -> list[dict[str, str]]:
    rows = (
        await db.execute(
            select(ServiceType.code, ServiceType.name)
            .where(ServiceType.active.is_(True))
            .order_by(ServiceType.name)
        )
    ).all()
    return [{"code": r.code, "name": r.name} for r in rows]


async def link_call(db: AsyncSession, *, server: str, linkedid: str, case_id: int | None = None,
                    citizen_id: int | None = None, disposition: str | None = None,
                    wrap_seconds: float | None = None, tz: tzinfo = UTC) -> bool:
    """Set what the console learned on the call's record; False when the record is not written
    yet (the caller keeps it and tries again once the call has ended)."""
    call = (
        await db.execute(select(Call).where(Call.server == server, Call.linkedid == linkedid))
    ).scalar_one_or_none()
    if call is None:
        return False
    if case_id is not None:
        call.case_id = case_id
    if citizen_id is not None and call.citizen_id is None:
        call.citizen_id = citizen_id
    if disposition is not None:
        call.disposition = disposition
    if wrap_seconds is not None:
        old = call.wrap_seconds
        call.wrap_seconds = round(wrap_seconds, 3)
        call.handle_seconds = handle_time(call.talk_seconds, call.wrap_seconds)
        # the interval summary's handle time, in this transaction
        legs = (await db.execute(
            select(*LEG_COLUMNS).where(CallLeg.call_id == call.id, CallLeg.kind == "queue",
                                       CallLeg.queue.is_not(None)).order_by(CallLeg.seq)
        )).all()
        facts = facts_from_row(call, [LegFacts(leg.queue, leg.outcome, leg.agent,
                                               leg.wait_seconds, leg.talk_seconds)
                                      for leg in legs])
        await intervals.add_wrap(db, facts, old, call.wrap_seconds, tz)
    return True
