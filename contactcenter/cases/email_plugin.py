"""Wires the e-mail intake: one SMTP listener per site, in the process that owns the Asterisk
side (`--role all` or `--role bridge`), never in each of several web processes (they would
fight over the port)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from contactcenter.cases.keys import CASE_STORE, EMAIL_INTAKE

from ..keys import BUS, CLOCK, HEALTH, SESSIONS, SETTINGS
from .email_intake import EmailIntake
from .store import CaseStore


async def email_intake_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    if not settings.smtp_port:
        yield
        return
    # `--role all` has the store of cases.plugin; a bridge process makes its own
    store = app.get(CASE_STORE) or CaseStore(app[SESSIONS], app[BUS], clock=app[CLOCK].now,
                                             timezone=settings.timezone)
    intake = EmailIntake(store, settings)
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
    app.cleanup_ctx.append(email_intake_ctx)
