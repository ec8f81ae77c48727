"""Wires the case store: its services, Open311, the status page, API keys and e-mail intake."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from ..keys import API_KEYS, BUS, CASE_STORE, EMAIL_INTAKE, HEALTH, SESSIONS, SETTINGS
from .email_intake import EmailIntake
from .http import add_routes
from .store import ApiKeys, CaseStore

log = logging.getLogger(__name__)


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    # runs after the database and bus contexts, which create SESSIONS and BUS
    app[CASE_STORE] = CaseStore(app[SESSIONS], app[BUS])
    app[API_KEYS] = ApiKeys(app[SESSIONS])
    yield


async def email_intake_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.smtp_port:
        yield
        return
    intake = EmailIntake(app[CASE_STORE], settings)
    await intake.start()
    app[EMAIL_INTAKE] = intake

    async def check() -> dict[str, Any]:
        return intake.health()

    app[HEALTH]["email_intake"] = check
    try:
        yield
    finally:
        await intake.stop()


def setup(app: web.Application) -> None:
    app.cleanup_ctx.append(store_ctx)
    app.cleanup_ctx.append(email_intake_ctx)
    add_routes(app)
