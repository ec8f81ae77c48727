"""Operators' presence kept in the database (issue 19, "durable presence").

`operator_presence` holds what each operator asked for (logged in to which queues, with which
penalty, paused with which reason): after Asterisk forgot its members (a restart with
`persistentmembers = no`) or the product forgot its memory (a restart of ours), this is what is
put back. `presence_intervals` keeps each stretch of an operator's state for agent reports.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import OperatorPresence, PresenceInterval
from .presence import Transition


@dataclass(slots=True)
class Desired:
    """One operator's wish, as the console last recorded it."""

    interface: str
    username: str
    member_name: str
    queues: tuple[str, ...]
    penalty: int = 0
    logged_in: bool = True
    paused: bool = False
    pause_reason: str | None = None
    since: datetime | None = None  # when this wish was recorded (health's grace period)


class PresenceStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def load(self) -> list[Desired]:
        """Every operator recorded as logged in."""
        async with self.sessions() as db:
            rows = (await db.execute(
                select(OperatorPresence).where(OperatorPresence.logged_in.is_(True))
            )).scalars().all()
        return [Desired(r.interface, r.username, r.member_name,
                        tuple(str(q) for q in r.queues), r.penalty, True, r.paused,
                        r.pause_reason, r.updated_at) for r in rows]

    async def save(self, d: Desired, now: datetime) -> None:
        async with self.sessions() as db, db.begin():
            row = await db.get(OperatorPresence, d.interface)
            if row is None:
                row = OperatorPresence(interface=d.interface)
                db.add(row)
            row.username = d.username[:80]
            row.member_name = d.member_name[:120]
            row.queues = list(d.queues)
            row.penalty = d.penalty
            row.logged_in = d.logged_in
            row.paused = d.paused
            row.pause_reason = d.pause_reason[:40] if d.pause_reason else None
            row.updated_at = now

    async def record(self, transitions: Iterable[Transition]) -> int:
        """Close each interface's open interval and open the next (none for logged_out)."""
        items = list(transitions)
        if not items:
            return 0
        async with self.sessions() as db, db.begin():
            for t in items:
                await db.execute(
                    update(PresenceInterval)
                    .where(PresenceInterval.interface == t.interface,
                           PresenceInterval.ended_at.is_(None))
                    .values(ended_at=t.at)
                )
                if t.state != "logged_out":
                    db.add(PresenceInterval(interface=t.interface[:80], state=t.state,
                                            reason=t.reason[:40] if t.reason else None,
                                            started_at=t.at))
        return len(items)

    async def intervals(self, interface: str) -> list[PresenceInterval]:
        async with self.sessions() as db:
            return list((await db.execute(
                select(PresenceInterval).where(PresenceInterval.interface == interface)
                .order_by(PresenceInterval.started_at, PresenceInterval.id)
            )).scalars().all())
