"""Wires call-backs (bridge role: they need the PBX and the FastAGI server): the service
subscribed to case closures, its placing loop, the FastAGI script `/callback`, and its part of
/health. Off unless CC_CALLBACK_CHANNEL says how to reach a citizen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from contactcenter.cases.keys import CASE_STORE
from contactcenter.config import SettingsError
from contactcenter.events import CaseChanged
from contactcenter.keys import AGI_ROUTES, BUS, CLOCK, HEALTH, PBX, SESSIONS, SETTINGS

from .keys import CALLBACK_SPEAKER, CALLBACKS
from .policy import CallbackRules, parse_hours
from .service import Callbacks

log = logging.getLogger(__name__)

SCRIPT = "/callback"  # the dialplan's [cc-callback]: AGI(agi://host:4573/callback)
CONTEXT = "cc-callback"


def rules_of(settings: Any) -> CallbackRules:
    try:
        start, end = parse_hours(settings.callback_hours)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    return CallbackRules(start, end, max(1, settings.callback_attempts),
                         timedelta(minutes=settings.callback_retry_minutes),
                         timedelta(seconds=settings.callback_answer_seconds))


async def callbacks_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.callback_channel:
        yield
        return
    if CALLBACK_SPEAKER not in app:
        raise SettingsError("CC_CALLBACK_CHANNEL is set but no voice is configured to speak "
                            "the call-backs")

    async def originate(phone: str, variables: dict[str, str]) -> None:
        await app[PBX].originate(settings.callback_channel.format(number=phone), CONTEXT, "s",
                                 caller_id=settings.callback_caller_id, variables=variables)

    service = Callbacks(app[SESSIONS], app[CASE_STORE], app[CLOCK].now,
                        ZoneInfo(settings.timezone), rules_of(settings), originate,
                        app[CALLBACK_SPEAKER])
    app[CALLBACKS] = service
    app[AGI_ROUTES][SCRIPT] = service.session
    sub = app[BUS].subscribe(service.on_event, types=(CaseChanged,), name="callbacks")
    task = asyncio.get_running_loop().create_task(service.run(), name="callbacks")

    async def check() -> dict[str, Any]:
        return {"ok": True, "placed": service.placed, "refused": service.failures,
                "last_error": service.last_error}

    app[HEALTH]["callbacks"] = check
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sub.close()


def setup(app: web.Application) -> None:
    rules_of(app[SETTINGS])  # a bad CC_CALLBACK_HOURS stops start-up with its reason
    app.cleanup_ctx.append(callbacks_ctx)
