"""Wires the notifier where it runs once per site (roles `all` and `bridge`, like the e-mail
intake): it hears every public `CaseChanged` on the bus (from any web process, over Redis),
writes the outbox and sends it, and queues the agencies' daily digest."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..events import CaseChanged
from ..keys import BUS, CLOCK, HEALTH, SESSIONS, SETTINGS
from .keys import NOTIFIER
from .services import Notifier


async def notifier_ctx(app: web.Application) -> AsyncIterator[None]:
    notifier = Notifier.from_settings(app[SESSIONS], app[SETTINGS], app[CLOCK])
    app[NOTIFIER] = notifier
    sub = app[BUS].subscribe(notifier.on_event, types=(CaseChanged,), name="notifier")
    task = asyncio.get_running_loop().create_task(notifier.run(), name="notifier")

    async def check() -> dict[str, Any]:
        return notifier.health()

    app[HEALTH]["notify"] = check
    try:
        yield
    finally:
        await sub.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(notifier_ctx)
