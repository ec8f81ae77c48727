"""Typed app state of the kernel: the `web.AppKey`s every feature may read. A feature's own keys
live in its folder (`cases/keys.py`, `agents/keys.py`, ...): the kernel imports no feature."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .bus import BaseBus
from .clock import Clock
from .config import Settings
from .events import Pbx

HealthCheck = Callable[[], Awaitable[dict[str, Any]]]

SETTINGS = web.AppKey("settings", Settings)
# the one clock of business time (contactcenter/clock.py); tests hand in a fixed or shifted one
CLOCK = web.AppKey("clock", Clock)
ENGINE = web.AppKey("engine", AsyncEngine)
SESSIONS = web.AppKey("sessions", async_sessionmaker[AsyncSession])
BUS = web.AppKey("bus", BaseBus)
# name -> coroutine returning {"ok": bool, ...}; each part registers its own
HEALTH = web.AppKey("health", dict[str, HealthCheck])
# Counters a part exposes in /metrics without the metrics owner importing it:
# Prometheus name (without `_total`) -> (help text, current value).
COUNTERS = web.AppKey("counters", dict[str, tuple[str, Callable[[], float]]])

# FastAGI scripts by request path ("/ivr"): a feature registers the coroutine that runs a
# session on its channel (an `ivr.channel.IvrChannel`); telephony's FastAGI server dispatches.
AgiHandler = Callable[[Any], Awaitable[None]]
AGI_ROUTES = web.AppKey("agi_routes", dict[str, AgiHandler])

# The gateway to Asterisk (telephony.plugin): an `events.Pbx`; raises PbxError when AMI is off.
PBX = web.AppKey("pbx", Pbx)
