"""Typed app state: every `web.AppKey` of the application, in one place."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .bus import BaseBus
from .config import Settings

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", BaseBus)
# name -> coroutine returning {"ok": bool, ...}; each part registers its own
HEALTH = web.AppKey("health", dict[str, HealthCheck])


class SimPhones(Protocol):
    """The demo's operator phones in the simulator (telephony.simulator.phones.PhoneControl),
    by interface, e.g. "PJSIP/1001"; each returns False when there is nothing to do."""

    def ringing(self, interface: str) -> bool: ...
    def answer(self, interface: str) -> bool: ...
    def hangup(self, interface: str) -> bool: ...


# Only set by `contactcenter demo`: the console offers Answer / Hang up when it is present.
SIM_PHONES = web.AppKey("sim_phones", SimPhones)
