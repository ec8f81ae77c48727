"""Domain events: the only language spoken above `telephony/`.

Every event is a frozen dataclass. They serialize to JSON with a ``type`` tag (the class name)
so the Redis bus can carry them between processes. Times are aware UTC datetimes taken from the
AMI ``Timestamp`` when Asterisk sends one.

The `Pbx` protocol is the small gateway the console and the wallboard use to ask Asterisk for
something; `telephony/` implements it, so no domain package imports `telephony/`.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

_REGISTRY: dict[str, type[Event]] = {}


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every domain event."""

    def __init_subclass__(cls) -> None:
        # dataclass(slots=True) rebuilds the class, so this runs twice; the last one wins.
        _REGISTRY[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies every value and was a third of a busy bridge's
        # time publishing on Redis (issue 10). Fields are plain values, datetimes, tuples and
        # nested dataclasses (CallEnded.record).
        return {"type": type(self).__name__, **_encode(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))


OUTCOMES = (
    "answered",
    "abandoned",
    "short_abandoned",
    "ivr_self_served",
    "ivr_hangup",
    "timed_out",
    "transferred",
)


# How one queue visit (leg) ended. ``short_abandoned`` is an abandon under the queue's
# short-abandon threshold; ``left_empty``: Asterisk sent the caller out because the queue had no
# usable member (leavewhenempty); ``transferred``: an operator transferred the caller on.
LEG_OUTCOMES = (
    "answered",
    "abandoned",
    "short_abandoned",
    "timed_out",
    "transferred",
    "left_empty",
)


@dataclass(frozen=True, slots=True)
class QueueLeg:
    """One part of a call, in order: a queue visit (``kind="queue"``), or a transfer to a line
    outside the queues (``kind="transfer"``: an outside number, an agency line) that ended it.

    Figures are Asterisk's for that visit: wait = HoldTime of its AgentConnect or
    QueueCallerAbandon, ring = the answering operator's RingTime, talk = TalkTime of its
    AgentComplete. A leg that was transferred names where to in `target`."""

    queue: str | None
    joined_at: datetime
    left_at: datetime
    outcome: str  # one of LEG_OUTCOMES
    wait_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    agent: str | None = None
    agent_interface: str | None = None
    target: str | None = None  # transferred: "exten@context" or the target channel
    kind: str = "queue"


# A record written before calls had legs (or built without them) has one leg from its columns;
# the migration 0004 maps the stored rows the same way.
_LEG_OF_OUTCOME = {
    "answered": "answered",
    "abandoned": "abandoned",
    "short_abandoned": "short_abandoned",
    "timed_out": "timed_out",
    "transferred": "transferred",
}


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished call with the metrics of DESIGN.md; written once per (server, linkedid)."""

    server: str
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    started_at: datetime
    ended_at: datetime
    outcome: str
    queue: str | None = None
    service: str | None = None
    language: str | None = None
    agent: str | None = None  # the member name of the answering operator
    agent_interface: str | None = None
    ivr_seconds: float | None = None
    wait_seconds: float | None = None
    ring_seconds: float | None = None
    talk_seconds: float | None = None
    hold_seconds: float | None = None
    case_number: str | None = None
    ivr_path: tuple[str, ...] = ()
    abandon_position: int | None = None
    partial: bool = False  # closed by a resync: some figures may be missing
    # Rebuilt from Asterisk's own records (queue_log, CDR) after a gap: telephony/reconcile.py
    reconciled: bool = False
    # Every queue visit and outside transfer, in order. `queue` is the first queue and `agent`
    # the first operator who answered; wait and talk are the sums over the legs.
    legs: tuple[QueueLeg, ...] = ()

    @property
    def call_id(self) -> str:
        return f"{self.server}:{self.linkedid}"

    @property
    def queue_legs(self) -> tuple[QueueLeg, ...]:
        """`legs`, or for a record without them, the one leg its columns describe."""
        if self.legs or self.queue is None or self.outcome not in _LEG_OF_OUTCOME:
            return self.legs
        joined = self.started_at
        if self.ivr_seconds is not None:
            joined = min(self.started_at + timedelta(seconds=self.ivr_seconds), self.ended_at)
        return (QueueLeg(
            queue=self.queue, joined_at=joined, left_at=self.ended_at,
            outcome=_LEG_OF_OUTCOME[self.outcome], wait_seconds=self.wait_seconds,
            ring_seconds=self.ring_seconds, talk_seconds=self.talk_seconds, agent=self.agent,
            agent_interface=self.agent_interface,
        ),)

    @property
    def first_queue(self) -> str | None:
        return next((leg.queue for leg in self.queue_legs if leg.queue), self.queue)

    @property
    def final_queue(self) -> str | None:
        queues = [leg.queue for leg in self.queue_legs if leg.queue]
        return queues[-1] if queues else self.queue

    @property
    def final_agent(self) -> str | None:
        """The last operator who talked with the caller."""
        agents = [leg.agent for leg in self.queue_legs if leg.agent]
        return agents[-1] if agents else self.agent


# --- calls -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted(Event):
    server: str
    linkedid: str
    caller_number: str | None
    caller_name: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class IvrChoice(Event):
    """A caller's step in the IVR. `uniqueid` is the AGI channel's."""

    server: str
    uniqueid: str
    node: str
    digit: str
    action: str
    at: datetime
    language: str | None = None
    service: str | None = None
    queue: str | None = None
    case_number: str | None = None
    menu_version: int | None = None  # the menu version the session plays


@dataclass(frozen=True, slots=True)
class QueueJoined(Event):
    server: str
    linkedid: str
    queue: str
    position: int
    caller_number: str | None
    caller_name: str | None
    at: datetime
    service: str | None = None
    language: str | None = None
    case_number: str | None = None


@dataclass(frozen=True, slots=True)
class QueueLeft(Event):
    server: str
    linkedid: str
    queue: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentRinging(Event):
    """Asterisk rings an operator for a queued call (AgentCalled): the screen-pop trigger."""

    server: str
    linkedid: str
    queue: str
    interface: str
    member_name: str | None
    caller_number: str | None
    caller_name: str | None
    at: datetime
    service: str | None = None
    language: str | None = None
    case_number: str | None = None
    ivr_path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentRingNoAnswer(Event):
    server: str
    linkedid: str
    queue: str
    interface: str
    ring_seconds: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CallAnswered(Event):
    server: str
    linkedid: str
    queue: str
    interface: str
    member_name: str | None
    wait_seconds: float | None
    ring_seconds: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CallHeld(Event):
    server: str
    linkedid: str
    held: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class CallTransferred(Event):
    server: str
    linkedid: str
    kind: str  # "blind" or "attended"
    target: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CallAbandoned(Event):
    server: str
    linkedid: str
    queue: str
    position: int | None
    original_position: int | None
    wait_seconds: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class AgentCallCompleted(Event):
    """The operator's part of a call ended (AgentComplete): wrap-up starts now."""

    server: str
    linkedid: str
    queue: str
    interface: str
    talk_seconds: float | None
    at: datetime


@dataclass(frozen=True, slots=True)
class WrapUpEnded(Event):
    """The operator's after-call work for a call is over (ready, pause, or the wrap-up time
    passed): its length completes the call's handle time (talk + wrap)."""

    server: str
    linkedid: str
    interface: str
    wrap_seconds: float
    at: datetime


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """The call is over: carries its one finished record."""

    record: CallRecord


# --- operators and queues ----------------------------------------------------------------------

# Asterisk's AST_DEVICE_* numbers as QueueMemberStatus reports them.
DEVICE_STATES = {
    0: "unknown",
    1: "not_in_use",
    2: "in_use",
    3: "busy",
    4: "invalid",
    5: "unavailable",
    6: "ringing",
    7: "ring_in_use",
    8: "on_hold",
}


@dataclass(frozen=True, slots=True)
class AgentStateChanged(Event):
    """A queue member's state as Asterisk reports it (QueueMemberStatus/Pause/Added/Removed)."""

    server: str
    queue: str
    interface: str
    member_name: str | None
    device_state: str  # one of DEVICE_STATES' values, or "logged_out"
    paused: bool
    pause_reason: str | None
    at: datetime
    in_call: bool = False
    wrapup_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class QueueMembersSynced(Event):
    """After a (re)connect: the full member list per queue as QueueStatus reported it."""

    server: str
    members: tuple[AgentStateChanged, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class AmiLinkChanged(Event):
    server: str
    connected: bool
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class BroadcastMessage(Event):
    """A supervisor's message to every operator console."""

    sender: str
    text: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CaseChanged(Event):
    number: str
    status: str
    citizen_id: int | None
    at: datetime
    # created, acknowledged, started, assigned, reassigned, noted, waiting, resumed, closed,
    # reopened (updated: anything else)
    change: str = "updated"
    public: bool = False  # the citizen is told (a public note, acknowledged, closed, reopened)
    note: str = ""  # the public note or resolution the citizen reads, when there is one
    actor: str = ""  # username, or "citizen", "system"
    agency: str | None = None  # code of the agency that owns the case after the change


@dataclass(frozen=True, slots=True)
class SessionEnded(Event):
    """A user signed out: their live sockets (console, wallboard) close in every process; a
    browser still signed in reconnects, one that is not is sent to the log-in page."""

    user_id: int
    username: str
    at: datetime


@dataclass(frozen=True, slots=True)
class QueuesChanged(Event):
    """An admin created, edited or deleted queues: every process reloads its QueueDirectory."""

    names: tuple[str, ...]
    actor: str
    at: datetime


# --- the gateway to Asterisk -------------------------------------------------------------------


class PbxError(Exception):
    """Asterisk refused an action or did not answer in time; the message says which."""


class Pbx(Protocol):
    """Actions the domain may ask of the PBX. Implemented in telephony/."""

    async def queue_add(
        self, queue: str, interface: str, member_name: str, *, paused: bool = False,
        penalty: int = 0,
    ) -> None: ...

    async def queue_remove(self, queue: str, interface: str) -> None: ...

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str | None = None, reason: str = ""
    ) -> None: ...

    async def hangup(self, channel: str) -> None: ...

    async def originate(
        self, channel: str, context: str, exten: str, *, caller_id: str = "", variables:
        dict[str, str] | None = None
    ) -> None: ...


# --- JSON ---------------------------------------------------------------------------------------


_PLAIN = (str, int, float, bool, type(None))
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _encode(value: Any) -> Any:
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    cls = type(value)
    names = _FIELD_NAMES.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    if names is not None:
        return {name: _encode(getattr(value, name)) for name in names}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _decode(args[0], value) if len(args) == 1 else value
    if tp is datetime:
        return datetime.fromisoformat(value)
    if origin is tuple:
        (inner, *_rest) = typing.get_args(tp)
        return tuple(_decode(inner, v) for v in value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp) and isinstance(value, dict):
        return _from_fields(tp, value)
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _from_fields(cls: type, data: dict[str, Any]) -> Any:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    kwargs = {
        f.name: _decode(hints[f.name], data[f.name])
        for f in dataclasses.fields(cls)
        if f.name in data
    }
    return cls(**kwargs)


class EventDecodeError(ValueError):
    pass


def event_from_dict(data: dict[str, Any]) -> Event:
    try:
        cls = _REGISTRY[data["type"]]
        return typing.cast(Event, _from_fields(cls, data))
    except (KeyError, TypeError, ValueError) as exc:
        raise EventDecodeError(f"not a domain event: {exc!r}") from exc


def event_from_json(raw: str | bytes) -> Event:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise EventDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise EventDecodeError("not a JSON object")
    return event_from_dict(data)


__all__ = [
    "LEG_OUTCOMES",
    "OUTCOMES",
    "AgentCallCompleted",
    "AgentRingNoAnswer",
    "AgentRinging",
    "AgentStateChanged",
    "AmiLinkChanged",
    "BroadcastMessage",
    "CallAbandoned",
    "CallAnswered",
    "CallEnded",
    "CallHeld",
    "CallRecord",
    "CallStarted",
    "CallTransferred",
    "CaseChanged",
    "Event",
    "EventDecodeError",
    "IvrChoice",
    "Pbx",
    "PbxError",
    "QueueJoined",
    "QueueLeft",
    "QueueLeg",
    "QueueMembersSynced",
    "QueuesChanged",
    "SessionEnded",
    "WrapUpEnded",
    "event_from_dict",
    "event_from_json",
]
