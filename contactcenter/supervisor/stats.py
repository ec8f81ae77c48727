"""Queue statistics: a pure state machine fed domain events (no I/O, no clock of its own).

Two kinds of figures, kept apart on purpose:

* **Now** (live state, from the events as they happen): callers waiting in each queue and the
  longest of their waits, and each operator's state. These are not in the store; after a restart
  they come back from a resync (`QueueMembersSynced`, and the call tracker's adopted calls).
* **Periods** (today, and the rolling last hour): counted *only* from finished call records
  (`CallEnded`, or rows of the `calls` table at start-up), so the wallboard always agrees with
  the calls table and a restart rebuilds exactly the same figures. A call belongs to a period by
  its ``started_at``: "today" is the calendar day of the center's time zone (the `CC_TIMEZONE`
  setting, UTC by default) in which the call started; "the last hour" holds the calls that
  started within 60 minutes before now and have ended.

Each queue counts its own **legs** (issue 19): a call that timed out of sanitation and was
answered in general-311 is offered once to each, timed out in one and answered in the other; a
call transferred from general-311 to sanitation is answered in both. A call visiting one queue
twice counts twice there. A leg belongs to the period of its call's ``started_at``.

Definitions (DESIGN.md), each with its denominator, per queue over its legs:

=================  =========================================================================
offered            legs in the queue, every outcome.
answered           legs ``answered``, and legs ``transferred`` after an operator answered
                   (the leg names an agent).
abandoned          legs ``abandoned``: the caller hung up after waiting at least the
                   queue's short-abandon threshold (the call tracker applies it).
short_abandoned    legs ``short_abandoned``: hung up before that threshold.
timed_out          legs ``timed_out``: Queue() gave up on the caller (the queue's timeout;
                   Asterisk 22 sends QueueCallerAbandon for it too, QUEUESTATUS tells them
                   apart). Never in the abandon rate: the center's limit, not the caller's.
other              any other leg (``left_empty``: no usable member; transferred unanswered).
service level      answered within T seconds (wait <= T, T = the queue's
                   ``service_level_seconds``) / (answered + abandoned). Short abandons and
                   time-outs are in neither part; an answered call without a known wait counts
                   in the denominator only. None when the denominator is 0.
ASA                sum of wait_seconds of answered calls / answered calls with a known wait.
AHT                sum of handle seconds / answered calls with a known talk time, where handle
                   = talk_seconds + wrap_seconds (wrap when recorded; a call's wrap-up belongs
                   to its last answered leg). Asterisk's TalkTime runs
                   from connect to complete, so it already includes time on hold: adding
                   hold_seconds again would count it twice.
abandon rate       abandoned / (answered + abandoned); short abandons excluded.
longest wait       now: the longest current wait of a caller still in the queue; in a period:
                   the largest wait_seconds of its finished calls that queued.
=================  =========================================================================

Operator states per queue (one each, in this order of precedence): ``logged_out`` (not a member,
or the device is unreachable), ``on_call``, ``ringing``, ``wrap_up`` (after-call work: from the
end of a call until the queue's wrap-up time passes or the operator pauses/unpauses; or paused
with a wrap-up reason), ``paused`` (with its reason), ``available``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from contactcenter.events import (
    AgentCallCompleted,
    AgentRinging,
    AgentRingNoAnswer,
    AgentStateChanged,
    AmiLinkChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallRecord,
    Event,
    QueueJoined,
    QueueLeft,
    QueueMembersSynced,
    WrapUpEnded,
)
from contactcenter.text import clean_text

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
AGENT_STATES = ("available", "ringing", "on_call", "wrap_up", "paused", "logged_out")
KINDS = ("answered", "abandoned", "short_abandoned", "timed_out", "other")
# A pause with one of these reasons is after-call work, shown as wrap-up (lower case).
WRAP_REASONS = frozenset({"wrap-up", "wrapup", "wrap_up", "acw", "after-call work"})
_BUSY_DEVICE = frozenset({"in_use", "busy", "on_hold", "ring_in_use"})
_GONE_DEVICE = frozenset({"logged_out", "unavailable", "invalid"})


def classify(outcome: str, agent: str | None) -> str:
    """The period bucket of a finished leg (see the module's table)."""
    if outcome == "answered" or (outcome == "transferred" and agent):
        return "answered"
    if outcome in ("abandoned", "short_abandoned", "timed_out"):
        return outcome
    return "other"


# --- per-call facts and their tally -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LegFacts:
    """What the figures need of one queue visit (a `QueueLeg` or a `call_legs` row)."""

    queue: str
    outcome: str
    agent: str | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    wrap_seconds: float | None = None

    def __post_init__(self) -> None:
        # A non-finite or negative duration (a row written by another path) would make every
        # sum NaN for the rest of the day: such a figure counts as unknown instead.
        for name in ("wait_seconds", "talk_seconds", "wrap_seconds"):
            if not _usable(getattr(self, name)):
                object.__setattr__(self, name, None)

    @property
    def kind(self) -> str:
        return classify(self.outcome, self.agent)

    @property
    def handle_seconds(self) -> float | None:
        if self.talk_seconds is None:
            return None
        return self.talk_seconds + (self.wrap_seconds or 0.0)


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the figures need of one finished call; built from a CallRecord or a calls row with
    its call_legs rows. Without `legs`, a call that names a queue has the one leg its own
    fields describe (rows written before legs, or by another path). `wrap_seconds`, the
    call's wrap-up, goes to its last answered leg."""

    call_id: str
    started_at: datetime
    outcome: str
    queue: str | None = None
    service: str | None = None
    agent: str | None = None
    wait_seconds: float | None = None
    talk_seconds: float | None = None
    wrap_seconds: float | None = None
    legs: tuple[LegFacts, ...] = ()

    def __post_init__(self) -> None:
        for name in ("wait_seconds", "talk_seconds", "wrap_seconds"):
            if not _usable(getattr(self, name)):
                object.__setattr__(self, name, None)
        legs = self.legs
        if not legs and self.queue:
            legs = (LegFacts(self.queue, self.outcome, self.agent, self.wait_seconds,
                             self.talk_seconds),)
        i = _last_answered(legs)
        if self.wrap_seconds is not None and i is not None and legs[i].wrap_seconds is None:
            legs = (*legs[:i], replace(legs[i], wrap_seconds=self.wrap_seconds), *legs[i + 1:])
        object.__setattr__(self, "legs", tuple(leg for leg in legs if leg.queue))

    @property
    def kind(self) -> str:
        return classify(self.outcome, self.agent)

    @property
    def wrap_leg(self) -> int | None:
        """The index of the leg the call's wrap-up belongs to: its last answered one."""
        return _last_answered(self.legs)

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues the call visited, each once, in order."""
        return tuple(dict.fromkeys(leg.queue for leg in self.legs))

    @classmethod
    def from_record(cls, rec: CallRecord) -> CallFacts:
        return cls(
            call_id=rec.call_id, started_at=rec.started_at, outcome=rec.outcome,
            queue=rec.queue, service=rec.service, agent=rec.agent,
            wait_seconds=rec.wait_seconds, talk_seconds=rec.talk_seconds,
            legs=tuple(
                LegFacts(leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.talk_seconds)
                for leg in rec.queue_legs if leg.queue
            ),
        )


def _with_wrap(f: CallFacts, wrap: float | None) -> CallFacts:
    """`f` with the call's wrap-up `wrap` (on its last answered leg); unchanged when `wrap` is
    not a usable figure."""
    if not _usable(wrap) or wrap is None:
        return f
    i = f.wrap_leg
    legs = f.legs if i is None else (
        *f.legs[:i], replace(f.legs[i], wrap_seconds=wrap), *f.legs[i + 1:])
    return replace(f, wrap_seconds=wrap, legs=legs)


def _last_answered(legs: tuple[LegFacts, ...]) -> int | None:
    for i in range(len(legs) - 1, -1, -1):
        if legs[i].kind == "answered":
            return i
    return None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _usable(value: float | None) -> bool:
    return value is None or (math.isfinite(value) and value >= 0)


def _finite(value: Any) -> Any:
    """`value` with every non-finite float (at any depth) replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def to_json(value: Any, **options: Any) -> str:
    """JSON that is always valid (``allow_nan=False``: Python would write ``NaN``, which
    browsers' JSON.parse refuses). Should a non-finite number still reach here, it is sent as
    ``null`` and logged, rather than blanking the wallboard."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError:
        log.error("statistics: a non-finite number in the output; sent as null")
        return json.dumps(_finite(value), allow_nan=False, **options)


@dataclass(slots=True)
class Tally:
    """Running sums for one set of calls; every ratio says its denominator."""

    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0  # answered with wait <= T
    abandoned: int = 0
    short_abandoned: int = 0
    timed_out: int = 0
    other: int = 0
    wait_sum: float = 0.0  # over answered calls with a known wait
    wait_n: int = 0
    handle_sum: float = 0.0  # over answered calls with a known talk time
    handle_n: int = 0
    longest_wait: float = 0.0  # over calls that queued

    def add(self, f: LegFacts, sl_seconds: float) -> None:
        kind = f.kind
        self.offered += 1
        if kind == "answered":
            self.answered += 1
            if f.wait_seconds is not None:
                self.wait_sum += f.wait_seconds
                self.wait_n += 1
                if f.wait_seconds <= sl_seconds:
                    self.answered_in_sl += 1
            handle = f.handle_seconds
            if handle is not None:
                self.handle_sum += handle
                self.handle_n += 1
        elif kind == "abandoned":
            self.abandoned += 1
        elif kind == "short_abandoned":
            self.short_abandoned += 1
        elif kind == "timed_out":
            self.timed_out += 1
        else:
            self.other += 1
        if f.wait_seconds is not None and kind != "other":
            self.longest_wait = max(self.longest_wait, f.wait_seconds)

    @property
    def service_level(self) -> float | None:
        """answered within T / (answered + abandoned)."""
        den = self.answered + self.abandoned
        return self.answered_in_sl / den if den else None

    @property
    def asa(self) -> float | None:
        """wait of answered calls / answered calls with a known wait."""
        return self.wait_sum / self.wait_n if self.wait_n else None

    @property
    def aht(self) -> float | None:
        """handle seconds / answered calls with a known talk time."""
        return self.handle_sum / self.handle_n if self.handle_n else None

    @property
    def abandon_rate(self) -> float | None:
        """abandoned / (answered + abandoned)."""
        den = self.answered + self.abandoned
        return self.abandoned / den if den else None

    def figures(self) -> dict[str, Any]:
        return {
            "offered": self.offered,
            "answered": self.answered,
            "answered_in_sl": self.answered_in_sl,
            "abandoned": self.abandoned,
            "short_abandoned": self.short_abandoned,
            "timed_out": self.timed_out,
            "other": self.other,
            "service_level": _round(self.service_level, 4),
            "asa_seconds": _round(self.asa, 1),
            "aht_seconds": _round(self.aht, 1),
            "abandon_rate": _round(self.abandon_rate, 4),
            "longest_wait_seconds": round(self.longest_wait, 1),
        }


def tally(calls: Iterable[CallFacts], sl_seconds: float, queue: str | None = None) -> Tally:
    """The legs of `calls` in `queue` (every queue's when None)."""
    out = Tally()
    for f in calls:
        for leg in f.legs:
            if queue is None or leg.queue == queue:
                out.add(leg, sl_seconds)
    return out


# --- configuration ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """A queue's thresholds (the `queues` table); unknown queues get the settings' defaults."""

    name: str
    display_name: str = ""
    group: str = "main"
    service_level_seconds: float = 15
    service_level_target: float = 0.8
    short_abandon_seconds: float = 5
    max_wait_target_seconds: float = 60
    wrapup_seconds: float = 30

    @property
    def title(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True, slots=True)
class Operator:
    """A person who may log in to queues (users with an interface), for names and logged-out."""

    interface: str
    name: str
    queues: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # spoken: language routing (queues/languages.py)


# --- live state ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Waiting:
    joined_at: datetime
    position: int
    caller: str


@dataclass(slots=True)
class _Member:
    server: str
    name: str
    device_state: str
    paused: bool
    reason: str
    in_call: bool
    changed_at: datetime
    paused_since: datetime | None
    wrapup_seconds: float | None


@dataclass(slots=True)
class _Activity:
    """What one interface is doing across all its queues (an operator rings or talks once)."""

    ringing: dict[str, datetime] = field(default_factory=dict)  # call_id -> since
    on_call: dict[str, datetime] = field(default_factory=dict)  # call_id -> answered at
    wrap_queue: str | None = None
    wrap_from: datetime | None = None
    wrap_until: datetime | None = None
    changed_at: datetime | None = None


class QueueStats:
    """Feed it events (`apply`) and finished calls (`add_call`); read `snapshot(now)`."""

    def __init__(
        self,
        queues: Iterable[QueueConfig] = (),
        *,
        tz: tzinfo,
        default: QueueConfig | None = None,
        operators: Iterable[Operator] = (),
    ) -> None:
        self.tz = tz
        self.default = default or QueueConfig(name="")
        self.queues: dict[str, QueueConfig] = {}
        self.operators: dict[str, Operator] = {}
        self.latest: datetime | None = None  # the newest time any input carried
        self.day: date | None = None
        self._today: dict[str, Tally] = {}
        self._today_facts: dict[str, list[CallFacts]] = {}
        self._recent: list[CallFacts] = []  # started within the last hour (pruned lazily)
        # today's call id -> the queues it visited (the facts lists it is in)
        self._fact_queue: dict[str, tuple[str, ...]] = {}
        self._seen: set[str] = set()  # call ids counted today or in the recent hour
        self._waiting: dict[str, dict[str, _Waiting]] = {}
        self._members: dict[tuple[str, str], _Member] = {}
        self._activity: dict[str, _Activity] = {}
        self.links: dict[str, bool] = {}  # AMI server -> connected
        self.calls_counted = 0
        self.duplicates = 0
        self.set_queues(queues)
        self.set_operators(operators)

    # --- configuration -----------------------------------------------------------------------

    def config(self, queue: str) -> QueueConfig:
        found = self.queues.get(queue)
        return found if found is not None else replace(self.default, name=queue)

    def set_queues(self, queues: Iterable[QueueConfig]) -> None:
        """New thresholds (admin edits): today's figures are recounted with them."""
        before = {n: self.config(n).service_level_seconds for n in self._today_facts}
        self.queues = {q.name: q for q in queues}
        for name, seconds in before.items():
            now_seconds = self.config(name).service_level_seconds
            if now_seconds != seconds:
                self._today[name] = tally(self._today_facts[name], now_seconds, name)

    def set_operators(self, operators: Iterable[Operator]) -> None:
        self.operators = {o.interface: o for o in operators}

    # --- time ---------------------------------------------------------------------------------

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def day_start(self, day: date) -> datetime:
        """Local midnight of `day` as an aware datetime (DST-safe)."""
        return datetime(day.year, day.month, day.day, tzinfo=self.tz)

    def advance(self, at: datetime) -> None:
        """Move the statistics' clock forward (never back); a new local day resets "today"."""
        if self.latest is not None and at <= self.latest:
            return
        self.latest = at
        day = self.local_day(at)
        if self.day is None:
            self.day = day
        elif day != self.day:
            self.day = day
            self._today.clear()
            self._today_facts.clear()
            self._fact_queue.clear()
            self._prune(at)
            self._seen = {f.call_id for f in self._recent}

    def _prune(self, now: datetime) -> None:
        cutoff = now - HOUR
        if self._recent and min(f.started_at for f in self._recent) <= cutoff:
            self._recent = [f for f in self._recent if f.started_at > cutoff]

    # --- finished calls -----------------------------------------------------------------------

    def add_call(self, f: CallFacts, *, ended_at: datetime | None = None) -> bool:
        """Count one finished call (once: a repeated call id is ignored). True if counted."""
        if ended_at is not None:
            self.advance(ended_at)
        self.advance(f.started_at)
        if f.call_id in self._seen:
            self.duplicates += 1
            return False
        counted = False
        assert self.latest is not None
        if self.local_day(f.started_at) == self.day:
            for leg in f.legs:
                self._today.setdefault(leg.queue, Tally()).add(
                    leg, self.config(leg.queue).service_level_seconds
                )
            for queue in f.queues:
                self._today_facts.setdefault(queue, []).append(f)
            if f.legs:
                self._fact_queue[f.call_id] = f.queues
            counted = True
        if f.started_at > self.latest - HOUR:
            self._recent.append(f)
            counted = True
        if counted:
            self._seen.add(f.call_id)
            self.calls_counted += 1
        return counted

    def _on_wrapup(self, e: WrapUpEnded) -> None:
        """Wrap-up completes an answered call's handle time (talk + wrap), live as after a
        rebuild from the calls table, where the call's last wrap-up stays (a transferred
        call's second operator finishes last). Repeats (one per web process) change nothing."""
        call_id = f"{e.server}:{e.linkedid}"
        # Only the call's own queues' lists (not every queue's: that was a scan of the whole
        # day per wrap-up); from the end, where a call that just ended is.
        queues = self._fact_queue.get(call_id, ())
        lists = [self._today_facts[q] for q in queues if q in self._today_facts]
        old: CallFacts | None = None
        done: CallFacts | None = None
        for facts in [*lists, self._recent]:
            for i in range(len(facts) - 1, -1, -1):
                f = facts[i]
                if f.call_id != call_id:
                    continue
                if done is None:
                    old, done = f, _with_wrap(f, e.wrap_seconds)
                    if done.wrap_seconds == f.wrap_seconds:
                        return  # a repeat, or refused (not finite)
                facts[i] = done
                break
        j = done.wrap_leg if done is not None and lists else None
        if old is not None and done is not None and j is not None:
            leg = done.legs[j]
            if leg.talk_seconds is not None and leg.queue in self._today:
                before = old.legs[j].wrap_seconds or 0.0
                self._today[leg.queue].handle_sum += (leg.wrap_seconds or 0.0) - before

    # --- events -------------------------------------------------------------------------------

    def apply(self, event: Event) -> bool:
        """Update from one domain event; True when something on the wallboard may change."""
        handler = _HANDLERS.get(type(event))
        if handler is None:
            return False
        handler(self, event)
        return True

    def _act(self, interface: str) -> _Activity:
        act = self._activity.get(interface)
        if act is None:
            act = self._activity[interface] = _Activity()
        return act

    def _unwait(self, queue: str | None, call_id: str) -> None:
        if queue is not None:
            self._waiting.get(queue, {}).pop(call_id, None)
        else:
            for waiting in self._waiting.values():
                waiting.pop(call_id, None)

    def _unring(self, call_id: str, at: datetime, interface: str | None = None) -> None:
        for iface, act in self._activity.items():
            if (interface is None or iface == interface) and (
                    act.ringing.pop(call_id, None) is not None):
                act.changed_at = at

    def _on_joined(self, e: QueueJoined) -> None:
        self.advance(e.at)
        caller = clean_text(e.caller_name) or clean_text(e.caller_number) or "unknown"
        if e.caller_name and e.caller_number:
            caller = clean_text(f"{e.caller_name} <{e.caller_number}>")
        self._waiting.setdefault(e.queue, {})[f"{e.server}:{e.linkedid}"] = _Waiting(
            e.at, e.position, caller
        )

    def _on_left(self, e: QueueLeft | CallAbandoned) -> None:
        self.advance(e.at)
        call_id = f"{e.server}:{e.linkedid}"
        self._unwait(e.queue, call_id)
        self._unring(call_id, e.at)

    def _implied_member(self, queue: str, interface: str, name: str | None, at: datetime,
                        server: str) -> None:
        """Asterisk rang or connected them in `queue`: they are a member (we missed the add)."""
        if (queue, interface) not in self._members and queue and interface:
            self._members[(queue, interface)] = _Member(
                server=server, name=name or "", device_state="unknown", paused=False, reason="",
                in_call=False, changed_at=at, paused_since=None, wrapup_seconds=None,
            )

    def _on_ringing(self, e: AgentRinging) -> None:
        self.advance(e.at)
        self._implied_member(e.queue, e.interface, e.member_name, e.at, e.server)
        act = self._act(e.interface)
        act.ringing[f"{e.server}:{e.linkedid}"] = e.at
        act.changed_at = e.at

    def _on_ringnoanswer(self, e: AgentRingNoAnswer) -> None:
        self.advance(e.at)
        self._unring(f"{e.server}:{e.linkedid}", e.at, e.interface)

    def _on_answered(self, e: CallAnswered) -> None:
        self.advance(e.at)
        self._implied_member(e.queue, e.interface, e.member_name, e.at, e.server)
        call_id = f"{e.server}:{e.linkedid}"
        self._unwait(e.queue, call_id)
        self._unring(call_id, e.at)  # ringall: the others stop ringing too
        act = self._act(e.interface)
        act.on_call[call_id] = e.at
        act.wrap_queue = act.wrap_from = act.wrap_until = None
        act.changed_at = e.at

    def _on_completed(self, e: AgentCallCompleted) -> None:
        self.advance(e.at)
        act = self._act(e.interface)
        act.on_call.pop(f"{e.server}:{e.linkedid}", None)
        member = self._members.get((e.queue, e.interface))
        # A member's own Wrapuptime of 0 means "the queue's" in Asterisk.
        wrap = (
            member.wrapup_seconds
            if member is not None and member.wrapup_seconds
            else self.config(e.queue).wrapup_seconds
        )
        act.wrap_queue = e.queue
        act.wrap_from = e.at
        act.wrap_until = e.at + timedelta(seconds=wrap)
        act.changed_at = e.at

    def _on_ended(self, e: CallEnded) -> None:
        rec = e.record
        call_id = rec.call_id
        self._unwait(None, call_id)
        for act in self._activity.values():
            if act.ringing.pop(call_id, None) or act.on_call.pop(call_id, None):
                act.changed_at = rec.ended_at
        self.add_call(CallFacts.from_record(rec), ended_at=rec.ended_at)

    def _on_state(self, e: AgentStateChanged) -> None:
        self.advance(e.at)
        key = (e.queue, e.interface)
        old = self._members.get(key)
        reason = e.pause_reason or "" if e.paused else ""
        if old is not None and (
            old.device_state, old.paused, old.reason, old.in_call
        ) == (e.device_state, e.paused, reason, e.in_call):
            old.name = e.member_name or old.name
            return
        paused_since = e.at if e.paused else None
        if old is not None and old.paused and e.paused and old.paused_since is not None:
            paused_since = old.paused_since if old.reason == reason else e.at
        if old is not None and old.paused != e.paused:
            act = self._activity.get(e.interface)
            if act is not None and act.wrap_from is not None and act.wrap_from <= e.at:
                # the operator acted after the call (ready, or a pause): wrap-up is over
                act.wrap_queue = act.wrap_from = act.wrap_until = None
        self._members[key] = _Member(
            server=e.server,
            name=e.member_name or (old.name if old else ""),
            device_state=e.device_state,
            paused=e.paused,
            reason=reason,
            in_call=e.in_call,
            changed_at=e.at,
            paused_since=paused_since,
            wrapup_seconds=e.wrapup_seconds,
        )

    def _on_synced(self, e: QueueMembersSynced) -> None:
        """The full member list of one server: members it no longer lists are logged out."""
        self.advance(e.at)
        listed = {(m.queue, m.interface) for m in e.members}
        for key, member in list(self._members.items()):
            if member.server == e.server and key not in listed \
                    and member.device_state != "logged_out":
                member.device_state = "logged_out"
                member.paused = False
                member.reason = ""
                member.in_call = False
                member.changed_at = e.at
        for m in e.members:
            self._on_state(m)
        # From here the device states Asterisk just listed are the truth.
        for act in self._activity.values():
            act.ringing.clear()
            act.on_call.clear()
            act.changed_at = None

    def _on_link(self, e: AmiLinkChanged) -> None:
        self.links[e.server] = e.connected

    # --- reading ------------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """True while any AMI link is known to be down: live state may be out of date."""
        return any(not up for up in self.links.values())

    def today(self, queue: str) -> Tally:
        return self._today.get(queue) or Tally()

    def hour(self, queue: str, now: datetime) -> Tally:
        cutoff = now - HOUR
        sl = self.config(queue).service_level_seconds
        return tally((f for f in self._recent if cutoff < f.started_at <= now), sl, queue)

    def known_queues(self) -> list[str]:
        names = set(self.queues) | set(self._today) | set(self._waiting)
        names |= {q for q, _ in self._members}
        names |= {q for o in self.operators.values() for q in o.queues}
        return sorted(n for n in names if n)

    def member_queues(self, interface: str) -> list[str]:
        """The queues `interface` is logged in to now."""
        return sorted(
            q for (q, i), m in self._members.items()
            if i == interface and m.device_state != "logged_out"
        )

    def _operator_state(
        self, queue: str, interface: str, now: datetime
    ) -> tuple[str, datetime | None, str]:
        """(state, since, pause reason) of one operator in one queue."""
        member = self._members.get((queue, interface))
        if member is None:
            return "logged_out", None, ""
        if member.device_state in _GONE_DEVICE:
            return "logged_out", member.changed_at, ""
        act = self._activity.get(interface) or _Activity()
        if act.on_call:
            return "on_call", min(act.on_call.values()), ""
        # The device's own word counts unless a call event we track came after it (the device
        # report after AgentComplete arrives a moment later than the completion).
        device_fresh = act.changed_at is None or member.changed_at > act.changed_at
        if device_fresh and (member.device_state in _BUSY_DEVICE or member.in_call):
            return "on_call", member.changed_at, ""
        if act.ringing:
            return "ringing", min(act.ringing.values()), ""
        if device_fresh and member.device_state == "ringing":
            return "ringing", member.changed_at, ""
        if member.paused:
            if member.reason.lower() in WRAP_REASONS:
                return "wrap_up", member.paused_since, member.reason
            return "paused", member.paused_since, member.reason
        if act.wrap_until is not None and act.wrap_from is not None and now < act.wrap_until:
            return "wrap_up", act.wrap_from, ""
        since = max(
            (t for t in (member.changed_at, act.changed_at, act.wrap_until) if t is not None),
            default=None,
        )
        if since is not None and since > now:
            since = member.changed_at
        return "available", since, ""

    def queue_now(self, queue: str, now: datetime) -> dict[str, Any]:
        """Live figures of one queue: callers waiting and operators by state."""
        waiting = sorted(self._waiting.get(queue, {}).values(), key=lambda w: w.joined_at)
        longest = max((now - w.joined_at).total_seconds() for w in waiting) if waiting else 0.0
        interfaces = {i for q, i in self._members if q == queue}
        interfaces |= {o.interface for o in self.operators.values() if queue in o.queues}
        counts = dict.fromkeys(AGENT_STATES, 0)
        reasons: dict[str, int] = {}
        operators = []
        for interface in sorted(interfaces):
            state, since, reason = self._operator_state(queue, interface, now)
            counts[state] += 1
            if state == "paused":
                reasons[reason or "none"] = reasons.get(reason or "none", 0) + 1
            member = self._members.get((queue, interface))
            known = self.operators.get(interface)
            name = known.name if known else (member.name if member else "")
            operators.append({
                "interface": clean_text(interface, 60),
                "name": clean_text(name or interface, 60),
                "languages": [clean_text(x, 8) for x in (known.languages if known else ())],
                "state": state,
                "reason": clean_text(reason, 40),
                "since": since.isoformat() if since else None,
                "seconds_in_state": (
                    max(0, math.floor((now - since).total_seconds())) if since else None
                ),
            })
        return {
            "waiting": len(waiting),
            "longest_wait_seconds": round(max(longest, 0.0), 1),
            "callers": [
                {
                    "caller": w.caller,
                    "position": w.position,
                    "joined_at": w.joined_at.isoformat(),
                    "wait_seconds": max(0, math.floor((now - w.joined_at).total_seconds())),
                }
                for w in waiting[:50]
            ],
            "agents": counts,
            "paused_by_reason": dict(sorted(reasons.items())),
            "operators": operators,
        }

    def snapshot(self, now: datetime, group: str | None = None) -> dict[str, Any]:
        """Everything the wallboard shows, JSON-ready. `now` is the reader's clock."""
        self.advance(now)
        self._prune(now)
        queues = []
        for name in self.known_queues():
            cfg = self.config(name)
            if group is not None and cfg.group != group:
                continue
            queues.append({
                "name": name,
                "display_name": cfg.title,
                "group": cfg.group,
                "targets": {
                    "service_level_seconds": cfg.service_level_seconds,
                    "service_level_target": cfg.service_level_target,
                    "short_abandon_seconds": cfg.short_abandon_seconds,
                    "max_wait_target_seconds": cfg.max_wait_target_seconds,
                },
                "now": self.queue_now(name, now),
                "today": self.today(name).figures(),
                "hour": self.hour(name, now).figures(),
            })
        return {
            "at": now.isoformat(),
            "day": self.day.isoformat() if self.day else None,
            "stale": self.stale,
            "links": dict(sorted(self.links.items())),
            "group": group,
            "queues": queues,
        }

    def groups(self) -> list[str]:
        return sorted({self.config(q).group for q in self.known_queues()})


_HANDLERS: dict[type, Any] = {
    QueueJoined: QueueStats._on_joined,
    QueueLeft: QueueStats._on_left,
    CallAbandoned: QueueStats._on_left,
    AgentRinging: QueueStats._on_ringing,
    AgentRingNoAnswer: QueueStats._on_ringnoanswer,
    CallAnswered: QueueStats._on_answered,
    AgentCallCompleted: QueueStats._on_completed,
    CallEnded: QueueStats._on_ended,
    AgentStateChanged: QueueStats._on_state,
    QueueMembersSynced: QueueStats._on_synced,
    AmiLinkChanged: QueueStats._on_link,
    WrapUpEnded: QueueStats._on_wrapup,
}

EVENT_TYPES: tuple[type[Event], ...] = tuple(_HANDLERS)

__all__ = [
    "AGENT_STATES",
    "EVENT_TYPES",
    "CallFacts",
    "LegFacts",
    "Operator",
    "QueueConfig",
    "QueueStats",
    "Tally",
    "classify",
    "clean_text",
    "tally",
]
