"""The application factory: one cleanup context per long-lived resource, in order."""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from . import db
from .bus import make_bus
from .clock import SYSTEM, Clock
from .config import Settings
from .keys import AGI_ROUTES, BUS, CLOCK, COUNTERS, ENGINE, HEALTH, SESSIONS, SETTINGS
from .web import auth, edge, formats
from .web.accesslog import RedactingAccessLogger
from .web.auth import public

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent

# Features wire themselves from `<package>.plugin:setup(app)`, in this order (after db and bus).
# Listeners (the console, the wallboard) before telephony: the bridge's first AmiLinkChanged and
# QueueMembersSynced happen at its start-up and must find them subscribed.
PLUGINS: list[str] = [
    "queues.plugin",  # first: the features below read queues from its directory
    "cases.plugin", "cases.email_plugin", "notify.plugin", "notify.sender_plugin",
    "agents.plugin",
    "prompts.plugin",  # before admin: the menu editor speaks, records and publishes through it
    "admin.plugin", "supervisor.plugin", "agency.plugin",
    # the IVR registers its FastAGI script before the server starts accepting
    "telephony.plugin", "telephony.reconcile_plugin", "telephony.actions", "ivr.plugin",
    "telephony.agi_plugin",
    "cases.retention_plugin",
    "figures.plugin",  # after supervisor.plugin: its calls by day are the supervisor's report
    "callbacks.plugin",  # after the case store and telephony: closing the loop by voice
]

# `contactcenter serve --role`: `all` is one process; `bridge` owns the Asterisk side (AMI, FastAGI,
# the case writer, retention: exactly one such process; over HTTP only /health, no page or
# log-in); `web` serves pages, consoles and the wallboard (any number behind a load balancer, fed
# by the bus on Redis).
ROLES = ("all", "bridge", "web")
# The one table of which part runs in which role. A plugin missing here runs in `all` and `web`
# (features are pages unless they say otherwise).
PLUGIN_ROLES: dict[str, frozenset[str]] = {
    "queues.plugin": frozenset(ROLES),  # every process reads queue settings
    "cases.plugin": frozenset({"all", "web"}),  # Open311, case pages
    "cases.email_plugin": frozenset({"all", "bridge"}),  # the SMTP listener: one per site
    "notify.plugin": frozenset({"all", "web"}),  # the citizens' opt-out pages
    # citizens' e-mail/SMS outbox and the agencies' digest: one sender per site
    "notify.sender_plugin": frozenset({"all", "bridge"}),
    "agents.plugin": frozenset({"all", "web"}),  # consoles, screen pop
    "supervisor.plugin": frozenset({"all", "web"}),  # wallboard, /api/queues, /metrics
    "admin.plugin": frozenset({"all", "web"}),  # menu editor, admin pages
    "prompts.plugin": frozenset({"all", "web"}),  # speech, recordings, sounds for Asterisk
    "agency.plugin": frozenset({"all", "web"}),  # work queue, case pages (live), case search
    "telephony.plugin": frozenset({"all", "bridge"}),  # AMI bridge, case writer, the Pbx
    "telephony.reconcile_plugin": frozenset({"all", "bridge"}),  # gaps from Asterisk's records
    "telephony.actions": frozenset({"web"}),  # a Pbx on an actions-only AMI session
    "ivr.plugin": frozenset({"all", "bridge"}),  # the IVR engine, FastAGI script /ivr
    "telephony.agi_plugin": frozenset({"all", "bridge"}),  # FastAGI server
    "cases.retention_plugin": frozenset({"all", "bridge"}),  # daily erasure: once per site
    "figures.plugin": frozenset({"all", "web"}),  # public figures, open data, scorecard
    "callbacks.plugin": frozenset({"all", "bridge"}),  # places calls: once per site
}
_DEFAULT_ROLES = frozenset({"all", "web"})


