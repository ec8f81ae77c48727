"""Heavy reads off the serving event loop, and out of the serving process.

In `serve --role all` one event loop runs the IVR, the AMI bridge, the consoles and the web
pages. A report over months of calls counts hundreds of thousands of rows in Python: on that
loop it held every caller in silence for as long (issue 24 measured 31 s for a year). A thread
is not enough: the database driver decodes a large result in C without releasing the GIL, which
still stalled the loop for over 100 ms a report (bench/data.py measured it). So `OffLoop` runs
such work in a worker process (spawned, one by default) with its own event loop and its own
database engine; the serving process only awaits the pickled result, and the memory a report
needs is the worker's, not the server's.

Work is a module-level coroutine function `fn(sessions, *args)` (it and its arguments are
pickled by reference and value).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)
T = TypeVar("T")
Sessions = async_sessionmaker[AsyncSession]

WORKER_NICE = 10  # the worker's CPU priority below the serving process's
# the worker process's own loop and sessions (set by `_init` there; None in the server)
_loop: asyncio.AbstractEventLoop | None = None
_sessions: Sessions | None = None


def shareable(url: str) -> bool:
    """A second process sees the same data (not so for an in-memory SQLite database)."""
    parsed = make_url(url)
    return not (parsed.get_backend_name() == "sqlite"
                and (not parsed.database or parsed.database == ":memory:"))


def _init(url: str) -> None:
    global _loop, _sessions
    from contactcenter import db

    # Reports wait; callers do not: on a busy machine the scheduler serves the process with
    # the IVR and the AMI bridge first.
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICE)

    _loop = asyncio.new_event_loop()
    asyncio.set_event_loop(_loop)
    _sessions = db.make_sessionmaker(db.make_engine(url))


def _job(fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    assert _loop is not None and _sessions is not None, "not in an OffLoop worker"
    try:
        return _loop.run_until_complete(fn(_sessions, *args))
    finally:
        _give_back_memory()


def _give_back_memory() -> None:
    """A year's report briefly holds hundreds of MB in the worker; hand the freed heap back to
    the system (glibc keeps it otherwise) so an idle worker stays small."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory is reused by the next report
        pass


class OffLoop:
    """A pool of `workers` spawned processes, each with an event loop and an engine."""

    def __init__(self, database_url: str, *, workers: int = 1) -> None:
        self._url = database_url
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the server has threads and a running loop a fork would copy
        return ProcessPoolExecutor(
            max_workers=self._workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init, initargs=(self._url,))

    async def start(self) -> None:
        self._pool = self._new_pool()  # its process starts with the first report

    async def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """`await fn(sessions, *args)` in a worker; its exceptions are raised here."""
        if self._pool is None:
            raise RuntimeError("OffLoop.run before start()")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, _job, fn, args)
        except BrokenProcessPool:
            # the worker died (killed, out of memory): the next report gets a new one
            log.error("the report worker process died; starting a new one")
            old, self._pool = self._pool, self._new_pool()
            old.shutdown(wait=False, cancel_futures=True)
            raise RuntimeError("the report worker process died; try again") from None

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)


__all__ = ["OffLoop", "shareable"]
