"""Wires the supervisor feature: statistics fed by the bus and rebuilt from the store at start,
the wallboard's push loop, the Prometheus registry, and the routes (supervisor/http.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from contactcenter.events import Event, SessionEnded
from contactcenter.keys import BUS, CLOCK, COUNTERS, HEALTH, SESSIONS, SETTINGS
from contactcenter.queues.directory import QUEUE_DIRECTORY
from contactcenter.supervisor.keys import SUPERVISOR

from . import callback_list, containment_http, http, sla_views
from .metrics import Metrics
from .offloop import OffLoop, shareable
from .services import SUBSCRIBED, SupervisorService
from .wallboard import WallboardHub

log = logging.getLogger(__name__)

CONFIG_REFRESH_SECONDS = 30.0  # the operators' roster is re-read this often (queues: the directory)
REBUILD_RETRY_SECONDS = 5.0
REBUILD_TIMEOUT_SECONDS = 5.0


@dataclass
class SupervisorFeature:
    service: SupervisorService
    hub: WallboardHub
    metrics: Metrics
    offloop: OffLoop | None = None  # reports run here, off the serving loop
    rebuilt: asyncio.Event = field(default_factory=asyncio.Event)
    rebuild_error: str = ""


async def _rebuild_once(feature: SupervisorFeature) -> bool:
    try:
        await asyncio.wait_for(feature.service.load_config(), REBUILD_TIMEOUT_SECONDS)
        await asyncio.wait_for(feature.service.rebuild(), REBUILD_TIMEOUT_SECONDS)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # store down, not migrated, too slow: live events still count
        feature.rebuild_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("wallboard rebuild from the store failed (%s)", feature.rebuild_error)
        return False
    feature.rebuild_error = ""
    feature.rebuilt.set()
    return True


async def _rebuild_until_done(feature: SupervisorFeature) -> None:
    """Keep trying to rebuild today's figures from the store until it answers."""
    while True:
        await asyncio.sleep(REBUILD_RETRY_SECONDS)
        if await _rebuild_once(feature):
            return


async def _refresh_config(service: SupervisorService) -> None:
    while True:
        await asyncio.sleep(CONFIG_REFRESH_SECONDS)
        try:
            await service.load_config()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("could not re-read queues and operators (%s)", exc)


async def supervisor_ctx(app: web.Application) -> AsyncIterator[None]:
    service = SupervisorService(app[SETTINGS], app[SESSIONS], app[BUS], clock=app[CLOCK].now)
    service.follow(app[QUEUE_DIRECTORY])
    hub = WallboardHub(service.snapshot)
    metrics = Metrics(service, hub.count, app[COUNTERS])
    feature = SupervisorFeature(service, hub, metrics)
    url = app[SETTINGS].database_url
    if shareable(url):
        feature.offloop = OffLoop(url)
        await feature.offloop.start()
    service.listeners.append(hub.mark_dirty)
    service.observers.append(metrics.observe)
    app[SUPERVISOR] = feature
    # Subscribe before the rebuild: a call that ends meanwhile is counted once either way.
    sub = app[BUS].subscribe(service.on_event, types=SUBSCRIBED, name="supervisor.stats",
                             on_drop=service.events_dropped)

    async def signed_out(ev: Event) -> None:
        if isinstance(ev, SessionEnded):
            await hub.sign_out(ev.user_id)

    sessions_sub = app[BUS].subscribe(signed_out, types=(SessionEnded,), name="wallboard.signout")
    # One try before serving (so the first page shows today's figures); then in the background.
    await _rebuild_once(feature)
    tasks = [asyncio.create_task(hub.run(), name="wallboard:push"),
             asyncio.create_task(_refresh_config(service), name="supervisor:config"),
             asyncio.create_task(service.rebuild_after_drops(sub.queue.qsize),
                                 name="supervisor:rebuild-after-drops")]
    if not feature.rebuilt.is_set():
        tasks.append(asyncio.create_task(_rebuild_until_done(feature), name="supervisor:rebuild"))

    async def check() -> dict[str, Any]:
        # ok: the wallboard serves and counts live events; "rebuilt" says whether today's
        # figures include the calls stored before this process started (the db part says why).
        out: dict[str, Any] = {
            "ok": True,
            "rebuilt": feature.rebuilt.is_set(),
            "rebuilt_calls": service.rebuilt_calls,
            "screens": hub.count(),
            "stale": service.stats.stale or service.rebuilding,
            "rebuilding": service.rebuilding,  # events were dropped: recounting from the store
            "dropped_events": service.drops,
            "drop_rebuilds": service.drop_rebuilds,
            "subscriber_backlog": sub.queue.qsize(),
        }
        if feature.rebuild_error:
            out["rebuild_error"] = feature.rebuild_error
        return out

    app[HEALTH]["wallboard"] = check
    app[COUNTERS]["cc_wallboard_drop_rebuilds"] = (
        "Wallboard figures rebuilt from the store because the bus dropped events for them",
        lambda: float(service.drop_rebuilds))
    app[COUNTERS]["cc_wallboard_dropped_events"] = (
        "Events the bus dropped for the wallboard figures (its queue was full)",
        lambda: float(service.drops))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await hub.close()
        if feature.offloop is not None:
            await feature.offloop.close()
        await sub.close()
        await sessions_sub.close()


def setup(app: web.Application) -> None:
    http.add_routes(app)
    sla_views.add_routes(app)
    callback_list.add_routes(app)
    containment_http.add_routes(app)
    app.cleanup_ctx.append(supervisor_ctx)


__all__ = ["SupervisorFeature", "setup"]
