"""The citizen's one clock of a case, read from the store: first contact (the earliest linked
call, or the receipt), answered (that call's IVR time and queue wait), acknowledged by the
agency (its public history), resolved (closed). Shown on the case page and, all of it being
public, on the status page."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import Call
from .store import CaseStore, CaseView
from .timeline import TimelineStep, contact_timeline, first_contact


async def citizen_clock(sessions: async_sessionmaker[AsyncSession], store: CaseStore,
                        view: CaseView, now: datetime) -> tuple[list[TimelineStep], float]:
    async with sessions() as db:
        first = (await db.execute(
            select(Call.started_at, Call.ivr_seconds, Call.wait_seconds, Call.outcome)
            .where(Call.case_id == view.id).order_by(Call.started_at).limit(1))).first()
    contact = first_contact(view.created_at, first.started_at if first else None)
    answered = None
    if first is not None and first.started_at <= view.created_at and \
            first.outcome == "answered":
        answered = first.started_at + timedelta(
            seconds=(first.ivr_seconds or 0.0) + (first.wait_seconds or 0.0))
    updates = await store.public_history(view.id)
    acknowledged = next((u.at for u in updates if u.change == "acknowledged"), None)
    return contact_timeline(contact=contact, answered=answered, acknowledged=acknowledged,
                            resolved=view.closed_at if view.status == "closed" else None,
                            now=now)