def runs_in(part: str, role: str) -> bool:
    return role in PLUGIN_ROLES.get(part, _DEFAULT_ROLES)


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
    bus = make_bus(app[SETTINGS].redis_url, app[SETTINGS].bus_channel)
    await bus.start()
    app[BUS] = bus

    async def check() -> dict[str, Any]:
        return bus.health()

    app[HEALTH]["bus"] = check
    yield
    await bus.close()


async def freeze_heap(app: web.Application) -> None:
    """Everything alive once the app has started (modules, templates, mappers, features' state)
    lives as long as the process: moved out of the collector's generations, so a full collection
    (triggered by a burst of allocations, e.g. a big export) walks only what was made since,
    instead of stalling the loop for tens of ms walking the whole heap each time."""
    gc.collect()  # what is garbage now is freed, not kept for ever
    gc.freeze()


async def unfreeze_heap(app: web.Application) -> None:
    gc.unfreeze()  # an app stopped in a longer-lived process (tests): its objects can go


@public
async def health(request: web.Request) -> web.Response:
    """ok/degraded (200/503) for anyone (load balancers, monitors); the parts, which name
    internal hosts, ports and errors, only for a signed-in admin or an API key."""
    parts: dict[str, Any] = {}
    for name, check in request.app[HEALTH].items():
        try:
            parts[name] = await asyncio.wait_for(check(), 3)
        except Exception as exc:
            parts[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    ok = all(part.get("ok") for part in parts.values())
    body: dict[str, Any] = {"status": "ok" if ok else "degraded"}
    if await _may_see_details(request):
        body["parts"] = parts
    return web.json_response(body, status=200 if ok else 503)


async def _may_see_details(request: web.Request) -> bool:
    user = auth.current_user(request)
    if user is not None and user.role == "admin":
        return True
    key = request.headers.get("X-API-Key", "")
    if not key:
        return False
    expected = request.app[SETTINGS].health_api_key
    if expected and secrets.compare_digest(key.encode(), expected.encode()):
        return True  # needs no database: it works when the database is what is down
    try:
        return await auth.api_key_valid(request, key)
    except Exception:  # the store is down or broken: only CC_HEALTH_API_KEY can tell then
        return False


@public
@aiohttp_jinja2.template("index.html")
async def index(request: web.Request) -> dict[str, Any]:
    return {"settings": request.app[SETTINGS]}


def create_app(
    settings: Settings, role: str = "all", clock: Clock | None = None
) -> web.Application:
    """`clock`: where business time comes from (the machine's wall clock unless handed one)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    app = web.Application(client_max_size=2 * 1024 * 1024, handler_args={
        # Open311 GET requests list up to 1,000 ids in the URL (about 18 kB); aiohttp's default
        # request line (8,190 bytes) refused them as plain text before any route was known.
        # Under `serve` the connection guard (web/edge.py) answers 414 past the same length.
        "max_line_size": edge.MAX_URL + 64,
        # API keys sent in a URL must not reach the access log
        "access_log_class": RedactingAccessLogger,
    })
    app[SETTINGS] = settings
    app[CLOCK] = clock or SYSTEM
    app[HEALTH] = {}
    app[COUNTERS] = {}
    app[AGI_ROUTES] = {}
    pages = role != "bridge"  # the bridge serves /health only: no page, no log-in
    auth.setup(app, pages=pages)  # before jinja2: its context processor reads the session
    edge.setup(app)  # outermost: the client's address and scheme, the guard's hooks
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(PACKAGE / "templates")),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        context_processors=[auth.template_context, aiohttp_jinja2.request_processor],
    )
    # the figure formats every page shares with static/live.js
    aiohttp_jinja2.get_env(app).filters.update(formats.FILTERS)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(bus_ctx)
    for name in PLUGINS:
        if runs_in(name, role):
            importlib.import_module(f"contactcenter.{name}").setup(app)
    app.router.add_get("/health", health, name="health")
    app.on_startup.append(freeze_heap)  # after every cleanup context (features') has started
    app.on_cleanup.append(unfreeze_heap)
    if pages:
        app.router.add_get("/", index, name="index")
        app.router.add_static("/static", PACKAGE / "static", name="static")
    return app
