"""The wallboard's push: one snapshot per queue group, serialized once per broadcast, at most once
a second however many events arrive (coalesced), and at least every few seconds (wrap-up ends and
times in state move without events).

Each socket has its own outbox (web.outbox, shared with the consoles) of 2 payloads: a snapshot
replaces the one before it, so a slow screen drops old snapshots instead of stalling the others or
eating memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, web

from contactcenter.web.auth import SIGNED_OUT
from contactcenter.web.outbox import Outbox

from .stats import to_json

log = logging.getLogger(__name__)

SEND_TIMEOUT = 10.0  # a screen that cannot take one snapshot in this long is cut off


def tv_snapshot(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What a screen hanging in a room may know: counts and times, no person. Callers keep only
    when they joined (the longest wait ticks on the screen); operators are only counted."""
    queues = []
    for q in snapshot["queues"]:
        now = dict(q["now"])
        now["callers"] = [{"joined_at": c["joined_at"], "wait_seconds": c["wait_seconds"]}
                          for c in now["callers"]]
        now["operators"] = []
        queues.append({**q, "now": now})
    return {**snapshot, "queues": queues}


class WallboardClient:
    """One screen: its group, what it may see, and its outbox (2 snapshots, the newest wins)."""

    def __init__(self, ws: web.WebSocketResponse, group: str, maxsize: int = 2,
                 user_id: int | None = None, tv: bool = False) -> None:
        self.ws = ws
        self.group = group
        self.tv = tv  # a TV screen: gets tv_snapshot()
        self.user_id = user_id
        self.outbox = Outbox(ws, label="wallboard screen", maxsize=maxsize,
                             on_full="drop_oldest", send_timeout=SEND_TIMEOUT)

    def offer(self, payload: str) -> None:
        self.outbox.send(payload)

    async def close(self, code: int = WSCloseCode.GOING_AWAY,
                    message: bytes = b"server shutdown") -> None:
        await self.outbox.close(code, message)


class WallboardHub:
    """Screens by group; `mark_dirty()` on every change, `run()` pushes."""

    def __init__(
        self,
        snapshot: Callable[[str], dict[str, Any]],
        *,
        interval: float = 1.0,
        heartbeat: float = 5.0,
    ) -> None:
        self.snapshot = snapshot
        self.interval = interval
        self.heartbeat = heartbeat
        self.clients: dict[str, set[WallboardClient]] = {}
        self._dirty = asyncio.Event()
        self.broadcasts = 0
        self.serialized = 0
        self.last_push: float | None = None  # monotonic

    def payload(self, group: str, tv: bool = False) -> str:
        self.serialized += 1
        snap = self.snapshot(group)
        if tv:
            snap = tv_snapshot(snap)
        return to_json({"type": "snapshot", **snap}, separators=(",", ":"))

    def mark_dirty(self) -> None:
        self._dirty.set()

    def join(self, ws: web.WebSocketResponse, group: str,
             user_id: int | None = None, tv: bool = False) -> WallboardClient:
        client = WallboardClient(ws, group, user_id=user_id, tv=tv)
        self.clients.setdefault(group, set()).add(client)
        client.offer(self.payload(group, tv))  # the screen shows something at once
        return client

    async def leave(self, client: WallboardClient) -> None:
        group = self.clients.get(client.group)
        if group is not None:
            group.discard(client)
            if not group:
                del self.clients[client.group]
        await client.close(WSCloseCode.OK)

    async def sign_out(self, user_id: int) -> None:
        """The user signed out somewhere: their screens close (and, still signed in, reconnect)."""
        for client in [c for group in self.clients.values() for c in group
                       if c.user_id == user_id]:
            await client.close(SIGNED_OUT, b"signed out")

    def count(self) -> int:
        return sum(len(c) for c in self.clients.values())

    def broadcast(self) -> None:
        for group, clients in list(self.clients.items()):
            if not clients:
                continue
            # once per group (and kind of screen), not once per screen
            payloads: dict[bool, str] = {}
            for client in tuple(clients):
                if client.tv not in payloads:
                    payloads[client.tv] = self.payload(group, client.tv)
                client.offer(payloads[client.tv])
        self.broadcasts += 1
        self.last_push = time.monotonic()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.heartbeat)
            self._dirty.clear()
            if self.clients:
                try:
                    self.broadcast()
                except Exception:  # a bug in one snapshot must not end the wallboard
                    log.exception("wallboard broadcast failed")
            await asyncio.sleep(self.interval)  # coalesce: at most one push per interval

    async def close(self) -> None:
        for clients in list(self.clients.values()):
            for client in tuple(clients):
                await client.close()
        self.clients.clear()


__all__ = ["WallboardClient", "WallboardHub", "tv_snapshot"]
