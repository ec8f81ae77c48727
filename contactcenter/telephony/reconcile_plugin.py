"""Wires gap reconciliation (records.py) beside the AMI bridge: one `Reconciler` per Asterisk
server, its loop, the `reconcile` part of /health and its counters in /metrics.

Runs where the bridge runs (role `all`/`bridge`), after `telephony.plugin` has started the
bridge and the case writer (its records go through the writer like live ones)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from sqlalchemy.engine import make_url

from .. import db
from ..config import SettingsError
from ..keys import BUS, CLOCK, COUNTERS, HEALTH, SESSIONS, SETTINGS
from .bridge import Bridge, ServerLink
from .lease import PgLease, lease_key
from .plugin import BRIDGE, WRITER
from .records import Reconciler, make_source, run_loop

log = logging.getLogger(__name__)

RECONCILERS = web.AppKey("reconcilers", dict[str, Reconciler])
LEASE = web.AppKey("bridge_lease", PgLease)
LEASE_RETRY = 1.0  # seconds between a standby's tries (take-over within about this)
STOP_WAIT = 5.0  # seconds a reconciliation pass may take to finish at shutdown


class LinkAdapter:
    """A bridge link as the reconciliation loop reads it."""

    def __init__(self, link: ServerLink) -> None:
        self.link = link
        self.name = link.name

    @property
    def resyncs(self) -> int:
        return self.link.resyncs

    @property
    def connected(self) -> bool:
        return bool(self.link.client.logged_in)

    async def asterisk_now(self) -> float | None:
        """Asterisk's own clock now: the Timestamp of its Ping reply (Asterisk 22 and the
        simulator both send one), None when it cannot be asked."""
        try:
            reply = await self.link.client.action("Ping", timeout=5)
            return float(reply.headers["Timestamp"])
        except Exception:  # no link, an error reply, no Timestamp: the caller falls back
            return None

    def asterisk_time(self) -> float | None:
        """Asterisk's Timestamp of the last event read (our receive time less the lag)."""
        client = self.link.client
        if not client.last_event_at:
            return None
        return float(client.last_event_at - (client.last_event_lag or 0.0))


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def lease_ctx(app: web.Application) -> AsyncIterator[None]:
    """With CC_BRIDGE_LEASE=pg: the bridge starts when this process holds the lease."""
    settings = app[SETTINGS]
    bridge: Bridge = app[BRIDGE]
    if settings.bridge_lease == "off":
        yield
        return
    if settings.bridge_lease != "pg":
        raise SettingsError(f"CC_BRIDGE_LEASE: expected off or pg, got {settings.bridge_lease!r}")
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        raise SettingsError("CC_BRIDGE_LEASE=pg needs a PostgreSQL CC_DATABASE_URL "
                            "(the lease is an advisory lock in the store)")
    engine = db.make_engine(settings.database_url, pool_size=1, max_overflow=0)

    async def lost() -> None:
        for link in bridge.links.values():
            await link.client.close()

    names = ",".join(f"{ep.name}={ep.host}:{ep.port}" for ep in settings.ami_endpoints())
    lease = PgLease(engine, lease_key(names), retry=LEASE_RETRY, on_acquired=bridge.start,
                    on_lost=lost)
    app[LEASE] = lease
    ami_check = app[HEALTH]["ami"]

    async def ami_or_standby() -> dict[str, Any]:
        if lease.state == "standby":  # not reading AMI is this process's job for now
            return {"ok": True, "state": "standby"}
        return await ami_check()

    async def check() -> dict[str, Any]:
        return lease.health()

    app[HEALTH]["ami"] = ami_or_standby
    app[HEALTH]["lease"] = check
    lease.start()
    yield
    await lease.close()
    await engine.dispose()


async def reconcile_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    bridge: Bridge = app[BRIDGE]
    writer = app[WRITER]
    source = make_source(settings.asterisk_records, app[SESSIONS])
    reconcilers: dict[str, Reconciler] = {}
    app[RECONCILERS] = reconcilers
    links = list(bridge.links.values())
    if source is None or (settings.asterisk_records.strip() == "table" and len(links) > 1):
        state = "off" if source is None else \
            "off: the asterisk_* tables serve one Asterisk; give each server a file: source"

        async def off() -> dict[str, Any]:
            return {"ok": True, "state": state}

        app[HEALTH]["reconcile"] = off
        yield
        return

    async def settled() -> None:
        await bridge.flushed()
        await writer.flushed()

    stop = asyncio.Event()
    tasks = []
    for link in links:
        rec = Reconciler(link.name, source, app[SESSIONS], app[BUS], app[CLOCK],
                         holder=holder_name(), short_abandon_seconds=bridge.short_abandon,
                         settled=settled)
        try:
            await rec.load()
        except Exception as exc:  # a dead database: the loop retries with no checkpoint
            rec._failed(f"checkpoint unreadable: {type(exc).__name__}: {exc}")
        reconcilers[link.name] = rec
        tasks.append(asyncio.get_running_loop().create_task(
            run_loop(rec, LinkAdapter(link), settings.reconcile_interval, stop),
            name=f"reconcile:{link.name}"))

    async def check() -> dict[str, Any]:
        now = app[CLOCK].timestamp()
        parts = {name: rec.health(now, settings.reconcile_interval,
                                  bool(bridge.links[name].client.logged_in))
                 for name, rec in reconcilers.items()}
        return {"ok": all(p["ok"] for p in parts.values()), "servers": parts}

    app[HEALTH]["reconcile"] = check
    app[COUNTERS]["cc_calls_reconciled_total"] = (
        "Calls recorded from Asterisk's own records (queue_log, CDR) after a gap",
        lambda: float(sum(r.reconciled_total for r in reconcilers.values())),
    )
    app[COUNTERS]["cc_reconcile_gaps_total"] = (
        "Gaps in the AMI stream reconciled (reconnects, restarts, take-overs) since start",
        lambda: float(sum(r.gaps for r in reconcilers.values())),
    )
    app[COUNTERS]["cc_partial_calls_completed_total"] = (
        "Partial call records completed from Asterisk's own records since start",
        lambda: float(sum(r.completed_total for r in reconcilers.values())),
    )
    yield
    stop.set()
    # a pass under way ends at its next step; one waiting on something that will not come now
    # (a bridge or a writer already stopping) is cancelled: a shutdown never hangs on it
    if tasks:
        _done, pending = await asyncio.wait(tasks, timeout=STOP_WAIT)
        for task in pending:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def setup(app: web.Application) -> None:
    if app[SETTINGS].ami_enabled:
        app.cleanup_ctx.append(reconcile_ctx)
        app.cleanup_ctx.append(lease_ctx)
