"""The operator consoles: one websocket per open page, fed by the bus.

The hub only does the I/O. What each console shows about calls is the pop book's (`pops.py`,
pure: events in, messages out); what an operator may ask is the command table's
(`console_commands.py`); presence is `presence.py`'s. Each socket writes through its own
bounded outbox (`web.outbox`, shared with the wallboard), so a slow browser cannot stall the
others; a console whose outbox overflows is closed, and the page reconnects to the full state.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable, KeysView
from datetime import datetime
from typing import Any

from aiohttp import WSCloseCode, web
from sqlalchemy.exc import SQLAlchemyError

from ..events import (
    AgentCallCompleted,
    AgentRinging,
    AgentRingNoAnswer,
    AgentStateChanged,
    AmiLinkChanged,
    BroadcastMessage,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    Event,
    QueueMembersSynced,
    SessionEnded,
    WrapUpEnded,
)
from ..web.auth import SIGNED_OUT, Principal
from ..web.outbox import Outbox
from . import presence as P
from .console_commands import COMMANDS, BadMessage, Command, Request, parse_command
from .pops import Out, PopBook, Send, WantHistory
from .presence_store import Desired
from .services import DISPOSITIONS, CallerHistory, CallWork, ConsoleError, OperatorService

log = logging.getLogger(__name__)

SUBSCRIBED: tuple[type[Event], ...] = (
    AgentRinging, AgentRingNoAnswer, CallAnswered, CallAbandoned, AgentCallCompleted, CallEnded,
    AgentStateChanged, QueueMembersSynced, BroadcastMessage, AmiLinkChanged, SessionEnded,
)
# the pop book's alone (presence does not follow them)
POP_EVENTS = (AgentRinging, AgentRingNoAnswer, CallAnswered, CallAbandoned, BroadcastMessage,
              AmiLinkChanged)
OUTBOX = 256
HISTORY_TIMEOUT = 5.0


def _dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), default=str)


# --- one socket ------------------------------------------------------------------------------


class Connection:
    """One open console: its user and its outbox."""

    def __init__(self, ws: web.WebSocketResponse, user: Principal, maxsize: int = OUTBOX):
        self.ws = ws
        self.user = user
        self.outbox = Outbox(ws, label=f"console of {user.username}", maxsize=maxsize,
                             on_full="close")

    def send(self, text: str) -> None:
        self.outbox.send(text)

    def send_json(self, msg: dict[str, Any]) -> None:
        self.send(_dumps(msg))

    async def close(self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"") -> None:
        await self.outbox.close(code, message)


# --- the hub -------------------------------------------------------------------------------------


class ConsoleHub:
    """Every open console, the pop book and presence; fed by the bus."""

    def __init__(
        self,
        presence: P.Presence,
        operators: OperatorService,
        history: CallerHistory,
        work: CallWork,
        *,
        phones: Callable[[], Any] = lambda: None,  # the demo's PhoneControl, if any
        clock: Callable[[], datetime],
        publish: Callable[[Event], Awaitable[None]] | None = None,  # the bus
        claim: Callable[[str], Awaitable[bool]] | None = None,  # the bus: once per cluster
    ) -> None:
        self.publish = publish
        self.claim = claim
        self.presence = presence
        self.operators = operators
        self.history = history
        self.work = work
        self.phones = phones
        self.clock = clock
        self.book: PopBook[Connection] = PopBook()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.synced = False  # a full member list from Asterisk was seen
        # The bus dropped events for the consoles (its queue was full): presence and pops may
        # be wrong until Asterisk's next full member list; operators are told.
        self.dropped = 0
        self.stale = False
        self._history_lock = asyncio.Lock()

    @property
    def conns(self) -> KeysView[Connection]:
        return self.book.sockets.keys()

    # --- sockets ------------------------------------------------------------------------------

    def connect(self, ws: web.WebSocketResponse, user: Principal) -> Connection:
        conn = Connection(ws, user)
        conn.send_json(self.hello(user))
        conn.send_json(self.state_message(user.interface))
        self.deliver(self.book.open(conn, user.interface))
        return conn

    async def disconnect(self, conn: Connection) -> None:
        self.book.close(conn)
        await conn.close()

    def deliver(self, outs: Iterable[Out[Connection]]) -> None:
        """Do what the pop book asked: send (each message serialized once), look up histories."""
        for out in outs:
            if isinstance(out, Send):
                text = _dumps(out.msg)
                for conn in out.to:
                    conn.outbox.send(text)
            else:
                self.spawn(self._load_history(out), f"console:history:{out.call_id}")

    def hello(self, user: Principal) -> dict[str, Any]:
        return {
            "type": "hello",
            "user": {"username": user.username, "display_name": user.display_name,
                     "interface": user.interface, "queues": list(user.queues),
                     "languages": list(user.languages)},
            "pause_reasons": [{"code": k, "label": v}
                              for k, v in self.operators.pause_reasons.items()],
            "dispositions": [{"code": k, "label": v} for k, v in DISPOSITIONS.items()],
            "phone_controls": self.phones() is not None,
        }

    def state_message(self, interface: str | None) -> dict[str, Any]:
        if not interface:
            return {"type": "state", "state": P.LOGGED_OUT, "interface": None, "queues": []}
        return {"type": "state", **self.presence.view(interface).to_dict()}

    def to_interface(self, interface: str, msg: dict[str, Any]) -> None:
        self.deliver(self.book.to_interface(interface, msg))

    def to_all(self, msg: dict[str, Any]) -> None:
        self.deliver(self.book.to_all(msg))

    async def shutdown(self) -> None:
        self.closing = True
        conns = tuple(self.conns)
        await asyncio.gather(
            *(c.close(WSCloseCode.GOING_AWAY, b"server shutdown") for c in conns),
            return_exceptions=True,
        )

    async def close(self) -> None:
        await self.shutdown()
        for task in tuple(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.history.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("console task %s failed", task.get_name(), exc_info=task.exception())

    # --- events -------------------------------------------------------------------------------

    async def on_event(self, ev: Event) -> None:
        if isinstance(ev, POP_EVENTS):
            self.deliver(self.book.feed(ev))
        elif isinstance(ev, AgentCallCompleted):
            self._completed(ev)
        elif isinstance(ev, CallEnded):
            self.deliver(self.book.feed(ev))
            self.history.forget(ev.record.call_id)
            self.work.call_ended(ev.record.call_id)
        elif isinstance(ev, AgentStateChanged | QueueMembersSynced):
            self._presence(ev)
        elif isinstance(ev, SessionEnded):
            for conn in [c for c in self.conns if c.user.id == ev.user_id]:
                self.spawn(conn.close(SIGNED_OUT, b"signed out"), f"console:signout:{ev.username}")

    def _presence(self, ev: AgentStateChanged | QueueMembersSynced) -> None:
        changed = self.presence.apply(ev)
        self.push_states(changed)
        live = isinstance(ev, AgentStateChanged)
        for interface in changed & set(self.operators.logged_in):
            # a pause or log-out made elsewhere becomes the operator's recorded wish
            d = self.operators.observe(interface, live=live)
            if d is not None:
                self.spawn(self._save_wish(d, ev.at), f"console:wish:{interface}")
        if isinstance(ev, QueueMembersSynced):
            self.synced = True
            if self.stale:
                self.stale = False
                self.to_all({"type": "notice", "text": "Your console is up to date again."})
            self.spawn(self._restore(f"{ev.server}:{ev.at.isoformat()}"),
                       "console:restore-logins")

    def _completed(self, ev: AgentCallCompleted) -> None:
        call_id = f"{ev.server}:{ev.linkedid}"
        changed = self.presence.apply(ev)
        self.deliver(self.book.feed(ev))
        self.push_states(changed)
        if self.presence.in_wrapup(ev.interface):
            self.spawn(self._wrapup_started(call_id, ev.interface),
                       f"console:wrapup:{ev.interface}")

    async def _load_history(self, want: WantHistory) -> None:
        try:
            async with asyncio.timeout(HISTORY_TIMEOUT):
                history = await self.history.get(
                    want.call_id, caller_number=want.caller_number, linkedid=want.linkedid,
                    case_number=want.case_number, now=want.at,
                )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # the pop stands without history; the operator is told why
            log.warning("caller history for %s not loaded: %r", want.call_id, exc)
            self.history.forget(want.call_id)
            history = {"error": "The caller's history is not available right now "
                                "(the case store did not answer)."}
        self.deliver(self.book.history_loaded(want.call_id, history))

    async def _once(self, key: str) -> bool:
        """Every web process hears every event; Asterisk actions and row updates that react to
        one are done by the one process that claims it."""
        return self.claim is None or await self.claim(key)

    async def _wrapup_started(self, call_id: str, interface: str) -> None:
        if await self._once(f"wrapup-start:{call_id}:{interface}"):
            await self.operators.wrapup_started(interface)

    def push_states(self, interfaces: set[str]) -> None:
        for interface in interfaces:
            self.to_interface(interface, self.state_message(interface))
        if self.presence.transitions:
            if self.operators.store is None:
                self.presence.take_transitions()
            else:
                self.spawn(self._record_transitions(), "console:presence-history")
        if self.presence.ended:
            self.spawn(self._after_wrapups(), "console:wrapups-ended")

    async def _after_wrapups(self) -> None:
        for ended in self.presence.take_ended():
            if ended.call_id and not await self._once(
                    f"wrapup-end:{ended.call_id}:{ended.interface}"):
                continue  # another process ends it (or this operator's own click did)
            if ended.expired:  # ready/pause/log-out set Asterisk's pause themselves
                await self.operators.wrapup_ended(ended.interface)
            if ended.call_id:
                server, _, linkedid = ended.call_id.rpartition(":")
                self.work.later(call_id=ended.call_id, server=server, linkedid=linkedid,
                                now=ended.ended, wrap_seconds=ended.seconds)
                if self.publish is not None and ended.seconds is not None:
                    # live handle time on the wallboard (the calls row gets it at the next flush)
                    await self.publish(WrapUpEnded(
                        server=server, linkedid=linkedid, interface=ended.interface,
                        wrap_seconds=ended.seconds, at=ended.ended))

    def events_dropped(self, total: int) -> None:
        """The bus's `on_drop`: consoles missed events; say so (once until the next sync)."""
        self.dropped = total
        if not self.stale:
            self.stale = True
            log.warning("consoles missed events (the bus dropped %d)", total)
            self.to_all({"type": "notice", "text": "Your console missed updates while the "
                         "server was busy: your state may be out of date. Log in again if "
                         "calls do not come."})

    async def _save_wish(self, d: Desired, at: datetime) -> None:
        if await self._once(f"wish:{d.interface}:{d.logged_in}:{d.paused}:{d.pause_reason}:"
                            f"{at.isoformat()}"):
            await self.operators.record_wish(d, at)

    async def _record_transitions(self) -> None:
        store = self.operators.store
        async with self._history_lock:  # in order: each change closes the one before
            items = self.presence.take_transitions()
            if store is None or not items:
                return
            mine = [t for t in items
                    if await self._once(f"interval:{t.interface}:{t.state}:{t.at.isoformat()}")]
            try:
                await store.record(mine)
            except (SQLAlchemyError, OSError) as exc:
                self.operators.store_errors += 1
                log.warning("presence history: %d changes not recorded (%r)", len(mine), exc)

    async def _restore(self, tag: str) -> None:
        for interface in await self.operators.restore_logins(self._once, tag):
            self.to_interface(interface, {
                "type": "notice",
                "text": "The phone system restarted: you were logged back in to your queues.",
            })

    async def tick(self) -> None:
        now = self.clock()
        changed = self.presence.tick(now)
        if changed:
            self.push_states(changed)
        await self.work.flush(now)

    async def run_ticker(self, interval: float = 1.0, codes_every: int = 60) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(interval)
            ticks += 1
            try:
                if ticks % codes_every == 0:  # admins' edits in another process
                    await self.operators.refresh_pause_reasons()
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("console tick failed")

    # --- commands -----------------------------------------------------------------------------

    async def handle(self, conn: Connection, raw: str) -> dict[str, Any]:
        """One client message -> the reply. Never raises for bad input."""
        try:
            cmd = parse_command(raw)
        except BadMessage as exc:
            return {"type": "error", "error": str(exc)}
        run = COMMANDS[cmd.type].run
        if run is None:  # ping: the page's keep-alive
            return {"type": "pong", "ref": cmd.ref}
        try:
            message = await run(self, Request(conn.user, cmd.args, self.clock()))
        except ConsoleError as exc:
            return self._failed(cmd, str(exc))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            log.warning("console %s of %s: the store failed: %r", cmd.type, conn.user.username,
                        exc)
            return self._failed(cmd, "The case store did not answer; nothing was saved. "
                                     "Try again in a moment.")
        except Exception:  # a bug must not cost the operator their console
            log.exception("console %s of %s failed", cmd.type, conn.user.username)
            return self._failed(cmd, "Something went wrong on the server (it is logged). "
                                     "Try again, or tell a supervisor.")
        return {"type": "result", "ref": cmd.ref, "command": cmd.type, "ok": True,
                "message": message}

    @staticmethod
    def _failed(cmd: Command, error: str) -> dict[str, Any]:
        return {"type": "result", "ref": cmd.ref, "command": cmd.type, "ok": False,
                "error": error}


__all__ = ["SUBSCRIBED", "Connection", "ConsoleHub", "parse_command"]
