"""Heavy reads off the serving event loop.

In `serve --role all` one event loop runs the IVR, the AMI bridge, the consoles and the web
pages. A report over months of calls counts hundreds of thousands of rows in Python: on that
loop it would hold every caller in silence for as long (issue 24 measured 31 s for a year).
`OffLoop` runs such work on a thread of its own, with its own event loop and its own database
engine (an engine's connections belong to the loop that opened them); the serving loop only
awaits the result. The thread holds the GIL in slices of `sys.getswitchinterval()` (5 ms), so
the serving loop keeps answering while a report is computed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from contactcenter import db

log = logging.getLogger(__name__)
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]


def shareable(url: str) -> bool:
    """A second engine sees the same data (not so for an in-memory SQLite database)."""
    parsed = make_url(url)
    return not (parsed.get_backend_name() == "sqlite"
                and (not parsed.database or parsed.database == ":memory:"))


class OffLoop:
    """One worker thread with an event loop and an engine on `database_url`."""

    def __init__(self, database_url: str, *, name: str = "reports", pool_size: int = 2) -> None:
        self._url = database_url
        self._name = name
        self._pool_size = pool_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine: AsyncEngine | None = None
        self._sessions: Sessions | None = None

    async def start(self) -> None:
        ready: Future[None] = Future()

        def main() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            kwargs = {} if make_url(self._url).get_backend_name() == "sqlite" else {
                "pool_size": self._pool_size, "max_overflow": 0}
            self._engine = db.make_engine(self._url, **kwargs)
            self._sessions = db.make_sessionmaker(self._engine)
            ready.set_result(None)
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=main, name=f"offloop:{self._name}", daemon=True)
        self._thread.start()
        await asyncio.wrap_future(ready)

    async def run(self, work: Callable[[Sessions], Awaitable[T]]) -> T:
        """`work(sessions)` on the worker's loop; cancelling the caller cancels the work."""
        loop, sessions = self._loop, self._sessions
        if loop is None or sessions is None:
            raise RuntimeError("OffLoop.run before start()")

        async def call() -> T:
            return await work(sessions)

        future = asyncio.run_coroutine_threadsafe(call(), loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise

    async def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        engine = self._engine

        async def dispose() -> None:
            if engine is not None:
                await engine.dispose()

        try:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(dispose(), loop))
        except Exception as exc:  # a dead database must not block shutdown
            log.warning("off-loop worker %s: engine dispose failed (%s)", self._name, exc)
        loop.call_soon_threadsafe(loop.stop)
        await asyncio.to_thread(thread.join, 10)
        self._loop = self._thread = None


__all__ = ["OffLoop", "shareable"]
