"""The wallboard's push: one snapshot per queue group, serialized once per broadcast, at most once
a second however many events arrive (coalesced), and at least every few seconds (wrap-up ends and
times in state move without events).

Each socket has its own writer task and a bounded queue of 2 payloads: a snapshot replaces the
one before it, so a slow screen drops old snapshots instead of stalling the others or eating
memory.
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
    def __init__(self, ws: web.WebSocketResponse, group: str, maxsize: int = 2,
                 user_id: int | None = None, tv: bool = False) -> None:
        self.ws = ws
        self.group = group
        self.tv = tv  # a TV screen: gets tv_snapshot()
        self.user_id = user_id
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize)
        self.sent = 0
        self.dropped = 0
        self.task = asyncio.get_running_loop().create_task(self._writer(), name="wallboard:ws")

    def offer(self, payload: str) -> None:
        while self.queue.full():  # the newest snapshot supersedes the unsent one
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(payload)

    async def _writer(self) -> None:
        while True:
            payload = await self.queue.get()
            try:
                await asyncio.wait_for(self.ws.send_str(payload), SEND_TIMEOUT)
            except (ConnectionError, TimeoutError, RuntimeError) as exc:
                # RuntimeError: aiohttp refuses to send on a closing socket
                log.info("wallboard socket dropped (%s)", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await self.ws.close()
                return
            self.sent += 1

    async def close(self, code: int = WSCloseCode.GOING_AWAY,
                    message: bytes = b"server shutdown") -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        with contextlib.suppress(Exception):
            await self.ws.close(code=code, message=message)


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
