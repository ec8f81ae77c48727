"""The operator consoles: one websocket per open page, screen pops routed by interface.

Routing rule: a pop for interface X goes to the sockets of the user whose `users.interface` is X,
and to nobody else. Each socket has a bounded outbox and its own writer task, so a slow browser
cannot stall the others; a socket whose outbox overflows is closed (the page reconnects and gets
the full state again, which is cheaper and safer than a console that silently missed a pop).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import re
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
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
from . import presence as P
from .presence_store import Desired
from .services import (
    DISPOSITIONS,
    CallerHistory,
    CallWork,
    ConsoleError,
    OperatorService,
)

log = logging.getLogger(__name__)

SUBSCRIBED: tuple[type[Event], ...] = (
    AgentRinging, AgentRingNoAnswer, CallAnswered, CallAbandoned, AgentCallCompleted, CallEnded,
    AgentStateChanged, QueueMembersSynced, BroadcastMessage, AmiLinkChanged, SessionEnded,
)
OUTBOX = 256
HISTORY_TIMEOUT = 5.0
MAX_MESSAGE = 64 * 1024
BROADCASTS_KEPT = 10

# --- attacker-controlled text ----------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def clean_text(value: str | None, limit: int) -> str | None:
    """Caller ID and the like: control characters (newlines too) become one space, the length is
    capped. Escaping is the page's job (it only ever sets textContent)."""
    if value is None:
        return None
    value = _CONTROL.sub(" ", str(value)).strip()
    return value if len(value) <= limit else value[: limit - 1] + "…"


# --- what a console shows about a call ---------------------------------------------------------


@dataclass(slots=True)
class CallView:
    call_id: str
    server: str
    linkedid: str
    interface: str
    queue: str
    caller_number: str | None
    caller_name: str | None
    rang_at: datetime
    status: str = "ringing"  # ringing, connected, wrapup, ended
    service: str | None = None
    language: str | None = None
    case_number: str | None = None
    ivr_path: tuple[str, ...] = ()
    history: dict[str, Any] | None = None
    cases: list[str] = field(default_factory=list)  # opened or noted on this call
    disposition: str | None = None
    raw_number: str | None = None  # as the call record stores it (for the history query)
    loading: bool = False  # a history query for this view is in flight

    @classmethod
    def from_ringing(cls, ev: AgentRinging) -> CallView:
        return cls(
            call_id=f"{ev.server}:{ev.linkedid}", server=ev.server, linkedid=ev.linkedid,
            interface=ev.interface, queue=ev.queue,
            caller_number=clean_text(ev.caller_number, 40),
            caller_name=clean_text(ev.caller_name, 80), rang_at=ev.at,
            service=clean_text(ev.service, 80), language=clean_text(ev.language, 8),
            case_number=clean_text(ev.case_number, 40),
            ivr_path=tuple(clean_text(p, 40) or "" for p in ev.ivr_path[:20]),
            raw_number=ev.caller_number[:40] if ev.caller_number else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "call", "call_id": self.call_id, "status": self.status, "queue": self.queue,
            "caller_number": self.caller_number, "caller_name": self.caller_name,
            "rang_at": self.rang_at.isoformat(), "service": self.service,
            "language": self.language, "case_number": self.case_number,
            "ivr_path": list(self.ivr_path), "history": self.history, "cases": self.cases,
            "disposition": self.disposition,
        }


def _dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), default=str)


# --- one socket ------------------------------------------------------------------------------

