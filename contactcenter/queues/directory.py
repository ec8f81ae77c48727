"""QueueDirectory: the `queues` table, read once and kept in memory in each process.

The bridge (short-abandon thresholds), the wallboard (service level, targets, groups), the
console's presence (wrap-up) and the IVR (office hours) all read queues from here, so after an
admin's edit they change together: the admin publishes `QueuesChanged` on the bus (Redis between
processes) and every process reloads. A reload that fails keeps the previous copy (and says so
in /health); callers never wait on the store for a queue's settings.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .models import Queue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """One queue's settings, detached from the database session."""

    name: str
    display_name: str = ""
    group: str = "main"
    strategy: str = "ringall"
    service_level_seconds: int = 15
    service_level_target: float = 0.8
    short_abandon_seconds: int = 5
    max_wait_target_seconds: int = 60
    wrapup_seconds: int = 30
    ring_timeout_seconds: int = 15
    office_hours: Mapping[str, Any] = field(default_factory=dict)
    holidays: tuple[str, ...] = ()
    timezone: str = "UTC"
    retry_seconds: int = 5
    joinempty: str = "yes"
    leavewhenempty: str = "no"
    announce_frequency: int = 60
    announce_position: bool = True
    announce_holdtime: str = "once"
    periodic_announce: str = ""
    periodic_announce_frequency: int = 0
    musicclass: str = "default"
    weight: int = 0
    language_wait_seconds: int = 30
    max_wait_seconds: int = 0  # 0: the dialplan's QUEUE_MAX_WAIT

    @classmethod
    def from_row(cls, q: Queue) -> QueueInfo:
        return cls(
            name=q.name, display_name=q.display_name, group=q.group_name or "main",
            strategy=q.strategy, service_level_seconds=q.service_level_seconds,
            service_level_target=q.service_level_target,
            short_abandon_seconds=q.short_abandon_seconds,
            max_wait_target_seconds=q.max_wait_target_seconds, wrapup_seconds=q.wrapup_seconds,
            ring_timeout_seconds=q.ring_timeout_seconds, office_hours=dict(q.office_hours or {}),
            holidays=tuple(str(h) for h in q.holidays or ()), timezone=q.timezone or "UTC",
            max_wait_seconds=q.max_wait_seconds or 0,
            **{name: getattr(q, name) for name in ASTERISK_FIELDS},
        )


# The settings Asterisk is given besides name, strategy, ring timeout and service level
# (telephony/queues_conf.py maps each to its queues.conf option).
ASTERISK_FIELDS = ("retry_seconds", "joinempty", "leavewhenempty", "announce_frequency",
                   "announce_position", "announce_holdtime", "periodic_announce",
                   "periodic_announce_frequency", "musicclass", "weight",
                   "language_wait_seconds")


def fingerprint(queues: Iterable[QueueInfo]) -> str:
    """A digest of every queue's settings: equal when two processes read the same store, so
    the admin page can tell whether what Asterisk last loaded is what the store holds now."""
    rows = sorted((dataclasses.asdict(q) for q in queues), key=lambda r: str(r["name"]))
    blob = json.dumps(rows, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


Listener = Callable[["QueueDirectory"], None]


class QueueDirectory:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._queues: dict[str, QueueInfo] = {}
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self.loaded_at: float | None = None  # monotonic; None until the first load succeeded
        self.loads = 0
        self.last_error = ""

    def get(self, name: str) -> QueueInfo | None:
        return self._queues.get(name)

    def all(self) -> list[QueueInfo]:
        return sorted(self._queues.values(), key=lambda q: q.name)

    def on_change(self, listener: Listener) -> None:
        """`listener(directory)` runs after every successful load (and not before the first)."""
        self._listeners.append(listener)

    async def load(self) -> bool:
        """Read the table again; False (previous copy kept, error logged) when it cannot."""
        async with self._lock:
            try:
                async with self._sessions() as session:
                    rows = (await session.execute(select(Queue))).scalars().all()
                queues = {q.name: QueueInfo.from_row(q) for q in rows}
            except Exception as exc:  # the store down or not migrated: keep what we have
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                log.warning("queues not (re)loaded, keeping %d known (%s)", len(self._queues),
                            self.last_error)
                return False
            self._queues = queues
            self.loaded_at = time.monotonic()
            self.loads += 1
            self.last_error = ""
        for listener in self._listeners:
            listener(self)
        return True

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": True, "queues": len(self._queues),
                               "loaded": self.loaded_at is not None}
        if self.last_error:
            out["error"] = self.last_error
        return out


QUEUE_DIRECTORY = web.AppKey("queue_directory", QueueDirectory)

__all__ = ["ASTERISK_FIELDS", "QUEUE_DIRECTORY", "QueueDirectory", "QueueInfo", "fingerprint"]
