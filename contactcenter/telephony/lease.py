"""The bridge lease: with ``CC_BRIDGE_LEASE=pg`` several bridge processes may run; the one that
holds a PostgreSQL advisory lock reads AMI, the others stand by and take over when it dies.

Why a PostgreSQL advisory lock (and not a Redis lock with a fencing token):
- the store already is PostgreSQL, so the lease adds no moving part, and a bridge that cannot
  reach the store could not write its records anyway;
- the lock belongs to the holder's database session: when the holder dies (kill -9, a crash,
  the machine), its connection closes and PostgreSQL releases the lock at once; a standby
  polling every `retry` second takes it within about a second, connects AMI, resyncs and
  reconciles the gap from the dead holder's checkpoint (`records.py`). No TTL to tune;
- a fencing token protects writes that must not come from two writers; here every write is
  idempotent (one row per (server, linkedid), "on conflict do nothing"; partial rows are
  completed by an UPDATE that needs ``partial``), so two bridges active for a moment (a holder
  whose connection died but whose process lives) duplicate work, never records. The holder
  still checks its session every `retry` seconds and stops reading AMI when it is gone.

A lease lost while the process lives is not taken back by that process: it stops its AMI links,
says so in /health (``lease``: lost, degraded), and must be restarted (it then stands by).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger(__name__)


def lease_key(name: str) -> int:
    """A stable 63-bit key for pg_try_advisory_lock from the site's name for the lease."""
    return zlib.crc32(f"contactcenter:bridge:{name}".encode()) | (0x5CC << 32)


class PgLease:
    def __init__(self, engine: AsyncEngine, key: int, *, retry: float = 1.0,
                 on_acquired: Callable[[], Awaitable[None]],
                 on_lost: Callable[[], Awaitable[None]]) -> None:
        self.engine, self.key, self.retry = engine, key, retry
        self.on_acquired, self.on_lost = on_acquired, on_lost
        self.state = "standby"  # standby | active | lost
        self.attempts = 0
        self.last_error: str | None = None
        self._conn: AsyncConnection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bridge-lease")

    async def _try(self) -> bool:
        if self._conn is None:
            self._conn = await self.engine.connect()
        got = (await self._conn.execute(
            text("select pg_try_advisory_lock(:k)"), {"k": self.key})).scalar()
        await self._conn.commit()  # no transaction left open on the holder's session
        return bool(got)

    async def _run(self) -> None:
        while self.state == "standby":
            self.attempts += 1
            try:
                if await self._try():
                    break
            except Exception as exc:  # the database is away: stand by, try again
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                await self._drop()
            await asyncio.sleep(self.retry)
        self.state = "active"
        log.warning("bridge lease %d acquired: this process reads AMI now", self.key)
        await self.on_acquired()
        while True:
            await asyncio.sleep(self.retry)
            try:
                assert self._conn is not None
                async with asyncio.timeout(max(self.retry * 3, 3.0)):
                    await self._conn.execute(text("select 1"))
                    await self._conn.commit()
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                self.state = "lost"
                log.error("bridge lease %d lost (%s): AMI reading stops; restart this process "
                          "to stand by again", self.key, self.last_error)
                await self._drop()
                await self.on_lost()
                return

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop()  # a clean stop hands the lease over at once

    def health(self) -> dict[str, Any]:
        return {"ok": self.state != "lost", "state": self.state, "key": self.key,
                "attempts": self.attempts,
                **({"last_error": self.last_error} if self.last_error else {})}