class Connection:
    def __init__(self, ws: web.WebSocketResponse, user: Principal, maxsize: int = OUTBOX):
        self.ws = ws
        self.user = user
        self.outbox: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.overflowed = False
        self.sent = 0
        self.closer: asyncio.Task[None] | None = None
        self.writer = asyncio.get_running_loop().create_task(
            self._write(), name=f"console-writer:{user.username}"
        )

    def send(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.outbox.put_nowait(text)
        except asyncio.QueueFull:
            # A browser this far behind would show stale pops: drop it; it reconnects to a
            # fresh snapshot. The writer may be stuck in a send, so it is cancelled, not asked.
            self.overflowed = True
            log.warning("console of %s is too slow (%d queued): closing it",
                        self.user.username, self.outbox.qsize())
            self.writer.cancel()
            self.closer = asyncio.get_running_loop().create_task(
                self._close_slow(), name=f"console-close:{self.user.username}"
            )

    def send_json(self, msg: dict[str, Any]) -> None:
        self.send(_dumps(msg))

    async def _close_slow(self) -> None:
        try:
            async with asyncio.timeout(5):
                await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
        except TimeoutError:
            log.warning("console of %s did not close in time", self.user.username)

    async def _write(self) -> None:
        while True:
            item = await self.outbox.get()
            try:
                await self.ws.send_str(item)
                self.sent += 1
            except (ConnectionError, RuntimeError) as exc:  # closing/closed transport
                log.debug("console socket of %s gone: %s", self.user.username, exc)
                return

    async def close(self, code: int = WSCloseCode.GOING_AWAY, message: bytes = b"") -> None:
        for task in (self.writer, self.closer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not self.ws.closed:
            await self.ws.close(code=code, message=message)


# --- client messages -----------------------------------------------------------------------------


class BadMessage(ValueError):
    pass


# type -> {field: (python type, max length, required)}
COMMANDS: dict[str, dict[str, tuple[type[str], int, bool]]] = {
    "ping": {},
    "login": {},
    "pause": {"reason": (str, 40, True)},
    "ready": {},
    "logout": {},
    "answer": {},
    "hangup": {},
    "dismiss": {"call_id": (str, 200, True)},
    "create_case": {"call_id": (str, 200, True), "service": (str, 80, True),
                    "address": (str, 400, False), "description": (str, 4000, True),
                    "email": (str, 200, False)},
    "add_note": {"call_id": (str, 200, False), "case": (str, 40, True),
                 "body": (str, 4000, True)},
    "disposition": {"call_id": (str, 200, True), "disposition": (str, 40, True)},
}


@dataclass(frozen=True, slots=True)
class Command:
    type: str
    ref: str | None
    args: dict[str, str]


def parse_command(raw: str) -> Command:
    """A client message -> Command, or BadMessage with a reason meant for a person."""
    if len(raw) > MAX_MESSAGE:
        raise BadMessage(f"message too large ({len(raw)} characters; the limit is {MAX_MESSAGE})")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise BadMessage(f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(data, dict):
        raise BadMessage("a message must be a JSON object with a \"type\"")
    ref = data.get("ref")
    if ref is not None and not (isinstance(ref, str | int) and not isinstance(ref, bool)):
        raise BadMessage("\"ref\" must be a string or a number")
    ref_s = str(ref)[:40] if ref is not None else None
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in COMMANDS:
        raise BadMessage(f"unknown message type {str(kind)[:40]!r}")
    args: dict[str, str] = {}
    for name, (tp, limit, required) in COMMANDS[kind].items():
        value = data.get(name)
        if value is None or value == "":
            if required:
                raise BadMessage(f"{kind}: \"{name}\" is required")
            continue
        if not isinstance(value, tp):
            raise BadMessage(f"{kind}: \"{name}\" must be text")
        value = value.strip()
        if len(value) > limit:
            raise BadMessage(f"{kind}: \"{name}\" is longer than {limit} characters")
        if required and not value:
            raise BadMessage(f"{kind}: \"{name}\" is required")
        args[name] = value
    return Command(kind, ref_s, args)


# --- the hub -------------------------------------------------------------------------------------


class ConsoleHub:
    """Presence, pops in progress, and every open console; fed by the bus."""

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
        self.conns: set[Connection] = set()
        self.by_interface: dict[str, set[Connection]] = {}
        self.calls: dict[str, dict[str, CallView]] = {}  # interface -> call_id -> view
        self.rung: dict[str, set[str]] = {}  # call_id -> interfaces with a view of it
        self.broadcasts: deque[dict[str, Any]] = deque(maxlen=BROADCASTS_KEPT)
        self.link: dict[str, Any] = {"type": "link", "connected": None, "detail": ""}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.synced = False  # a full member list from Asterisk was seen
        # The bus dropped events for the consoles (its queue was full): presence and pops may
        # be wrong until Asterisk's next full member list; operators are told.
        self.dropped = 0
        self.stale = False
        self._history_lock = asyncio.Lock()

    # --- sockets ------------------------------------------------------------------------------

    def connect(self, ws: web.WebSocketResponse, user: Principal) -> Connection:
        conn = Connection(ws, user)
        self.conns.add(conn)
        if user.interface:
            self.by_interface.setdefault(user.interface, set()).add(conn)
        conn.send_json(self.hello(user))
        conn.send_json(self.state_message(user.interface))
        conn.send_json(self.link)
        for msg in self.broadcasts:
            conn.send_json(msg)
        for view in self.calls.get(user.interface or "", {}).values():
            conn.send_json(view.to_dict())
            self._want_history(view)
        return conn

    async def disconnect(self, conn: Connection) -> None:
        self.conns.discard(conn)
        peers = self.by_interface.get(conn.user.interface or "")
        if peers is not None:
            peers.discard(conn)
            if not peers:
                del self.by_interface[conn.user.interface or ""]
        await conn.close()

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

    def to_interface(self, interface: str, msg: dict[str, Any]) -> int:
        conns = self.by_interface.get(interface)
        if not conns:
            return 0
        text = _dumps(msg)
        for conn in tuple(conns):
            conn.send(text)
        return len(conns)

    def to_all(self, msg: dict[str, Any]) -> None:
        text = _dumps(msg)  # serialize once
        for conn in tuple(self.conns):
            conn.send(text)

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
        if isinstance(ev, AgentRinging):
            self._ringing(ev)
        elif isinstance(ev, AgentRingNoAnswer):
            self._drop(f"{ev.server}:{ev.linkedid}", "missed", only={ev.interface})
        elif isinstance(ev, CallAnswered):
            self._answered(ev)
        elif isinstance(ev, CallAbandoned):
            self._drop(f"{ev.server}:{ev.linkedid}", "abandoned")
        elif isinstance(ev, AgentCallCompleted):
            self._completed(ev)
        elif isinstance(ev, CallEnded):
            self._ended(ev)
        elif isinstance(ev, AgentStateChanged | QueueMembersSynced):
            changed = self.presence.apply(ev)
            self._push_states(changed)
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
        elif isinstance(ev, BroadcastMessage):
            msg = {"type": "broadcast", "sender": clean_text(ev.sender, 80),
                   "text": clean_text(ev.text, 1000), "at": ev.at.isoformat()}
            self.broadcasts.append(msg)
            self.to_all(msg)
        elif isinstance(ev, AmiLinkChanged):
            self.link = {"type": "link", "connected": ev.connected,
                         "detail": clean_text(ev.detail, 200)}
            self.to_all(self.link)
        elif isinstance(ev, SessionEnded):
            for conn in [c for c in self.conns if c.user.id == ev.user_id]:
                self.spawn(conn.close(SIGNED_OUT, b"signed out"), f"console:signout:{ev.username}")

    def _ringing(self, ev: AgentRinging) -> None:
        view = CallView.from_ringing(ev)
        mine = self.calls.setdefault(ev.interface, OrderedDict())
        # a new ring replaces calls this console was done with
        for cid in [c for c, v in mine.items() if v.status in ("ended", "wrapup")
                    and c != view.call_id]:
            self._forget(ev.interface, cid)
        if view.call_id in mine:
            return  # a repeated AgentCalled (retry): the pop is already up
        mine[view.call_id] = view
        self.rung.setdefault(view.call_id, set()).add(ev.interface)
        if self.to_interface(ev.interface, view.to_dict()):
            self._want_history(view)
        # nobody watches this phone (a console not open, a simulated agent): no query now;
        # a console that connects while it rings asks for it

    def _want_history(self, view: CallView) -> None:
        if view.history is None and not view.loading and view.status != "ended":
            view.loading = True
            self.spawn(self._load_history(view, view.rang_at), f"console:history:{view.call_id}")

    async def _load_history(self, view: CallView, at: datetime) -> None:
        try:
            async with asyncio.timeout(HISTORY_TIMEOUT):
                history = await self.history.get(
                    view.call_id, caller_number=view.raw_number, linkedid=view.linkedid,
                    case_number=view.case_number, now=at,
                )
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            # the pop stands without history; the operator is told why
            log.warning("caller history for %s not loaded: %r", view.call_id, exc)
            self.history.forget(view.call_id)
            history = {"error": "The caller's history is not available right now "
                                "(the case store did not answer)."}
        for interface in self.rung.get(view.call_id, ()):
            v = self.calls.get(interface, {}).get(view.call_id)
            if v is not None:
                v.history, v.loading = history, False
                self.to_interface(interface, v.to_dict())
        view.loading = False

    def _answered(self, ev: CallAnswered) -> None:
        call_id = f"{ev.server}:{ev.linkedid}"
        self._drop(call_id, "answered elsewhere", keep=ev.interface)
        mine = self.calls.setdefault(ev.interface, OrderedDict())
        view = mine.get(call_id)
        if view is None:  # we missed the ring (console restarted): show what we know
            view = CallView(call_id, ev.server, ev.linkedid, ev.interface, ev.queue, None, None,
                            ev.at)
            mine[call_id] = view
            self.rung.setdefault(call_id, set()).add(ev.interface)
        view.status = "connected"
        self.to_interface(ev.interface, view.to_dict())

    def _completed(self, ev: AgentCallCompleted) -> None:
        call_id = f"{ev.server}:{ev.linkedid}"
        changed = self.presence.apply(ev)
        view = self.calls.get(ev.interface, {}).get(call_id)
        if view is not None:
            view.status = "wrapup"
            self.to_interface(ev.interface, view.to_dict())
        self._push_states(changed)
        if self.presence.in_wrapup(ev.interface):
            self.spawn(self._wrapup_started(call_id, ev.interface),
                       f"console:wrapup:{ev.interface}")

    async def _once(self, key: str) -> bool:
        """Every web process hears every event; Asterisk actions and row updates that react to
        one are done by the one process that claims it."""
        return self.claim is None or await self.claim(key)

    async def _wrapup_started(self, call_id: str, interface: str) -> None:
        if await self._once(f"wrapup-start:{call_id}:{interface}"):
            await self.operators.wrapup_started(interface)

    def _ended(self, ev: CallEnded) -> None:
        call_id = ev.record.call_id
        for interface in tuple(self.rung.get(call_id, ())):
            view = self.calls.get(interface, {}).get(call_id)
            if view is None:
                continue
            if view.status == "ringing":
                self._forget(interface, call_id)
                self.to_interface(interface, {"type": "call.clear", "call_id": call_id,
                                              "reason": "ended"})
            elif view.status == "connected":
                view.status = "ended"
                self.to_interface(interface, view.to_dict())
        self.history.forget(call_id)
        self.work.call_ended(call_id)

    def _drop(self, call_id: str, reason: str, *, only: set[str] | None = None,
              keep: str | None = None) -> None:
        """Clear ringing pops of `call_id` (on `only`'s interfaces, or all but `keep`)."""
        for interface in tuple(self.rung.get(call_id, ())):
            if interface == keep or (only is not None and interface not in only):
                continue
            view = self.calls.get(interface, {}).get(call_id)
            if view is None or view.status != "ringing":
                continue
            self._forget(interface, call_id)
            self.to_interface(interface, {"type": "call.clear", "call_id": call_id,
                                          "reason": reason})

    def _forget(self, interface: str, call_id: str) -> None:
        self.calls.get(interface, {}).pop(call_id, None)
        ifaces = self.rung.get(call_id)
        if ifaces is not None:
            ifaces.discard(interface)
            if not ifaces:
                del self.rung[call_id]
        if not self.calls.get(interface):
            self.calls.pop(interface, None)

    def _push_states(self, interfaces: set[str]) -> None:
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
            self._push_states(changed)
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
        if cmd.type == "ping":
            return {"type": "pong", "ref": cmd.ref}
        try:
            message = await self._run(conn.user, cmd)
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

    def _my_call(self, user: Principal, call_id: str) -> CallView:
        view = self.calls.get(user.interface or "", {}).get(call_id)
        if view is None:
            raise ConsoleError("That call is not on your console (any more).")
        return view

    async def _run(self, user: Principal, cmd: Command) -> str:
        now = self.clock()
        a = cmd.args
        view: CallView | None
        if cmd.type == "login":
            return await self.operators.login(user, now)
        if cmd.type == "pause":
            out = await self.operators.pause(user, a["reason"], now)
            self._push_states({user.interface or ""})
            return out
        if cmd.type == "ready":
            out = await self.operators.ready(user, now)
            self._done_calls(user)
            self._push_states({user.interface or ""})
            return out
        if cmd.type == "logout":
            out = await self.operators.logout(user, now)
            self._done_calls(user)
            self._push_states({user.interface or ""})
            return out
        if cmd.type in ("answer", "hangup"):
            return await self._phone(user, cmd.type)
        if cmd.type == "dismiss":
            view = self._my_call(user, a["call_id"])
            if view.status in ("ringing", "connected"):
                raise ConsoleError("The call is still going on.")
            self._forget(user.interface or "", view.call_id)
            self.to_interface(user.interface or "", {"type": "call.clear",
                                                     "call_id": view.call_id,
                                                     "reason": "dismissed"})
            return "Call closed."
        if cmd.type == "create_case":
            view = self._my_call(user, a["call_id"])
            if view.status == "ringing":
                raise ConsoleError("Answer the call before opening a case.")
            case = await self.work.create_case(
                user, call_id=view.call_id, server=view.server, linkedid=view.linkedid,
                caller_number=view.raw_number, caller_name=view.caller_name,
                service=a["service"], address=a.get("address", ""),
                description=a["description"], now=now, language=view.language,
                email=a.get("email", ""),
            )
            view.cases.append(case.number)
            self.to_interface(user.interface or "", view.to_dict())
            return f"Case {case.number} opened."
        if cmd.type == "add_note":
            if "call_id" in a:
                view = self._my_call(user, a["call_id"])
            else:
                view = None
            case = await self.work.add_note(user, number=a["case"], body=a["body"], now=now)
            number = case.number
            if view is not None and number not in view.cases:
                if not view.cases:
                    # the caller is about this existing case (a chase call, or a duplicate
                    # the operator linked instead of opening another): the call joins it
                    await self.work.set_on_call(
                        call_id=view.call_id, server=view.server, linkedid=view.linkedid,
                        now=now, case_id=case.id, citizen_id=case.citizen_id)
                view.cases.append(number)
                self.to_interface(user.interface or "", view.to_dict())
            return f"Note added to case {number}."
        if cmd.type == "disposition":
            view = self._my_call(user, a["call_id"])
            if a["disposition"] not in DISPOSITIONS:
                raise ConsoleError(f"Unknown disposition {a['disposition']!r}.")
            if view.status == "ringing":
                raise ConsoleError("The call has not been answered.")
            await self.work.set_on_call(call_id=view.call_id, server=view.server,
                                        linkedid=view.linkedid, now=now,
                                        disposition=a["disposition"])
            view.disposition = a["disposition"]
            self.to_interface(user.interface or "", view.to_dict())
            return f"Disposition saved: {DISPOSITIONS[a['disposition']]}."
        raise ConsoleError(f"{cmd.type} is not supported.")  # COMMANDS and _run disagree

    def _done_calls(self, user: Principal) -> None:
        """Ready or logged out: calls already over leave the console."""
        interface = user.interface or ""
        for cid, view in list(self.calls.get(interface, {}).items()):
            if view.status in ("wrapup", "ended"):
                self._forget(interface, cid)
                self.to_interface(interface, {"type": "call.clear", "call_id": cid,
                                              "reason": "done"})

    async def _phone(self, user: Principal, action: str) -> str:
        """The demo's simulated phone (telephony.simulator.phones.PhoneControl)."""
        phones = self.phones()
        if phones is None:
            raise ConsoleError("Use your desk phone: this console has no phone controls.")
        if not user.interface:
            raise ConsoleError("Your account has no phone (interface).")
        try:
            done = getattr(phones, action)(user.interface)
            if inspect.isawaitable(done):
                done = await done
        except (LookupError, ValueError, RuntimeError) as exc:
            raise ConsoleError(f"The demo phone could not {action}: {exc}") from exc
        if done is False:
            raise ConsoleError("Nothing is ringing on your phone." if action == "answer"
                               else "There is no call on your phone.")
        return "Answering." if action == "answer" else "Hanging up."
