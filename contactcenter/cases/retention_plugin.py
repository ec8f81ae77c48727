"""Wires the daily erasure of old personal data (CC_RETENTION_DAYS) into the part of the site
that owns the Asterisk side: it runs once per site (roles `all` and `bridge`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from ..keys import CLOCK, SESSIONS, SETTINGS
from .retention import purge_in_batches

log = logging.getLogger(__name__)
RETENTION_INTERVAL = 24 * 3600


async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
    """Erase old personal data once a day when CC_RETENTION_DAYS is set."""
    days = app[SETTINGS].retention_days
    task: asyncio.Task[None] | None = None
    if days > 0:
        async def loop() -> None:
            while True:
                try:
                    run = await purge_in_batches(app[SESSIONS], days, app[CLOCK].now())
                    log.info("retention (%d days): %s in %d transactions (longest %.2f s)",
                             days, run.result, run.batches, run.longest_batch_seconds)
                except Exception:
                    log.exception("retention purge failed; retrying tomorrow")
                await asyncio.sleep(RETENTION_INTERVAL)

        task = asyncio.get_running_loop().create_task(loop(), name="retention")
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(retention_ctx)
