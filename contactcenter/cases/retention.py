"""Personal-data retention: after N days, calls and closed cases lose what identifies a person.

Records and figures stay (outcomes, timings, service, queue, status, dates), so reports keep
adding up; what goes is the caller's number and name on calls, the citizen link on calls and
closed cases, citizens no record points to any more, and messages to citizens sent (or given
up) that long ago (notify_outbox: their address and text). `retention_days = 0` keeps
everything.

It scales to years of calls: each step reads its rows through an index (the partial indexes of
migration 0009 hold only rows that still carry personal data, so a daily run never re-reads what
earlier runs purged) and works in batches of `batch` rows, one short transaction each, so no
transaction holds locks for long and the calls being written meanwhile never wait. A dry run
counts what a purge would erase and changes nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, delete, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..audit import audit
from ..notify.models import NotifyOutbox
from .models import Call, Case, Citizen

BATCH_ROWS = 5000


class PurgeResult(NamedTuple):
    calls: int
    cases: int
    citizens: int


@dataclass(slots=True)
class PurgeRun:
    """A purge's totals and how it went: batches (transactions) and the longest of them."""

    result: PurgeResult
    cutoff: datetime
    batches: int = 0
    longest_batch_seconds: float = 0.0
    dry_run: bool = False


def _call_personal() -> Any:
    # the same predicate as the partial index ix_calls_ended_personal (models.CALL_PERSONAL)
    return or_(Call.caller_number.is_not(None), Call.caller_name.is_not(None),
               Call.citizen_id.is_not(None))


def _case_personal(cutoff: datetime) -> Any:
    return (Case.citizen_id.is_not(None), Case.closed_at < cutoff, Case.status == "closed")


async def count_personal_data(
    sessions: async_sessionmaker[AsyncSession], days: int, now: datetime
) -> PurgeRun:
    """What `purge_personal_data` would erase now (citizens: those no record would point to
    once the calls and cases are purged); nothing changes."""
    cutoff = now - timedelta(days=days)
    if days <= 0:
        return PurgeRun(PurgeResult(0, 0, 0), cutoff, dry_run=True)
    async with sessions() as s:
        calls = (await s.execute(select(func.count()).select_from(Call).where(
            Call.ended_at < cutoff, _call_personal()))).scalar_one()
        cases = (await s.execute(select(func.count()).select_from(Case).where(
            *_case_personal(cutoff)))).scalar_one()
        citizens = (await s.execute(select(func.count()).select_from(Citizen).where(
            Citizen.created_at < cutoff,
            ~exists(select(Call.id).where(Call.citizen_id == Citizen.id,
                                          Call.ended_at >= cutoff)),
            ~exists(select(Case.id).where(
                Case.citizen_id == Citizen.id,
                or_(Case.status != "closed", Case.closed_at.is_(None),
                    Case.closed_at >= cutoff))),
        ))).scalar_one()
    return PurgeRun(PurgeResult(int(calls), int(cases), int(citizens)), cutoff, dry_run=True)


async def purge_in_batches(
    sessions: async_sessionmaker[AsyncSession], days: int, now: datetime,
    *, batch: int = BATCH_ROWS,
) -> PurgeRun:
    cutoff = now - timedelta(days=days)
    run = PurgeRun(PurgeResult(0, 0, 0), cutoff)
    if days <= 0:
        return run
    batch = max(1, batch)

    async def step(work: Any) -> int:
        started = time.monotonic()
        async with sessions() as session, session.begin():
            done = int(await work(session))
        run.batches += 1
        run.longest_batch_seconds = max(run.longest_batch_seconds, time.monotonic() - started)
        return done

    # Each batch is one statement whose rows a LIMITed subquery picks through the index: no
    # list of ids travels through Python (5,000 bound parameters cost the loop ~50 ms a batch).
    async def calls_batch(session: AsyncSession) -> int:
        picked = (select(Call.id).where(Call.ended_at < cutoff, _call_personal())
                  .order_by(Call.ended_at).limit(batch).scalar_subquery())
        done = cast("CursorResult[Any]", await session.execute(
            update(Call).where(Call.id.in_(picked))
            .values(caller_number=None, caller_name=None, citizen_id=None)
            .execution_options(synchronize_session=False)))
        return done.rowcount or 0

    async def cases_batch(session: AsyncSession) -> int:
        picked = (select(Case.id).where(*_case_personal(cutoff))
                  .order_by(Case.closed_at).limit(batch).scalar_subquery())
        done = cast("CursorResult[Any]", await session.execute(
            update(Case).where(Case.id.in_(picked)).values(citizen_id=None)
            .execution_options(synchronize_session=False)))
        return done.rowcount or 0

    calls = cases = citizens = 0
    while (n := await step(calls_batch)) > 0:
        calls += n
    while (n := await step(cases_batch)) > 0:
        cases += n
    # Citizens: walk the old ones by id, `batch` candidates at a time (whether they can go or
    # are still referenced), deleting those no call or case points to.
    last_id = 0
    upto: int | None = None

    async def citizens_batch(session: AsyncSession) -> int:
        nonlocal upto
        window = (select(Citizen.id).where(Citizen.created_at < cutoff, Citizen.id > last_id)
                  .order_by(Citizen.id).limit(batch).subquery())
        upto = (await session.execute(select(func.max(window.c.id)))).scalar_one_or_none()
        if upto is None:
            return 0
        gone = cast("CursorResult[Any]", await session.execute(
            delete(Citizen).where(
                Citizen.id > last_id, Citizen.id <= upto, Citizen.created_at < cutoff,
                ~exists(select(Call.id).where(Call.citizen_id == Citizen.id)),
                ~exists(select(Case.id).where(Case.citizen_id == Citizen.id)),
            ).execution_options(synchronize_session=False)))
        return gone.rowcount or 0

    async def messages_batch(session: AsyncSession) -> int:
        picked = (select(NotifyOutbox.id).where(
            NotifyOutbox.created_at < cutoff,
            or_(NotifyOutbox.sent_at.is_not(None), NotifyOutbox.failed_at.is_not(None)),
        ).limit(batch).scalar_subquery())
        done = cast("CursorResult[Any]", await session.execute(
            delete(NotifyOutbox).where(NotifyOutbox.id.in_(picked))
            .execution_options(synchronize_session=False)))
        return done.rowcount or 0

    while True:
        citizens += await step(citizens_batch)
        if upto is None:
            break
        last_id = upto
    messages = 0
    while (n := await step(messages_batch)) > 0:
        messages += n
    run.result = PurgeResult(calls, cases, citizens)
    if calls or cases or citizens or messages:
        async with sessions() as session, session.begin():
            audit(session, "system", "retention.purge", "personal_data", None,
                  {"days": days, "calls": calls, "cases": cases, "citizens": citizens,
                   "messages": messages, "batches": run.batches}, at=now)
    return run


async def purge_personal_data(
    sessions: async_sessionmaker[AsyncSession], days: int, now: datetime,
    *, batch: int = BATCH_ROWS,
) -> PurgeResult:
    return (await purge_in_batches(sessions, days, now, batch=batch)).result
