"""Agent reports: each operator's day from their presence history and the calls they answered.

Pure: `summarize` takes the intervals (presence_intervals) and the answered legs, clips each
interval to the day (an interval still open counts until `now`), and adds up per operator:
logged-in time, ready, ringing, on calls, wrap-up, unavailable, paused by reason; calls
answered, talk, AHT ((talk + wrap) / answered) and occupancy ((on calls + ringing + wrap-up) /
(that + ready): the share of the time they could take calls that they spent handling them).
`load` reads the rows for one day of the center's zone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..cases.models import Call, CallLeg
from ..web.models import User
from . import presence as P
from .models import PresenceInterval

HANDLING = (P.ON_CALL, P.RINGING, P.WRAPUP)


@dataclass(slots=True)
class AgentDay:
    interface: str
    name: str
    seconds: dict[str, float] = field(default_factory=dict)  # state -> seconds
    paused_by_reason: dict[str, float] = field(default_factory=dict)
    answered: int = 0
    talk_seconds: float = 0.0
    wrap_seconds: float = 0.0

    @property
    def logged_in_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def aht_seconds(self) -> float | None:
        if not self.answered:
            return None
        return (self.talk_seconds + self.wrap_seconds) / self.answered

    @property
    def occupancy(self) -> float | None:
        handling = sum(self.seconds.get(s, 0.0) for s in HANDLING)
        ready = self.seconds.get(P.AVAILABLE, 0.0)
        return handling / (handling + ready) if handling + ready > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface, "name": self.name,
            "logged_in_seconds": _round1(self.logged_in_seconds),
            "ready_seconds": _round1(self.seconds.get(P.AVAILABLE, 0.0)),
            "ringing_seconds": _round1(self.seconds.get(P.RINGING, 0.0)),
            "on_call_seconds": _round1(self.seconds.get(P.ON_CALL, 0.0)),
            "wrapup_seconds": _round1(self.seconds.get(P.WRAPUP, 0.0)),
            "unavailable_seconds": _round1(self.seconds.get(P.UNAVAILABLE, 0.0)),
            "paused_seconds": _round1(self.seconds.get(P.PAUSED, 0.0)),
            "paused_by_reason": {k: _round1(v) for k, v in sorted(self.paused_by_reason.items())},
            "answered": self.answered,
            "talk_seconds": _round1(self.talk_seconds),
            "aht_seconds": _round1(self.aht_seconds),
            "occupancy": None if self.occupancy is None else round(self.occupancy, 4),
        }


def _round1(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


@dataclass(frozen=True, slots=True)
class Interval:
    interface: str
    state: str
    reason: str | None
    start: datetime
    end: datetime | None


@dataclass(frozen=True, slots=True)
class Answered:
    interface: str
    talk_seconds: float | None
    wrap_seconds: float | None


def summarize(intervals: Iterable[Interval], answered: Iterable[Answered], *,
              start: datetime, end: datetime, now: datetime,
              names: dict[str, str] | None = None) -> list[AgentDay]:
    names = names or {}
    days: dict[str, AgentDay] = {}

    def day(interface: str) -> AgentDay:
        d = days.get(interface)
        if d is None:
            d = days[interface] = AgentDay(interface, names.get(interface, interface))
        return d

    for iv in intervals:
        a = max(iv.start, start)
        b = min(iv.end if iv.end is not None else now, end)
        if b <= a or iv.state == P.LOGGED_OUT:
            continue
        secs = (b - a).total_seconds()
        d = day(iv.interface)
        d.seconds[iv.state] = d.seconds.get(iv.state, 0.0) + secs
        if iv.state == P.PAUSED:
            reason = iv.reason or "(none)"
            d.paused_by_reason[reason] = d.paused_by_reason.get(reason, 0.0) + secs
    for ans in answered:
        d = day(ans.interface)
        d.answered += 1
        d.talk_seconds += ans.talk_seconds or 0.0
        d.wrap_seconds += ans.wrap_seconds or 0.0
    return sorted(days.values(), key=lambda d: (d.name.lower(), d.interface))


def day_bounds(day: date, tz: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(tz)
    start = datetime.combine(day, time(0), zone)
    return start, datetime.combine(day + timedelta(days=1), time(0), zone)


async def load(db: AsyncSession, day: date, tz: str, now: datetime) -> list[AgentDay]:
    start, end = day_bounds(day, tz)
    rows = (await db.execute(
        select(PresenceInterval).where(
            PresenceInterval.started_at < end,
            or_(PresenceInterval.ended_at.is_(None), PresenceInterval.ended_at > start))
    )).scalars().all()
    intervals = [Interval(r.interface, r.state, r.reason, r.started_at, r.ended_at)
                 for r in rows]
    # Each answered queue leg is one call answered by that operator; the call's wrap-up is
    # the work of its last operator (calls.agent_interface).
    legs = (await db.execute(
        select(CallLeg.agent_interface, CallLeg.talk_seconds, Call.agent_interface,
               Call.wrap_seconds)
        .join(Call, Call.id == CallLeg.call_id)
        .where(CallLeg.joined_at >= start, CallLeg.joined_at < end,
               CallLeg.outcome.in_(("answered", "transferred")),
               CallLeg.agent_interface.is_not(None))
    )).all()
    answered = [Answered(leg[0] or "", leg[1], leg[3] if leg[2] == leg[0] else None)
                for leg in legs]
    users = (await db.execute(select(User.interface, User.display_name, User.username)
                              .where(User.interface.is_not(None)))).all()
    names = {u[0] or "": u[1] or u[2] for u in users}
    return summarize(intervals, answered, start=start, end=end, now=now, names=names)
