"""The consoles' pop book: which call each operator's console shows, fed events, no I/O.

Routing rule: a pop for interface X goes to the sockets of the user whose `users.interface` is X,
and to nobody else. The book knows the open sockets (opaque keys: the hub's connections, plain
strings in tests) only to say who gets what; every method returns what to send to which sockets
(`Send`) and which caller histories to look up (`WantHistory`). The hub does the sending and the
looking up, and feeds a history back with `history_loaded`.

Events may come late, twice or out of order (a restarted console, a retried AgentCalled, the bus
replaying): a repeated ring keeps the pop that is up, an answer without a ring shows what it
knows, a ring or answer after the call's end pops nothing, and a clear only ever takes a pop
that is still ringing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from ..events import (
    AgentCallCompleted,
    AgentRinging,
    AgentRingNoAnswer,
    AmiLinkChanged,
    BroadcastMessage,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    Event,
)
from ..text import clean_text

BROADCASTS_KEPT = 10  # a console that (re)connects gets the last few supervisor messages
ENDED_KEPT = 4096  # calls known to be over: a late ring or answer for one pops nothing

S = TypeVar("S", bound=Hashable)  # a socket, as the hub names it


def _shown(value: str | None, limit: int) -> str | None:
    """Attacker-controlled text for a pop; nothing to show is null on the wire."""
    return clean_text(value, limit) or None


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
            caller_number=_shown(ev.caller_number, 40),
            caller_name=_shown(ev.caller_name, 80), rang_at=ev.at,
            service=_shown(ev.service, 80), language=_shown(ev.language, 8),
            case_number=_shown(ev.case_number, 40),
            ivr_path=tuple(clean_text(p, 40) for p in ev.ivr_path[:20]),
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


# --- what the book asks of the hub ---------------------------------------------------------------


class Send(NamedTuple, Generic[S]):
    """One message for these sockets (serialized once, however many). A tuple: the hot path
    makes one per message, and a frozen dataclass costs several times as much to build."""

    to: tuple[S, ...]
    msg: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WantHistory:
    """Look up the caller's history for a pop someone watches; answer with `history_loaded`."""

    call_id: str
    caller_number: str | None
    linkedid: str
    case_number: str | None
    at: datetime


Out = Send[S] | WantHistory


def clear(call_id: str, reason: str) -> dict[str, Any]:
    return {"type": "call.clear", "call_id": call_id, "reason": reason}


# --- the book ----------------------------------------------------------------------------------


