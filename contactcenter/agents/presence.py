"""Operator presence per interface, from what Asterisk reports (pure: no I/O, no clock).

Asterisk knows a queue member per (queue, interface): its device state and whether it is
paused (with a reason). An operator is one interface in several queues; the console shows one
state for them, derived from all their memberships. After-call work (wrap-up) is ours: Asterisk's
`wrapuptime` is 0 in our queues, so wrap-up starts at `AgentCallCompleted` and lasts until the
operator says ready or the queue's `wrapup_seconds` pass. Time only enters with events and with
`tick(now)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..events import (
    AgentCallCompleted,
    AgentStateChanged,
    Event,
    QueueMembersSynced,
)

LOGGED_OUT = "logged_out"
AVAILABLE = "available"
RINGING = "ringing"
ON_CALL = "on_call"
WRAPUP = "wrapup"
PAUSED = "paused"
UNAVAILABLE = "unavailable"  # logged in, but the phone is not registered / reachable
STATES = (LOGGED_OUT, AVAILABLE, RINGING, ON_CALL, WRAPUP, PAUSED, UNAVAILABLE)

# The pause reason the console itself sets in Asterisk while an operator is in wrap-up, so that
# Asterisk does not ring them during after-call work.
WRAPUP_REASON = "wrap-up"
DEFAULT_WRAPUP_SECONDS = 30
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # "long ago", where no clock is given

_TALKING = frozenset({"in_use", "busy", "on_hold", "ring_in_use"})
_RINGING = frozenset({"ringing"})
_DOWN = frozenset({"unavailable", "invalid"})


@dataclass(frozen=True, slots=True)
class Member:
    """One queue membership as Asterisk last reported it."""

    queue: str
    device_state: str
    paused: bool
    pause_reason: str | None
    in_call: bool
    member_name: str | None = None


@dataclass(frozen=True, slots=True)
class PresenceView:
    """What an operator's console shows."""

    interface: str
    state: str
    reason: str | None  # the pause reason when paused
    since: datetime | None  # when `state` began (as far as we saw it)
    wrapup_until: datetime | None
    wrapup_call: str | None  # call_id of the call being wrapped up
    queues: tuple[Member, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "state": self.state,
            "reason": self.reason,
            "since": self.since.isoformat() if self.since else None,
            "wrapup_until": self.wrapup_until.isoformat() if self.wrapup_until else None,
            "wrapup_call": self.wrapup_call,
            "queues": [
                {"queue": m.queue, "device_state": m.device_state, "paused": m.paused,
                 "reason": m.pause_reason}
                for m in self.queues
            ],
        }


@dataclass(slots=True)
class _Operator:
    members: dict[str, Member] = field(default_factory=dict)
    wrapup_until: datetime | None = None
    wrapup_call: str | None = None
    wrapup_started: datetime | None = None
    state: str = LOGGED_OUT
    reason: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class WrapupEnded:
    """A wrap-up that ended (by ready or by time): the figures for the call record."""

    interface: str
    call_id: str | None
    started: datetime
    ended: datetime
    expired: bool

    @property
    def seconds(self) -> float:
        return max(0.0, (self.ended - self.started).total_seconds())


@dataclass(frozen=True, slots=True)
class Transition:
    """An operator's state changed at `at` (kept as history: presence_intervals)."""

    interface: str
    state: str
    reason: str | None
    at: datetime


