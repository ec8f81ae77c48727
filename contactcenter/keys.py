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
    from .supervisor.plugin import SupervisorFeature

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", BaseBus)
# name -> coroutine returning {"ok": bool, ...}; each part registers its own
HEALTH = web.AppKey("health", dict[str, HealthCheck])

# The gateway to Asterisk (telephony/ sets it when the AMI link is configured).
PBX = web.AppKey("pbx", Pbx)
# The supervisor feature: statistics, wallboard push, metrics (supervisor/plugin.py).
SUPERVISOR: web.AppKey[SupervisorFeature] = web.AppKey("supervisor")
