"""The application factory: one cleanup context per long-lived resource, in order."""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import db
from .bus import make_bus
from .config import Settings
from .keys import BUS, ENGINE, HEALTH, SESSIONS, SETTINGS
from .maintenance import retention_ctx
from .web import auth
from .web.auth import public

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent

# Features wire themselves from `<package>.plugin:setup(app)`, in this order (after db and bus).
# Listeners (the console) before telephony: the bridge's first AmiLinkChanged and
# QueueMembersSynced happen at its start-up and must find them subscribed.
PLUGINS: list[str] = [
    "cases.plugin", "agents.plugin", "admin.plugin", "supervisor.plugin", "telephony.plugin",
    "telephony.agi_plugin",
]


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    engine = db.make_engine(app[SETTINGS].database_url)
    app[ENGINE] = engine
    app[SESSIONS] = db.make_sessionmaker(engine)

    async def check() -> dict[str, Any]:
        started = time.perf_counter()
        try:
            await db.ping(engine)
        except Exception as exc:  # any driver error means "down"
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        return {
            "ok": True,
            "engine": engine.dialect.name,
            "latency_ms": round((time.perf_counter() - started) * 1000, 2),
        }

    app[HEALTH]["db"] = check
    yield
    await engine.dispose()


async def bus_ctx(app: web.Application) -> AsyncIterator[None]:
    bus = make_bus(app[SETTINGS].redis_url)
    await bus.start()
    app[BUS] = bus

    async def check() -> dict[str, Any]:
        return bus.health()

    app[HEALTH]["bus"] = check
    yield
    await bus.close()


@public
async def health(request: web.Request) -> web.Response:
    parts: dict[str, Any] = {}
    for name, check in request.app[HEALTH].items():
        try:
            parts[name] = await asyncio.wait_for(check(), 3)
        except Exception as exc:
            parts[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    ok = all(part.get("ok") for part in parts.values())
    return web.json_response(
        {"status": "ok" if ok else "degraded", "parts": parts}, status=200 if ok else 503
    )


@public
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    return {"settings": request.app[SETTINGS]}


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    app[SETTINGS] = settings
    app[HEALTH] = {}
    auth.setup(app)  # before jinja2: its context processor reads the session
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        context_processors=[auth.template_context, aiohttp_jinja2.request_processor],
    )
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(bus_ctx)
    app.cleanup_ctx.append(retention_ctx)
    for name in PLUGINS:
        importlib.import_module(f"contactcenter.{name}").setup(app)
    app.router.add_get("/health", health, name="health")
    app.router.add_get("/", index, name="index")
    app.router.add_static("/static", PACKAGE / "static", name="static")
    return app