class PopBook(Generic[S]):
    """Pops in progress per interface, the open sockets, the last broadcasts and the AMI link."""

    def __init__(self) -> None:
        self.sockets: dict[S, str | None] = {}  # socket -> its user's interface
        self.by_interface: dict[str, list[S]] = {}  # in the order they opened
        self.calls: dict[str, dict[str, CallView]] = {}  # interface -> call_id -> view
        self.rung: dict[str, set[str]] = {}  # call_id -> interfaces with a view of it
        self.broadcasts: deque[dict[str, Any]] = deque(maxlen=BROADCASTS_KEPT)
        self.link: dict[str, Any] = {"type": "link", "connected": None, "detail": ""}
        self.ended: dict[str, None] = {}  # call_ids whose CallEnded was seen, oldest first
        self._on: dict[type[Event], Callable[[Any], list[Out[S]]]] = {
            AgentRinging: self._ringing,
            AgentRingNoAnswer: self._no_answer,
            CallAnswered: self._answered,
            CallAbandoned: self._abandoned,
            AgentCallCompleted: self._completed,
            CallEnded: self._ended,
            BroadcastMessage: self._broadcast,
            AmiLinkChanged: self._link,
        }

    # --- sockets ------------------------------------------------------------------------------

    def open(self, sock: S, interface: str | None) -> list[Out[S]]:
        """A console connected: it gets the link, the broadcasts and its interface's pops (the
        hub sends its hello and presence state first)."""
        self.sockets[sock] = interface
        if interface:
            self.by_interface.setdefault(interface, []).append(sock)
        out: list[Out[S]] = [Send((sock,), self.link)]
        out += [Send((sock,), msg) for msg in self.broadcasts]
        for view in self.calls.get(interface or "", {}).values():
            out.append(Send((sock,), view.to_dict()))
            out += self._want_history(view)
        return out

    def close(self, sock: S) -> None:
        interface = self.sockets.pop(sock, None)
        peers = self.by_interface.get(interface or "")
        if peers is not None and sock in peers:
            peers.remove(sock)
            if not peers:
                del self.by_interface[interface or ""]

    def to_interface(self, interface: str, msg: dict[str, Any]) -> list[Out[S]]:
        socks = self.by_interface.get(interface)
        return [Send(tuple(socks), msg)] if socks else []

    def to_all(self, msg: dict[str, Any]) -> list[Out[S]]:
        return [Send(tuple(self.sockets), msg)] if self.sockets else []

    # --- events -------------------------------------------------------------------------------

    def feed(self, ev: Event) -> list[Out[S]]:
        """One bus event -> what to send; events the book does not keep give nothing."""
        handler = self._on.get(type(ev))
        return handler(ev) if handler is not None else []

    def _ringing(self, ev: AgentRinging) -> list[Out[S]]:
        view = CallView.from_ringing(ev)
        if view.call_id in self.ended:
            return []  # late: a pop now would never clear
        # a new ring replaces calls this console was done with
        for cid in [c for c, v in self.calls.get(ev.interface, {}).items()
                    if v.status in ("ended", "wrapup") and c != view.call_id]:
            self._forget(ev.interface, cid)
        mine = self.calls.setdefault(ev.interface, {})  # after: the last forget drops the dict
        if view.call_id in mine:
            return []  # a repeated AgentCalled (retry): the pop is already up
        mine[view.call_id] = view
        self.rung.setdefault(view.call_id, set()).add(ev.interface)
        out = self.to_interface(ev.interface, view.to_dict())
        # nobody watches this phone (a console not open, a simulated agent): no query now;
        # a console that connects while it rings asks for it
        return out + self._want_history(view) if out else out

    def _no_answer(self, ev: AgentRingNoAnswer) -> list[Out[S]]:
        return self._drop(f"{ev.server}:{ev.linkedid}", "missed", only=ev.interface)

    def _abandoned(self, ev: CallAbandoned) -> list[Out[S]]:
        return self._drop(f"{ev.server}:{ev.linkedid}", "abandoned")

    def _answered(self, ev: CallAnswered) -> list[Out[S]]:
        call_id = f"{ev.server}:{ev.linkedid}"
        if call_id in self.ended:
            return []  # late: a pop now would never clear
        out = self._drop(call_id, "answered elsewhere", keep=ev.interface)
        mine = self.calls.setdefault(ev.interface, {})
        view = mine.get(call_id)
        if view is None:  # we missed the ring (console restarted): show what we know
            view = CallView(call_id, ev.server, ev.linkedid, ev.interface, ev.queue, None, None,
                            ev.at)
            mine[call_id] = view
            self.rung.setdefault(call_id, set()).add(ev.interface)
        view.status = "connected"
        return out + self.to_interface(ev.interface, view.to_dict())

    def _completed(self, ev: AgentCallCompleted) -> list[Out[S]]:
        view = self.calls.get(ev.interface, {}).get(f"{ev.server}:{ev.linkedid}")
        if view is None:
            return []
        view.status = "wrapup"
        return self.to_interface(ev.interface, view.to_dict())

    def _ended(self, ev: CallEnded) -> list[Out[S]]:
        call_id = ev.record.call_id
        self.ended[call_id] = None
        if len(self.ended) > ENDED_KEPT:
            del self.ended[next(iter(self.ended))]
        out: list[Out[S]] = []
        for interface in sorted(self.rung.get(call_id, ())):
            view = self.calls.get(interface, {}).get(call_id)
            if view is None:
                continue
            if view.status == "ringing":
                self._forget(interface, call_id)
                out += self.to_interface(interface, clear(call_id, "ended"))
            elif view.status == "connected":
                view.status = "ended"
                out += self.to_interface(interface, view.to_dict())
        return out

    def _broadcast(self, ev: BroadcastMessage) -> list[Out[S]]:
        msg = {"type": "broadcast", "sender": clean_text(ev.sender, 80),
               "text": clean_text(ev.text, 1000), "at": ev.at.isoformat()}
        self.broadcasts.append(msg)
        return self.to_all(msg)

    def _link(self, ev: AmiLinkChanged) -> list[Out[S]]:
        self.link = {"type": "link", "connected": ev.connected,
                     "detail": clean_text(ev.detail, 200)}
        return self.to_all(self.link)

    # --- history ------------------------------------------------------------------------------

    def _want_history(self, view: CallView) -> list[Out[S]]:
        if view.history is None and not view.loading and view.status != "ended":
            view.loading = True
            return [WantHistory(view.call_id, view.raw_number, view.linkedid, view.case_number,
                                view.rang_at)]
        return []

    def history_loaded(self, call_id: str, history: dict[str, Any]) -> list[Out[S]]:
        """The looked-up history (or an error for the operator) joins every pop of the call."""
        out: list[Out[S]] = []
        for interface in sorted(self.rung.get(call_id, ())):
            view = self.calls.get(interface, {}).get(call_id)
            if view is not None:
                view.history, view.loading = history, False
                out += self.to_interface(interface, view.to_dict())
        return out

    # --- what operators do to their pops ------------------------------------------------------

    def view(self, interface: str | None, call_id: str) -> CallView | None:
        return self.calls.get(interface or "", {}).get(call_id)

    def views(self, interface: str | None) -> Iterable[CallView]:
        return tuple(self.calls.get(interface or "", {}).values())

    def dismiss(self, interface: str, call_id: str) -> list[Out[S]]:
        if self.view(interface, call_id) is None:
            return []
        self._forget(interface, call_id)
        return self.to_interface(interface, clear(call_id, "dismissed"))

    def done_calls(self, interface: str) -> list[Out[S]]:
        """Ready or logged out: calls already over leave the console."""
        out: list[Out[S]] = []
        for cid, view in list(self.calls.get(interface, {}).items()):
            if view.status in ("wrapup", "ended"):
                self._forget(interface, cid)
                out += self.to_interface(interface, clear(cid, "done"))
        return out

    def add_case(self, interface: str, call_id: str, number: str) -> list[Out[S]]:
        """A case opened on the call, or one the call joined (a note): the pop lists it."""
        view = self.view(interface, call_id)
        if view is None or number in view.cases:
            return []
        view.cases.append(number)
        return self.to_interface(interface, view.to_dict())

    def set_disposition(self, interface: str, call_id: str, disposition: str) -> list[Out[S]]:
        view = self.view(interface, call_id)
        if view is None:
            return []
        view.disposition = disposition
        return self.to_interface(interface, view.to_dict())

    # --- internals ----------------------------------------------------------------------------

    def _drop(self, call_id: str, reason: str, *, only: str | None = None,
              keep: str | None = None) -> list[Out[S]]:
        """Clear ringing pops of `call_id` (on interface `only`, or on all but `keep`)."""
        out: list[Out[S]] = []
        for interface in sorted(self.rung.get(call_id, ())):
            if interface == keep or (only is not None and interface != only):
                continue
            view = self.calls.get(interface, {}).get(call_id)
            if view is None or view.status != "ringing":
                continue
            self._forget(interface, call_id)
            out += self.to_interface(interface, clear(call_id, reason))
        return out

    def _forget(self, interface: str, call_id: str) -> None:
        self.calls.get(interface, {}).pop(call_id, None)
        ifaces = self.rung.get(call_id)
        if ifaces is not None:
            ifaces.discard(interface)
            if not ifaces:
                del self.rung[call_id]
        if not self.calls.get(interface):
            self.calls.pop(interface, None)


__all__ = ["BROADCASTS_KEPT", "CallView", "Out", "PopBook", "Send", "WantHistory", "clear"]
