"""The supervisor feature's domain services: statistics fed from the bus and rebuilt from the store,
and the supervisor's actions (pause, unpause, log out an operator; a message to every console)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.audit import audit
from contactcenter.bus import BaseBus
from contactcenter.cases.models import Call, CallLeg
from contactcenter.config import Settings
from contactcenter.events import (
    BroadcastMessage,
    CallEnded,
    Event,
    Pbx,
    PbxError,
)
from contactcenter.queues.directory import QueueDirectory, QueueInfo
from contactcenter.web.models import User

from .stats import (
    EVENT_TYPES,
    CallFacts,
    LegFacts,
    Operator,
    QueueConfig,
    QueueStats,
    clean_text,
)

log = logging.getLogger(__name__)

BROADCAST_MAX = 500  # characters of a message to every console
PAUSE_REASON_MAX = 40

# The columns of `calls` the figures read (never the whole row: rebuilds stay cheap).
FACT_COLUMNS = (
    Call.id, Call.server, Call.linkedid, Call.started_at, Call.ended_at, Call.outcome,
    Call.queue, Call.service, Call.agent, Call.wait_seconds, Call.talk_seconds,
    Call.wrap_seconds,
)
LEG_COLUMNS = (
    CallLeg.call_id, CallLeg.queue, CallLeg.outcome, CallLeg.agent, CallLeg.wait_seconds,
    CallLeg.talk_seconds,
)


def facts_from_row(row: Any, legs: Sequence[LegFacts] = ()) -> CallFacts:
    """A calls row and its queue legs (none: the one leg its columns describe)."""
    return CallFacts(
        call_id=f"{row.server}:{row.linkedid}", started_at=row.started_at, outcome=row.outcome,
        queue=row.queue, service=row.service, agent=row.agent, wait_seconds=row.wait_seconds,
        talk_seconds=row.talk_seconds, wrap_seconds=row.wrap_seconds, legs=tuple(legs),
    )


async def load_facts(
    db: AsyncSession, start: datetime, end: datetime | None = None
) -> list[tuple[CallFacts, Any]]:
    """The calls that started in [start, end), in order, with their queue legs."""
    where = [Call.started_at >= start, *([Call.started_at < end] if end is not None else [])]
    rows = (
        await db.execute(select(*FACT_COLUMNS).where(*where).order_by(Call.started_at, Call.id))
    ).all()
    legs: dict[int, list[LegFacts]] = {}
    found = await db.execute(
        select(*LEG_COLUMNS).join(Call, Call.id == CallLeg.call_id)
        .where(*where, CallLeg.kind == "queue", CallLeg.queue.is_not(None))
        .order_by(CallLeg.call_id, CallLeg.seq)
    )
    for leg in found.all():
        legs.setdefault(leg.call_id, []).append(LegFacts(
            leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.talk_seconds))
    return [(facts_from_row(row, legs.get(row.id, ())), row) for row in rows]


def queue_config(q: QueueInfo) -> QueueConfig:
    return QueueConfig(
        name=q.name, display_name=q.display_name, group=q.group,
        service_level_seconds=q.service_level_seconds,
        service_level_target=q.service_level_target,
        short_abandon_seconds=q.short_abandon_seconds,
        max_wait_target_seconds=q.max_wait_target_seconds, wrapup_seconds=q.wrapup_seconds,
    )


class ActionError(Exception):
    """A supervisor action was refused; `status` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SupervisorService:
    """Owns the live `QueueStats` of this process: fed by the bus, rebuilt from the store."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: BaseBus,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)
        self.stats = QueueStats(
            tz=self.tz,
            default=QueueConfig(
                name="", service_level_seconds=settings.service_level_seconds,
                short_abandon_seconds=settings.short_abandon_seconds,
            ),
        )
        self.listeners: list[Callable[[], None]] = []  # told when the wallboard may change
        self.observers: list[Callable[[Event, float], None]] = []  # (event, lag s): metrics
        self.rebuilt_at: datetime | None = None
        self.rebuilt_calls = 0
        self.last_event_at: float | None = None  # monotonic
        self.last_lag: float | None = None
        # The bus dropped events meant for these figures (its queue was full): they are marked
        # stale until a rebuild from the store that started after the last drop has finished.
        self.rebuilding = False
        self.drops = 0  # events the bus dropped for this service
        self.drop_rebuilds = 0  # rebuilds done because of drops
        self.drop_wake = asyncio.Event()

    # --- feeding ------------------------------------------------------------------------------

    async def on_event(self, event: Event) -> None:
        """The bus handler: one event into the statistics, then wake the wallboard."""
        now = self.clock()
        lag = max(0.0, (now - _event_time(event, now)).total_seconds())
        self.last_lag = lag
        self.last_event_at = time.monotonic()
        if self.stats.apply(event):
            self._changed()
        for observe in self.observers:
            observe(event, lag)

    def _changed(self) -> None:
        for notify in self.listeners:
            notify()

    def follow(self, directory: QueueDirectory) -> None:
        """Queues' thresholds from the directory, now and after every reload (an admin's edit
        recounts today's figures with the new thresholds)."""

        def update(d: QueueDirectory) -> None:
            self.stats.set_queues(queue_config(q) for q in d.all())
            self._changed()

        update(directory)
        directory.on_change(update)

    async def load_config(self) -> None:
        """The operators' roster from the store (admins edit it)."""
        async with self.sessions() as db:
            users = (
                await db.execute(
                    select(User).where(
                        User.role == "operator", User.active.is_(True),
                        User.interface.is_not(None),
                    )
                )
            ).scalars().all()
        self.stats.set_operators(
            Operator(u.interface or "", u.display_name or u.username, tuple(u.queues or ()),
                     tuple(u.languages or ()))
            for u in users
        )
        self._changed()

    async def rebuild(self) -> int:
        """Count today's (and the last hour's) finished calls from the `calls` table.

        Safe while events flow: every call is counted once by its id, whichever path
        (event or row) brings it first. Returns how many rows were read.
        """
        now = self.clock()
        self.stats.advance(now)
        day_start = self.stats.day_start(self.stats.local_day(now))
        since = min(day_start, now - timedelta(hours=1))
        async with self.sessions() as db:
            rows = await load_facts(db, since)
        for facts, row in rows:
            self.stats.add_call(facts, ended_at=row.ended_at)
        self.rebuilt_at = now
        self.rebuilt_calls = len(rows)
        log.info("wallboard figures rebuilt from %d calls since %s", len(rows), since)
        self._changed()
        return len(rows)

    def events_dropped(self, total: int) -> None:
        """The bus's `on_drop`: these figures missed an event; say so and rebuild."""
        self.drops = total
        if not self.rebuilding:
            log.warning("wallboard figures missed events (the bus dropped %d): stale, "
                        "rebuilding from the store", total)
            self.rebuilding = True
            self._changed()
        self.drop_wake.set()

    async def rebuild_after_drops(self, backlog: Callable[[], int], settle: float = 1.0,
                                  retry: float = 5.0) -> None:
        """Forever: after drops, wait for the bus backlog to empty and for the writer to store
        what it has (`settle`), then count from the store again (a call already counted is
        not counted twice); stale until a rebuild begun after the last drop succeeds."""
        while True:
            await self.drop_wake.wait()
            # a poll: the queue's join() may never return under steady load
            while backlog() > 0:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await asyncio.sleep(settle)
            self.drop_wake.clear()
            try:
                await self.rebuild()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is down: stay stale, try again
                log.warning("wallboard rebuild after dropped events failed (%s)", exc)
                await asyncio.sleep(retry)
                self.drop_wake.set()
                continue
            self.drop_rebuilds += 1
            if not self.drop_wake.is_set():  # no drop meanwhile: the figures are whole again
                self.rebuilding = False
                log.info("wallboard figures rebuilt after dropped events")
                self._changed()

    def snapshot(self, group: str | None = None) -> dict[str, Any]:
        return self._staleness(self.stats.snapshot(self.clock(), group))

    def _staleness(self, snap: dict[str, Any]) -> dict[str, Any]:
        if self.rebuilding:
            snap["stale"] = True
            snap["stale_reason"] = "rebuilding"
        elif snap["stale"]:
            snap["stale_reason"] = "link"
        return snap

    def api_queues(self, window: str) -> dict[str, Any]:
        """`GET /api/queues` (issue 7's shape): live state plus today's or the hour's counts."""
        snap = self._staleness(self.stats.snapshot(self.clock()))
        out = []
        for q in snap["queues"]:
            fig = q["hour" if window == "hour" else "today"]
            out.append({
                "name": q["name"],
                "waiting": q["now"]["waiting"],
                "longest_wait_seconds": q["now"]["longest_wait_seconds"],
                "offered": fig["offered"],
                "answered": fig["answered"],
                "abandoned": fig["abandoned"],
                "short_abandoned": fig["short_abandoned"],
                "timed_out": fig["timed_out"],
                "service_level": fig["service_level"],
                "asa_seconds": fig["asa_seconds"],
                "aht_seconds": fig["aht_seconds"],
                "abandon_rate": fig["abandon_rate"],
                "agents": dict(q["now"]["agents"]),
            })
        # issue 7's shape; "stale_reason" ("link", "rebuilding") only while stale
        extra = {"stale_reason": snap["stale_reason"]} if snap.get("stale_reason") else {}
        return {"stale": snap["stale"], **extra, "queues": out}

    # --- actions ------------------------------------------------------------------------------

    def member_queues(self, interface: str) -> list[str]:
        """The queues an interface is a (logged-in) member of, as the statistics know it."""
        return self.stats.member_queues(interface)

    async def agent_action(
        self, pbx: Pbx | None, actor: str, action: str, interface: str, reason: str = ""
    ) -> dict[str, Any]:
        """pause / unpause / logout one operator through the PBX; audited."""
        interface = interface.strip()
        if action not in ("pause", "unpause", "logout"):
            raise ActionError(f"unknown action {action!r} (pause, unpause or logout)")
        if not interface or len(interface) > 120 or not interface.isprintable():
            raise ActionError("interface is missing or malformed")
        reason = reason.strip()
        if len(reason) > PAUSE_REASON_MAX or not reason.isprintable():
            raise ActionError(f"reason must be printable, at most {PAUSE_REASON_MAX} characters")
        if pbx is None:
            raise ActionError("the PBX link is not configured in this process", 503)
        queues = self.member_queues(interface)
        known = interface in self.stats.operators or queues
        if not known:
            raise ActionError(f"no operator with interface {interface!r}", 404)
        try:
            if action == "pause":
                await pbx.queue_pause(interface, True, reason=reason or "supervisor")
            elif action == "unpause":
                await pbx.queue_pause(interface, False)
            else:
                if not queues:
                    raise ActionError(f"{interface} is not logged in to any queue", 409)
                for queue in queues:
                    await pbx.queue_remove(queue, interface)
        except PbxError as exc:
            raise ActionError(f"Asterisk refused: {exc}", 502) from exc
        async with self.sessions() as db, db.begin():
            audit(db, actor, f"agent.{action}", "agent", interface,
                  {"reason": reason, "queues": queues})
        log.info("%s: %s %s %s", actor, action, interface, reason)
        return {"ok": True, "action": action, "interface": interface, "queues": queues}

    async def broadcast(self, sender: str, text: str) -> BroadcastMessage:
        text = text.strip()
        if not text:
            raise ActionError("the message is empty")
        if len(text) > BROADCAST_MAX:
            raise ActionError(f"the message is longer than {BROADCAST_MAX} characters")
        msg = BroadcastMessage(sender=sender, text=text, at=self.clock())
        await self.bus.publish(msg)
        async with self.sessions() as db, db.begin():
            audit(db, sender, "console.broadcast", "console", None,
                  {"text": clean_text(text, 200)})
        return msg


def _event_time(event: Event, now: datetime) -> datetime:
    if isinstance(event, CallEnded):
        return event.record.ended_at
    at = getattr(event, "at", None)
    return at if isinstance(at, datetime) else now


SUBSCRIBED: tuple[type[Event], ...] = EVENT_TYPES

__all__ = ["ActionError", "SupervisorService", "facts_from_row", "load_facts", "queue_config"]
