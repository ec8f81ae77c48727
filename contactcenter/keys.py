"""Typed app state: every `web.AppKey` of the application, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .bus import BaseBus
from .config import Settings
from .events import Pbx

if TYPE_CHECKING:
    from .agents.console import ConsoleHub

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", BaseBus)
# name -> coroutine returning {"ok": bool, ...}; each part registers its own
HEALTH = web.AppKey("health", dict[str, HealthCheck])

# The gateway to Asterisk (telephony.plugin): an `events.Pbx`; raises PbxError when AMI is off.
PBX = web.AppKey("pbx", Pbx)


# agents/: the consoles' sockets, pops and presence
CONSOLE: web.AppKey[ConsoleHub] = web.AppKey("console_hub")

# cases: the store's services (cases/plugin.py) and the e-mail intake listener
from .cases.email_intake import EmailIntake  # noqa: E402
from .cases.store import ApiKeys, CaseStore  # noqa: E402

CASE_STORE = web.AppKey("case_store", CaseStore)
API_KEYS = web.AppKey("api_keys", ApiKeys)
EMAIL_INTAKE = web.AppKey("email_intake", EmailIntake)

# The demo's simulated operator phones (telephony.simulator.phones.PhoneControl); only set by
# `contactcenter demo`, so the console offers Answer / Hang up when it is present.
SIM_PHONES = web.AppKey("sim_phones", Any)
