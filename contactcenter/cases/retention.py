"""Personal-data retention: after N days, calls and closed cases lose what identifies a person.

Records and figures stay (outcomes, timings, service, queue, status, dates), so reports keep
adding up; what goes is the caller's number and name on calls, the citizen link on calls and
closed cases, citizens no record points to any more, and messages to citizens sent (or given
up) that long ago (notify_outbox: their address and text). `retention_days = 0` keeps
everything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import AuditLog, Call, Case, Citizen, NotifyOutbox


class PurgeResult(NamedTuple):
    calls: int
    cases: int
    citizens: int


async def purge_personal_data(
    sessions: async_sessionmaker[AsyncSession], days: int, now: datetime
) -> PurgeResult:
    if days <= 0:
        return PurgeResult(0, 0, 0)
    cutoff = now - timedelta(days=days)
    async with sessions() as session, session.begin():
        calls = cast("CursorResult[Any]", await session.execute(
            update(Call)
            .where(
                Call.ended_at < cutoff,
                or_(
                    Call.caller_number.is_not(None),
                    Call.caller_name.is_not(None),
                    Call.citizen_id.is_not(None),
                ),
            )
            .values(caller_number=None, caller_name=None, citizen_id=None)
        ))
        cases = cast("CursorResult[Any]", await session.execute(
            update(Case)
            .where(Case.status == "closed", Case.closed_at < cutoff, Case.citizen_id.is_not(None))
            .values(citizen_id=None)
        ))
        orphans = cast("CursorResult[Any]", await session.execute(
            delete(Citizen).where(
                Citizen.created_at < cutoff,
                ~exists(select(Call.id).where(Call.citizen_id == Citizen.id)),
                ~exists(select(Case.id).where(Case.citizen_id == Citizen.id)),
            )
        ))
        messages = cast("CursorResult[Any]", await session.execute(
            delete(NotifyOutbox).where(
                NotifyOutbox.created_at < cutoff,
                or_(NotifyOutbox.sent_at.is_not(None), NotifyOutbox.failed_at.is_not(None)),
            )
        ))
        result = PurgeResult(calls.rowcount or 0, cases.rowcount or 0, orphans.rowcount or 0)
        if result.calls or result.cases or result.citizens or messages.rowcount:
            session.add(AuditLog(
                actor="system", action="retention.purge", entity="personal_data",
                detail={"days": days, "calls": result.calls, "cases": result.cases,
                        "citizens": result.citizens, "messages": messages.rowcount or 0},
                at=now,
            ))
    return result
