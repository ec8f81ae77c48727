"""Wires the QueueDirectory in every role: loaded before the features that read it start,
reloaded on `QueuesChanged` (from any process, through the bus) and, as a safety net for a
lost message, every few minutes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..events import Event, QueuesChanged
from ..keys import BUS, HEALTH, SESSIONS
from .directory import QUEUE_DIRECTORY, QueueDirectory

LOAD_TIMEOUT_SECONDS = 5.0
SAFETY_RELOAD_SECONDS = 300.0


async def directory_ctx(app: web.Application) -> AsyncIterator[None]:
    directory = QueueDirectory(app[SESSIONS])
    app[QUEUE_DIRECTORY] = directory
    with contextlib.suppress(TimeoutError):  # a slow store: the safety reload tries again
        await asyncio.wait_for(directory.load(), LOAD_TIMEOUT_SECONDS)

    async def changed(event: Event) -> None:
        if isinstance(event, QueuesChanged):
            await directory.load()

    sub = app[BUS].subscribe(changed, types=(QueuesChanged,), name="queues.directory")

    async def safety_reload() -> None:
        while True:
            await asyncio.sleep(SAFETY_RELOAD_SECONDS if directory.loaded_at else 5.0)
            await directory.load()

    task = asyncio.get_running_loop().create_task(safety_reload(), name="queues:reload")

    async def check() -> dict[str, Any]:
        return directory.health()

    app[HEALTH]["queues"] = check
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sub.close()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(directory_ctx)


__all__ = ["setup"]
