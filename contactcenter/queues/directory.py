"""QueueDirectory: the `queues` table, read once and kept in memory in each process.

The bridge (short-abandon thresholds), the wallboard (service level, targets, groups), the
console's presence (wrap-up) and the IVR (office hours) all read queues from here, so after an
admin's edit they change together: the admin publishes `QueuesChanged` on the bus (Redis between
processes) and every process reloads. A reload that fails keeps the previous copy (and says so
in /health); callers never wait on the store for a queue's settings.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ..cases.models import Queue

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
        )


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

__all__ = ["QUEUE_DIRECTORY", "QueueDirectory", "QueueInfo"]
