"""Typed app state: every `web.AppKey` of the application, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .bus import BaseBus
from .cases.email_intake import EmailIntake
from .cases.media import MediaStore
from .cases.store import ApiKeys, CaseStore
from .clock import Clock
from .config import Settings
from .events import Pbx
from .ivr.engine import IvrEngine

if TYPE_CHECKING:
    from .agents.console import ConsoleHub
    from .cases.webform import FormRules
    from .supervisor.plugin import SupervisorFeature
    from .telephony.agi import FastAgiServer

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

SETTINGS = web.AppKey("settings", Settings)
# the one clock of business time (contactcenter/clock.py); tests hand in a fixed or shifted one
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", BaseBus)
# name -> coroutine returning {"ok": bool, ...}; each part registers its own
HEALTH = web.AppKey("health", dict[str, HealthCheck])

# The gateway to Asterisk (telephony.plugin): an `events.Pbx`; raises PbxError when AMI is off.
PBX = web.AppKey("pbx", Pbx)
# the IVR (telephony/agi_plugin.py): the FastAGI server and the engine it runs
AGI_SERVER: web.AppKey[FastAgiServer] = web.AppKey("agi_server")
IVR_ENGINE = web.AppKey("ivr_engine", IvrEngine)

# agents/: the consoles' sockets, pops and presence
CONSOLE: web.AppKey[ConsoleHub] = web.AppKey("console_hub")


# cases: the store's services (cases/plugin.py) and the e-mail intake listener
CASE_STORE = web.AppKey("case_store", CaseStore)
API_KEYS = web.AppKey("api_keys", ApiKeys)
EMAIL_INTAKE = web.AppKey("email_intake", EmailIntake)
# photos sent with requests (cases/media.py); the origins allowed to call Open311 from a browser
# ("*" for any), parsed from CC_OPEN311_CORS_ORIGINS (cases/http.py)
MEDIA_STORE = web.AppKey("media_store", MediaStore)
OPEN311_CORS = web.AppKey("open311_cors", frozenset[str])
# the citizen web form's token key and spam limits (cases/webform.py)
CITIZEN_FORM: web.AppKey[FormRules] = web.AppKey("citizen_form")


class SimPhones(Protocol):
    """The demo's operator phones in the simulator (telephony.simulator.phones.PhoneControl),
    by interface, e.g. "PJSIP/1001"; each returns False when there is nothing to do."""

    def ringing(self, interface: str) -> bool: ...
    def answer(self, interface: str) -> bool: ...
    def hangup(self, interface: str) -> bool: ...


# Only set by `contactcenter demo`: the console offers Answer / Hang up when it is present.
SIM_PHONES = web.AppKey("sim_phones", SimPhones)

# The supervisor feature: statistics, wallboard push, metrics (supervisor/plugin.py).
SUPERVISOR: web.AppKey[SupervisorFeature] = web.AppKey("supervisor")
