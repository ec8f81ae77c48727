"""Live case pages: a websocket per open page, told when its case changes (`CaseChanged` from
the bus, so a change made in any web process reaches every page).

Each socket has a one-slot outbox (web.outbox, shared with the consoles and wallboards): a newer
change replaces an unsent one (the page only needs to know that it is out of date and by whom),
so a slow browser never holds up the others or grows memory.
"""

from __future__ import annotations

import json

from aiohttp import WSCloseCode, web

from ..events import CaseChanged, Event, SessionEnded
from ..web.auth import SIGNED_OUT
from ..web.outbox import Outbox

SEND_TIMEOUT = 10.0


class CaseWatcher:
    def __init__(self, ws: web.WebSocketResponse, number: str, user_id: int) -> None:
        self.ws = ws
        self.number = number
        self.user_id = user_id
        self.outbox = Outbox(ws, label=f"case page {number}", maxsize=1, on_full="drop_oldest",
                             send_timeout=SEND_TIMEOUT)

    def offer(self, payload: str) -> None:
        self.outbox.send(payload)

    async def close(self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"") -> None:
        await self.outbox.close(code, message)


class CaseLive:
    """Open case pages by case number."""

    def __init__(self) -> None:
        self.watchers: dict[str, set[CaseWatcher]] = {}
        self.sent = 0

    def join(self, ws: web.WebSocketResponse, number: str, user_id: int) -> CaseWatcher:
        watcher = CaseWatcher(ws, number, user_id)
        self.watchers.setdefault(number, set()).add(watcher)
        return watcher

    async def leave(self, watcher: CaseWatcher) -> None:
        group = self.watchers.get(watcher.number)
        if group is not None:
            group.discard(watcher)
            if not group:
                del self.watchers[watcher.number]
        await watcher.close(WSCloseCode.OK)

    def count(self) -> int:
        return sum(len(g) for g in self.watchers.values())

    async def on_event(self, ev: Event) -> None:
        if isinstance(ev, SessionEnded):
            for w in [w for g in self.watchers.values() for w in g if w.user_id == ev.user_id]:
                await w.close(SIGNED_OUT, b"signed out")
            return
        if not isinstance(ev, CaseChanged):
            return
        group = self.watchers.get(ev.number)
        if not group:
            return
        payload = json.dumps({"type": "changed", "number": ev.number, "status": ev.status,
                              "change": ev.change, "actor": ev.actor,
                              "at": ev.at.isoformat()}, separators=(",", ":"))
        for watcher in tuple(group):
            watcher.offer(payload)
            self.sent += 1

    async def close(self) -> None:
        for group in list(self.watchers.values()):
            for watcher in tuple(group):
                await watcher.close()
        self.watchers.clear()
