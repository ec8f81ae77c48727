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

from contactcenter.keys import BUS, HEALTH, SESSIONS, SETTINGS, SUPERVISOR

from . import http
from .metrics import Metrics
from .services import SUBSCRIBED, SupervisorService
from .wallboard import WallboardHub

log = logging.getLogger(__name__)

CONFIG_REFRESH_SECONDS = 30.0  # queues' thresholds and the roster are re-read this often
REBUILD_RETRY_SECONDS = 5.0


@dataclass
class SupervisorFeature:
    service: SupervisorService
    hub: WallboardHub
    metrics: Metrics
    rebuilt: asyncio.Event = field(default_factory=asyncio.Event)


async def _rebuild_until_done(feature: SupervisorFeature) -> None:
    """Rebuild today's figures from the store; if it is down, keep trying (events still count)."""
    while True:
        try:
            await feature.service.load_config()
            await feature.service.rebuild()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("wallboard rebuild from the store failed (%s); retrying in %.0fs",
                        exc, REBUILD_RETRY_SECONDS)
            await asyncio.sleep(REBUILD_RETRY_SECONDS)
            continue
        feature.rebuilt.set()
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
    service = SupervisorService(app[SETTINGS], app[SESSIONS], app[BUS])
    hub = WallboardHub(service.snapshot)
    metrics = Metrics(service, hub.count)
    feature = SupervisorFeature(service, hub, metrics)
    service.listeners.append(hub.mark_dirty)
    service.observers.append(metrics.observe)
    app[SUPERVISOR] = feature
    # Subscribe before the rebuild: a call that ends meanwhile is counted once either way.
    sub = app[BUS].subscribe(service.on_event, types=SUBSCRIBED, name="supervisor.stats")
    try:
        await asyncio.wait_for(_rebuild_until_done(feature), 10)
    except TimeoutError:
        log.error("wallboard rebuild did not finish at start-up; continuing in the background")
    tasks = [asyncio.create_task(hub.run(), name="wallboard:push"),
             asyncio.create_task(_refresh_config(service), name="supervisor:config")]
    if not feature.rebuilt.is_set():
        tasks.append(asyncio.create_task(_rebuild_until_done(feature), name="supervisor:rebuild"))

    async def check() -> dict[str, Any]:
        return {
            "ok": feature.rebuilt.is_set(),
            "rebuilt_calls": service.rebuilt_calls,
            "screens": hub.count(),
            "stale": service.stats.stale,
            "subscriber_backlog": sub.queue.qsize(),
        }

    app[HEALTH]["wallboard"] = check
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await hub.close()
        await sub.close()


def setup(app: web.Application) -> None:
    http.add_routes(app)
    app.cleanup_ctx.append(supervisor_ctx)


__all__ = ["SupervisorFeature", "setup"]
