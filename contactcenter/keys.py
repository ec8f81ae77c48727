"""Typed app state: every `web.AppKey` of the application, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

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


# --- console (agents/) and the parts it talks to ------------------------------------------------
class PhoneControl(Protocol):
    """The simulator's demo phones (demo only): answer or hang up an operator's ringing phone."""

    async def answer(self, interface: str) -> None: ...

    async def hangup(self, interface: str) -> None: ...


SIM_PHONES = web.AppKey("sim_phones", PhoneControl)  # set by the simulator in the demo
CONSOLE: web.AppKey[ConsoleHub] = web.AppKey("console_hub")  # agents/: sockets, pops, presence

# cases: the store's services (cases/plugin.py) and the e-mail intake listener
from .cases.email_intake import EmailIntake  # noqa: E402
from .cases.store import ApiKeys, CaseStore  # noqa: E402

CASE_STORE = web.AppKey("case_store", CaseStore)
API_KEYS = web.AppKey("api_keys", ApiKeys)
EMAIL_INTAKE = web.AppKey("email_intake", EmailIntake)