class Presence:
    """Feed it domain events; read `view(interface)`. Each mutator returns the interfaces whose
    view changed, so the caller pushes only those."""

    def __init__(self, wrapup_seconds: dict[str, int] | None = None,
                 default_wrapup: int = DEFAULT_WRAPUP_SECONDS) -> None:
        self.wrapup_seconds: dict[str, int] = dict(wrapup_seconds or {})
        self.default_wrapup = default_wrapup
        self._ops: dict[str, _Operator] = {}
        self.ended: list[WrapupEnded] = []  # wrap-ups that ended; the owner drains it
        self.transitions: list[Transition] = []  # state changes; the owner drains them

    # --- reading ------------------------------------------------------------------------------

    def view(self, interface: str) -> PresenceView:
        op = self._ops.get(interface)
        if op is None:
            return PresenceView(interface, LOGGED_OUT, None, None, None, None, ())
        return PresenceView(
            interface, op.state, op.reason, op.since, op.wrapup_until, op.wrapup_call,
            tuple(sorted(op.members.values(), key=lambda m: m.queue)),
        )

    def interfaces(self) -> list[str]:
        return list(self._ops)

    def in_wrapup(self, interface: str) -> bool:
        op = self._ops.get(interface)
        return op is not None and op.wrapup_until is not None

    # --- feeding ------------------------------------------------------------------------------

    def apply(self, event: Event) -> set[str]:
        if isinstance(event, AgentStateChanged):
            return self._member(event)
        if isinstance(event, QueueMembersSynced):
            return self._synced(event)
        if isinstance(event, AgentCallCompleted):
            return self._completed(event)
        return set()

    def ready(self, interface: str, now: datetime) -> set[str]:
        """The operator said ready: wrap-up (if any) ends now."""
        op = self._ops.get(interface)
        if op is None or op.wrapup_until is None:
            return set()
        self._end_wrapup(interface, op, now, expired=False)
        return self._recompute(interface, op, now)

    def cancel_wrapup(self, interface: str, now: datetime) -> set[str]:
        """Wrap-up ends because the operator chose something else (a pause, logging out)."""
        return self.ready(interface, now)

    def tick(self, now: datetime) -> set[str]:
        """Expire wrap-ups whose time has passed."""
        changed: set[str] = set()
        for interface, op in self._ops.items():
            if op.wrapup_until is not None and now >= op.wrapup_until:
                self._end_wrapup(interface, op, op.wrapup_until, expired=True)
                changed |= self._recompute(interface, op, now)
        return changed

    def take_transitions(self) -> list[Transition]:
        out, self.transitions = self.transitions, []
        return out

    def take_ended(self) -> list[WrapupEnded]:
        out, self.ended = self.ended, []
        return out

    # --- internals ----------------------------------------------------------------------------

    def _member(self, ev: AgentStateChanged) -> set[str]:
        op = self._ops.setdefault(ev.interface, _Operator())
        self._learn_wrapup(ev)
        if ev.device_state == LOGGED_OUT:
            op.members.pop(ev.queue, None)
        else:
            op.members[ev.queue] = Member(
                ev.queue, ev.device_state, ev.paused, ev.pause_reason, ev.in_call, ev.member_name
            )
        if not op.members and op.wrapup_until is not None:
            self._end_wrapup(ev.interface, op, ev.at, expired=False)
        return self._recompute(ev.interface, op, ev.at)

    def _synced(self, ev: QueueMembersSynced) -> set[str]:
        """A full member list (after a (re)connect): memberships not in it are gone."""
        seen: dict[str, dict[str, AgentStateChanged]] = {}
        for m in ev.members:
            if m.device_state != LOGGED_OUT:
                seen.setdefault(m.interface, {})[m.queue] = m
        changed: set[str] = set()
        for interface in set(self._ops) | set(seen):
            op = self._ops.setdefault(interface, _Operator())
            op.members = {
                q: Member(q, m.device_state, m.paused, m.pause_reason, m.in_call, m.member_name)
                for q, m in seen.get(interface, {}).items()
            }
            for m in seen.get(interface, {}).values():
                self._learn_wrapup(m)
            if not op.members and op.wrapup_until is not None:
                self._end_wrapup(interface, op, ev.at, expired=False)
            changed |= self._recompute(interface, op, ev.at)
        return changed

    def _learn_wrapup(self, ev: AgentStateChanged) -> None:
        """Asterisk's own `wrapuptime` only for a queue we have no setting for (ours is 0 in
        Asterisk on purpose: the console runs wrap-up)."""
        if ev.wrapup_seconds and ev.queue not in self.wrapup_seconds:
            self.wrapup_seconds[ev.queue] = ev.wrapup_seconds

    def _completed(self, ev: AgentCallCompleted) -> set[str]:
        op = self._ops.setdefault(ev.interface, _Operator())
        if op.wrapup_until is not None:  # a second call completed before the first's wrap-up
            self._end_wrapup(ev.interface, op, ev.at, expired=False)
        seconds = self.wrapup_seconds.get(ev.queue, self.default_wrapup)
        if seconds <= 0:
            return self._recompute(ev.interface, op, ev.at)
        op.wrapup_started = ev.at
        op.wrapup_until = ev.at + timedelta(seconds=seconds)
        op.wrapup_call = f"{ev.server}:{ev.linkedid}"
        return self._recompute(ev.interface, op, ev.at)

    def _end_wrapup(self, interface: str, op: _Operator, at: datetime, *, expired: bool) -> None:
        if op.wrapup_started is not None:
            self.ended.append(
                WrapupEnded(interface, op.wrapup_call, op.wrapup_started, at, expired)
            )
        op.wrapup_until = op.wrapup_call = op.wrapup_started = None

    def _recompute(self, interface: str, op: _Operator, at: datetime) -> set[str]:
        state, reason = derive(op.members.values(), wrapup=op.wrapup_until is not None)
        if (state, reason) == (op.state, op.reason) and op.since is not None:
            # same state; the member list may still have changed (a queue added)
            return {interface}
        if not (op.since is None and state == LOGGED_OUT):  # never seen logged in: no history
            self.transitions.append(Transition(interface, state, reason, at))
        op.state, op.reason, op.since = state, reason, at
        return {interface}


def derive(members: Any, *, wrapup: bool) -> tuple[str, str | None]:
    """One state for an operator from their memberships (what Asterisk reports) and wrap-up."""
    ms = list(members)
    if not ms:
        return LOGGED_OUT, None
    if any(m.in_call or m.device_state in _TALKING for m in ms):
        return ON_CALL, None
    if any(m.device_state in _RINGING for m in ms):
        return RINGING, None
    paused = [m for m in ms if m.paused]
    own_wrapup_pause = all(m.pause_reason == WRAPUP_REASON for m in paused)
    if wrapup and own_wrapup_pause:
        return WRAPUP, None
    if paused and len(paused) == len(ms):
        return PAUSED, paused[0].pause_reason or None
    if all(m.device_state in _DOWN for m in ms):
        return UNAVAILABLE, None
    if wrapup:
        return WRAPUP, None
    return AVAILABLE, None

