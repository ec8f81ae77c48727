"""CallTracker: AMI events -> call state -> domain events (pure: no I/O, no clock).

One *call* is every channel that shares a ``Linkedid`` (Asterisk sets it to the ``Uniqueid`` of the
oldest channel): the citizen's channel, Local channel halves ``;1``/``;2``, the operators' channels.
A call starts with its first channel and ends when the last of its channels hangs up; then one
`CallEnded` carries its `CallRecord`. Channels are remembered by ``Uniqueid`` -> linkedid so a
channel keeps the call it was born in.

Figures come from Asterisk where it computes them: ``HoldTime``/``RingTime`` (seconds) of
``AgentConnect``, ``TalkTime`` of ``AgentComplete``, ``HoldTime`` of ``QueueCallerAbandon``.
Beware ``AgentRingNoAnswer``'s ``RingTime``: it is in *milliseconds* (4000 for a 4 s timeout).
Everything else is a difference of event ``Timestamp``s.

Every number is read strictly (`numbers`): ``TalkTime: inf`` or ``HoldTime: nan`` is never kept.
A refused field is counted in `bad_fields`, described in `warnings` (one line per event, for the
owner to log and clear), and replaced by the same figure derived from event stamps: wait =
connect (or abandon) - join, ring = connect (or ring-no-answer) - AgentCalled, talk = complete -
connect.

A ``Linkedid`` can come back (Asterisk reuses a Uniqueid given to Originate as ``ChannelId``,
or after a restart within the same second): a fresh first channel (``Uniqueid == Linkedid``)
stamped after a closed call with that id ended starts a new call, whose record and events carry
``<linkedid>#<n>`` (n = 2, 3, …) so the store's (server, linkedid) key keeps both. The first
call keeps the bare id, so records are unchanged whenever nothing is reused.

Nothing here knows channel names: a SIP trunk (``PJSIP/trunk-000001``) and the captures' Local
channels are followed the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contactcenter.events import (
    AgentCallCompleted,
    AgentRinging,
    AgentRingNoAnswer,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHeld,
    CallRecord,
    CallStarted,
    CallTransferred,
    Event,
    QueueJoined,
    QueueLeft,
    QueueLeg,
)
from contactcenter.telephony.frames import AmiEvent
from contactcenter.telephony.numbers import (
    MAX_DURATION,
    BadField,
    check_timestamp,
    count,
    describe,
    duration,
    hms,
)

# How many closed linkedids we remember to ignore late events (a Hangup after a resync closed
# the call, a duplicate Hangup). Bounded so a long-running bridge does not grow.
RECENTLY_CLOSED = 4096

# Round figures in JSON output to milliseconds: Asterisk's timestamps have microseconds, but
# a record read by people (and compared in tests) is stable at 3 decimals.
JSON_DECIMALS = 3

_UNKNOWN = frozenset({"", "<unknown>"})

# QUEUESTATUS values (app_queue.c queue_results) that end a visit without an operator.
_STATUS_OUTCOME = {"TIMEOUT": "timed_out", "LEAVEEMPTY": "left_empty",
                   "LEAVEUNAVAIL": "left_empty"}


def _ts(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def _known(value: str | None) -> str | None:
    return None if value is None or value in _UNKNOWN else value


def _since(at: float, start: float | None) -> float | None:
    """A figure derived from two event stamps (both sane: see `AmiEvent.timestamp`)."""
    return None if start is None else min(max(at - start, 0.0), MAX_DURATION)


def _uid_of(event: AmiEvent) -> str:
    # Old Asterisk spelled it UniqueID in CoreShowChannel.
    return event.get("Uniqueid") or event.get("UniqueID") or ""


class _Leg:
    """Mutable state of one queue visit of an open call (private to the tracker)."""

    __slots__ = (
        "agent",
        "agent_interface",
        "answered_at",
        "connected",
        "ended_at",
        "joined_at",
        "left_at",
        "outcome",
        "queue",
        "ring",
        "talk",
        "target",
        "transfer_seen",
        "transferred_at",
        "wait",
    )

    def __init__(self, queue: str, joined_at: float) -> None:
        self.queue = queue
        self.joined_at = joined_at
        self.left_at: float | None = None  # QueueCallerLeave/Abandon: out of the queue
        self.ended_at: float | None = None  # the leg is over (abandon, complete, transfer)
        # Set when Asterisk says how the visit ended; None: decided when the call closes.
        self.outcome: str | None = None
        self.connected = False
        self.answered_at: float | None = None
        self.agent: str | None = None
        self.agent_interface: str | None = None
        self.wait: float | None = None
        self.ring: float | None = None
        self.talk: float | None = None
        self.target: str | None = None
        self.transfer_seen = False  # a BlindTransfer/AttendedTransfer named this visit's end
        self.transferred_at: float | None = None


class _Call:
    """Mutable state of one open call (private to the tracker)."""

    __slots__ = (
        "abandon_position",
        "abandoned",
        "adopted",
        "aged",
        "agent",
        "agent_interface",
        "announced",
        "answered_at",
        "caller_name",
        "caller_number",
        "case_number",
        "channels",
        "connected",
        "current_queue",
        "ended",
        "first_uid",
        "generation",
        "held",
        "hold_since",
        "hold_total",
        "in_queue",
        "ivr_path",
        "join_known",
        "joined_at",
        "key",
        "language",
        "left_at",
        "legs",
        "linkedid",
        "opened",
        "outbound",
        "partial",
        "queue",
        "ring",
        "rung",
        "self_served",
        "service",
        "started",
        "talk",
        "talking",
        "touched",
        "transferred",
        "wait",
    )

    def __init__(self, linkedid: str, started: float, first_uid: str, partial: bool,
                 generation: int = 1) -> None:
        self.key = linkedid  # Asterisk's Linkedid: how the tracker finds the call
        self.generation = generation  # > 1: the Linkedid was used by an earlier, ended call
        # The id of the record and of every event: unique per server even when reused.
        self.linkedid = linkedid if generation == 1 else f"{linkedid}#{generation}"
        self.started = started
        self.ended = started
        self.first_uid = first_uid
        self.partial = partial
        self.adopted = partial  # first seen mid-call: its start (and IVR time) are unknown
        self.join_known = False  # adopted, yet its queue join time was learnt since
        self.aged = False  # adopted by a resync: `started` is now - the channel's Duration
        self.channels: set[str] = set()
        self.touched = 0  # the tracker's `seq` when an event last reached this call
        self.opened = 0  # the tracker's `seq` when the call was first seen
        self.announced = False
        # a call the product placed (a call-back: CC_CALLBACK on its channel); its record is
        # the callbacks table's, not a citizen's call into the center
        self.outbound = False
        self.caller_number: str | None = None
        self.caller_name: str | None = None
        self.queue: str | None = None  # first queue joined
        self.current_queue: str | None = None
        self.service: str | None = None
        self.language: str | None = None
        self.case_number: str | None = None
        self.ivr_path: tuple[str, ...] = ()
        self.self_served = False
        self.joined_at: float | None = None
        self.left_at: float | None = None
        self.in_queue = False
        self.connected = False
        self.answered_at: float | None = None
        self.agent: str | None = None
        self.agent_interface: str | None = None
        self.wait: float | None = None
        self.ring: float | None = None
        self.talk: float | None = None
        # interface -> stamp of its last AgentCalled / AgentConnect (to derive a refused figure)
        self.rung: dict[str, float] = {}
        self.talking: dict[str, float] = {}
        self.abandoned = False
        self.abandon_position: int | None = None
        self.transferred = False
        self.held: set[str] = set()  # channels on hold now
        self.hold_since: float | None = None
        self.hold_total = 0.0
        self.legs: list[_Leg] = []  # queue visits in order

    def leg_in(self, queue: str | None) -> _Leg | None:
        """The latest visit of `queue` (any queue when None or unknown)."""
        for leg in reversed(self.legs):
            if not queue or leg.queue == queue:
                return leg
        return None


@dataclass(frozen=True, slots=True)
class Adoption:
    """A call adopted by the last `resync` (live before we listened): what the bridge can ask
    Asterisk about it (Getvar on `channel`; `channels` to find its operator)."""

    key: str  # the tracker's key (Asterisk's Linkedid)
    channel: str  # the caller's channel: the one running Queue(), else the first
    channels: tuple[str, ...]  # every live channel of the call


def _interface_base(name: str) -> str:
    """What a channel and its queue member interface share: ``PJSIP/1001-0000000a`` and
    ``PJSIP/1001`` -> ``PJSIP/1001``; ``Local/2001@agents-00000005;1`` and
    ``Local/2001@agents/n`` -> ``Local/2001@agents``."""
    tech, _, rest = name.partition("/")
    if tech.lower() == "local":
        rest = rest.split("/", 1)[0].split(";", 1)[0]
        head, dash, tail = rest.rpartition("-")
        if dash and len(tail) == 8 and all(ch in "0123456789abcdef" for ch in tail):
            rest = head
        return f"{tech}/{rest}"
    head, dash, tail = rest.rpartition("-")
    return f"{tech}/{head if dash else rest}"


class CallTracker:
    """Follows calls across their channels and emits domain events (see module doc)."""

    def __init__(
        self,
        server: str = "default",
        *,
        short_abandon_seconds: Callable[[str], float] = lambda q: 5.0,
        recently_closed: int = RECENTLY_CLOSED,
    ) -> None:
        self.server = server
        self.short_abandon_seconds = short_abandon_seconds
        self._calls: dict[str, _Call] = {}
        self._uid: dict[str, str] = {}  # live channel Uniqueid -> the linkedid it belongs to
        # Recently closed linkedids (insertion-ordered) -> (ended stamp, generation).
        self._closed: dict[str, tuple[float, int]] = {}
        self._max_closed = recently_closed
        # Channels that hung up (bounded): a straggling event must not bring one back to life,
        # or its call would wait forever for a second Hangup.
        self._dead: dict[str, None] = {}
        self.disconnected_at: float | None = None
        self.seq = 0  # call events fed so far; see `resync(since=...)`
        # `seq` when the last link dropped (`on_disconnect`), until the resync that follows.
        self._link_seq: int | None = None
        self.ignored = 0  # events for calls already closed (late or duplicate)
        self.outbound_calls = 0  # call-backs the product placed: not recorded as calls
        self.adoptions: list[Adoption] = []  # calls the last resync adopted (see adopt_*)
        self.bad_fields = 0  # number fields refused (numbers.py), since start
        # One line per event with refused fields; the owner logs them and clears the list.
        self.warnings: list[str] = []
        self._bad: list[BadField] = []  # refused fields of the event being handled
        self._handlers: dict[str, Callable[[AmiEvent, list[Event]], None]] = {
            "Newchannel": self._newchannel,
            "NewCallerid": self._newcallerid,
            "VarSet": self._varset,
            "QueueCallerJoin": self._queue_join,
            "QueueCallerLeave": self._queue_leave,
            "QueueCallerAbandon": self._queue_abandon,
            "AgentCalled": self._agent_called,
            "AgentRingNoAnswer": self._agent_ringnoanswer,
            "AgentConnect": self._agent_connect,
            "AgentComplete": self._agent_complete,
            "Hold": self._hold,
            "Unhold": self._unhold,
            "BlindTransfer": self._blind_transfer,
            "AttendedTransfer": self._attended_transfer,
            "Hangup": self._hangup,
        }

    # --- public API -----------------------------------------------------------------------

    @property
    def events_read(self) -> frozenset[str]:
        """The AMI event names this tracker reads (the bridge asks Asterisk for no others)."""
        return frozenset(self._handlers)

    def feed(self, event: AmiEvent) -> list[Event]:
        """The domain events this AMI event causes (often none)."""
        handler = self._handlers.get(event.name)
        if handler is None:
            return []
        self.seq += 1
        out: list[Event] = []
        check_timestamp(event, self._bad)
        handler(event, out)
        if self._bad:
            self._report(event)
        return out

    def open_calls(self) -> int:
        return len(self._calls)

    @property
    def idle(self) -> bool:
        return not self._calls

    def on_disconnect(self, at: float) -> None:
        """The AMI link dropped: events are being missed until `resync`."""
        self.disconnected_at = at
        self._link_seq = self.seq

    def resync(
        self, channels: Sequence[AmiEvent], at: float, *, since: int | None = None
    ) -> list[Event]:
        """Reconcile with the live channels Asterisk reports after a reconnect (CoreShowChannel).

        Calls whose linkedid has no live channel ended while we were away: closed now as partial
        records (ended_at = `at`). Live channels of calls we do not know are adopted as partial
        calls; channels of known calls are refreshed (hung-up ones forgotten, new ones added).

        Events keep flowing while the CoreShowChannels reply is collected, so a call that got an
        event after `since` is alive on the new link whatever the snapshot says: it is neither
        closed nor stripped of channels. `since` is a `seq` value; by default the one at the
        last `on_disconnect`, for the first resync after it only (a later ``resync([])``
        closes every open call). Pass ``since=tracker.seq`` read just before sending
        CoreShowChannels to be exact, also on the first connect.
        """
        if since is None:
            since = self._link_seq
        self.adoptions = []
        out: list[Event] = []
        live: dict[str, list[AmiEvent]] = {}
        seen: set[str] = set()
        call: _Call | None
        for ch in channels:
            uid = _uid_of(ch)
            if not uid or uid in seen:
                continue  # a channel belongs to one call: the first listing wins
            seen.add(uid)
            lid = self._uid.get(uid) or ch.get("Linkedid") or uid
            live.setdefault(lid, []).append(ch)
        for lid in [lid for lid in self._calls if lid not in live]:
            call = self._calls[lid]
            if since is not None and call.touched > since:
                continue
            call.partial = True
            call.ended = max(call.ended, at)
            self._close(call, out)
        for lid, chans in live.items():
            if lid in self._closed:
                continue
            call = self._calls.get(lid)
            if call is None:
                call = self._adopt(lid, chans, at, out)
            elif since is None or call.opened <= since:
                call.partial = True  # it lived through a gap: some events may be missing
            if since is None or call.touched <= since:
                for uid in call.channels - {_uid_of(c) for c in chans}:
                    call.channels.discard(uid)  # hung up while we were away
                    self._uid.pop(uid, None)
            for ch in chans:
                uid = _uid_of(ch)
                call.channels.add(uid)
                self._uid[uid] = lid
        self.disconnected_at = None
        self._link_seq = None  # this link's snapshot is taken into account now
        return out

    def close_all(self, at: float) -> list[Event]:
        """Close every open call now as partial (e.g. a replayed stream ended mid-call).
        Unlike `resync([], at)`, this spares no call seen on the current link."""
        return self.resync([], at, since=self.seq)

    # --- bookkeeping ----------------------------------------------------------------------

    def _report(self, event: AmiEvent) -> None:
        self.bad_fields += len(self._bad)
        lid = event.get("Linkedid") or _uid_of(event)
        self.warnings.append(describe(event, self._bad) + (f" (Linkedid {lid})" if lid else ""))
        self._bad.clear()

    def _figure(self, event: AmiEvent, field: str, derived: float | None,
                scale: float = 1.0) -> float | None:
        """`field` read strictly; when refused, the figure derived from stamps instead."""
        before = len(self._bad)
        value = duration(event, field, self._bad, scale=scale)
        return derived if len(self._bad) > before else value

    def _lookup(self, event: AmiEvent, out: list[Event]) -> _Call | None:
        """The open call of this event's channel; adopts an unknown call seen mid-way."""
        uid = event.get("Uniqueid")
        lid = (self._uid.get(uid) if uid else None) or event.get("Linkedid") or uid
        if not lid:
            return None
        call = self._calls.get(lid)
        if call is not None:
            call.touched = self.seq
            if uid and uid not in call.channels and uid not in self._dead:
                call.channels.add(uid)
                self._uid[uid] = lid
            return call
        if lid in self._closed:
            self.ignored += 1
            return None
        if not uid:
            return None
        # A call already under way when we started listening: follow it, flagged partial.
        return self._open(lid, event.timestamp, uid, partial=True)

    def _open(self, lid: str, at: float, uid: str, *, partial: bool,
              generation: int = 1) -> _Call:
        call = _Call(lid, at, uid, partial, generation)
        call.touched = call.opened = self.seq
        call.channels.add(uid)
        self._calls[lid] = call
        self._uid[uid] = lid
        return call

    def _announce(self, call: _Call, out: list[Event]) -> None:
        if not call.announced:
            call.announced = True
            out.append(
                CallStarted(
                    server=self.server,
                    linkedid=call.linkedid,
                    caller_number=call.caller_number,
                    caller_name=call.caller_name,
                    at=_ts(call.started),
                )
            )

    def _caller_id(self, call: _Call, event: AmiEvent, *, authoritative: bool) -> None:
        num = _known(event.get("CallerIDNum"))
        name = _known(event.get("CallerIDName"))
        if num is not None and (authoritative or call.caller_number is None):
            call.caller_number = num
            if name is not None or authoritative:
                call.caller_name = name
        elif name is not None and call.caller_name is None and authoritative:
            call.caller_name = name

    def _remember_closed(self, call: _Call) -> None:
        self._closed[call.key] = (call.ended, call.generation)
        if len(self._closed) > self._max_closed:
            del self._closed[next(iter(self._closed))]

    def _close(self, call: _Call, out: list[Event]) -> None:
        self._announce(call, out)
        for uid in call.channels:
            self._uid.pop(uid, None)
        self._calls.pop(call.key, None)
        self._remember_closed(call)
        if call.outbound:
            self.outbound_calls += 1
            return
        out.append(CallEnded(record=self._record(call)))

    def _legs(self, call: _Call, end: float) -> list[QueueLeg]:
        """The call's visits as records, each decided (see QueueLeg), plus the outside transfer
        that ended the call when the last visit was transferred and no queue followed."""
        legs: list[QueueLeg] = []
        for leg in call.legs:
            outcome, wait, talk = leg.outcome, leg.wait, leg.talk
            if leg.connected:
                outcome = outcome or "answered"
                if talk is None and leg.answered_at is not None:  # no AgentComplete (partial)
                    talk = max((leg.transferred_at or leg.ended_at or end) - leg.answered_at, 0.0)
            else:
                if outcome is None:
                    # Still waiting when the call ended: a hang-up. Left without an operator or
                    # an abandon: Queue() gave up (an Asterisk that sends no abandon for it).
                    outcome = "abandoned" if leg.left_at is None else "timed_out"
                if wait is None:
                    wait = _since(leg.left_at or end, leg.joined_at)
                if outcome == "abandoned" and wait is not None \
                        and wait < self.short_abandon_seconds(leg.queue):
                    outcome = "short_abandoned"
            left = leg.ended_at or leg.transferred_at or (None if leg.connected else leg.left_at)
            legs.append(QueueLeg(
                queue=leg.queue, joined_at=_ts(leg.joined_at), left_at=_ts(left or end),
                outcome=outcome, wait_seconds=wait, ring_seconds=leg.ring, talk_seconds=talk,
                agent=leg.agent, agent_interface=leg.agent_interface, target=leg.target,
            ))
        last = call.legs[-1] if call.legs else None
        if last is not None and last.outcome == "transferred":
            at = last.transferred_at if last.transferred_at is not None else end
            legs.append(QueueLeg(queue=None, kind="transfer", joined_at=_ts(at),
                                 left_at=_ts(max(end, at)), outcome="transferred",
                                 target=last.target))
        return legs

    def _record(self, call: _Call) -> CallRecord:
        end = call.ended
        legs = self._legs(call, end)
        queued = [leg for leg in legs if leg.kind == "queue"]
        waits = [leg.wait_seconds for leg in queued if leg.wait_seconds is not None]
        talks = [leg.talk_seconds for leg in queued if leg.talk_seconds is not None]
        wait = min(sum(waits), MAX_DURATION) if waits else None
        talk = min(sum(talks), MAX_DURATION) if talks else None
        if legs:
            # How the call ended: its last leg's outcome (a queue that emptied is, for the
            # call, a timeout: the center's limit, not the caller's choice).
            outcome = legs[-1].outcome
            if outcome == "left_empty":
                outcome = "timed_out"
        elif call.transferred:
            outcome = "transferred"
        elif call.connected:
            outcome = "answered"
        elif call.self_served:
            outcome = "ivr_self_served"
        else:
            outcome = "ivr_hangup"
        ivr: float | None
        if call.adopted:
            # unknown, unless Asterisk told us when the caller joined (QueueEntry's Wait, or
            # AgentComplete's HoldTime + TalkTime); start and join are then whole seconds
            joined = call.joined_at if call.join_known and call.aged else None
            ivr = None if joined is None else max(joined - call.started, 0.0)
        elif call.joined_at is not None:
            ivr = max(call.joined_at - call.started, 0.0)
        else:
            ivr = max(end - call.started, 0.0)
        hold_total = call.hold_total
        if call.hold_since is not None:
            hold_total += end - call.hold_since
        hold = hold_total if (call.connected or hold_total) else None
        return CallRecord(
            server=self.server,
            linkedid=call.linkedid,
            caller_number=call.caller_number,
            caller_name=call.caller_name,
            started_at=_ts(call.started),
            ended_at=_ts(end),
            outcome=outcome,
            queue=call.queue,
            service=call.service,
            language=call.language,
            agent=call.agent,
            agent_interface=call.agent_interface,
            ivr_seconds=ivr,
            wait_seconds=wait,
            ring_seconds=call.ring,
            talk_seconds=talk,
            hold_seconds=hold,
            case_number=call.case_number,
            ivr_path=call.ivr_path,
            abandon_position=call.abandon_position if call.abandoned and outcome in (
                "abandoned", "short_abandoned", "timed_out") else None,
            partial=call.partial,
            legs=tuple(legs),
        )

    def _adopt(self, lid: str, chans: list[AmiEvent], at: float, out: list[Event]) -> _Call:
        """A call that was live before we (re)connected, from its CoreShowChannel entries."""
        first = next((c for c in chans if _uid_of(c) == lid), chans[0])
        age = 0.0
        for c in chans:
            age = max(age, hms(c, "Duration", self._bad))
            if self._bad:
                self._report(c)
        uid = _uid_of(first) or lid
        call = self._open(lid, at - age, uid, partial=True)
        call.aged = True
        self._caller_id(call, first, authoritative=True)
        if call.caller_number is None:
            for c in chans:
                self._caller_id(call, c, authoritative=False)
        for c in chans:
            if (c.get("Application") or "").lower() == "queue":
                queue = (c.get("ApplicationData") or "").split(",", 1)[0] or None
                call.queue = call.queue or queue
                call.current_queue = queue
                call.joined_at = call.started if call.joined_at is None else call.joined_at
                leg = _Leg(queue or "", call.started)
                call.legs.append(leg)
                if c.get("BridgeId"):
                    call.connected = True  # the queue caller is bridged to an operator
                    call.answered_at = at
                    leg.connected = True
                    leg.answered_at = leg.left_at = at
                else:
                    call.in_queue = True
        queue_chan = next((c for c in chans if (c.get("Application") or "").lower() == "queue"),
                          first)
        self.adoptions.append(Adoption(
            key=lid, channel=queue_chan.get("Channel") or "",
            channels=tuple(c.get("Channel") or "" for c in chans if c.get("Channel")),
        ))
        self._announce(call, out)
        return call

    # --- adoption: what Asterisk can still tell about a call we did not see begin -----------

    def adopt_variables(self, key: str, values: Mapping[str, str]) -> None:
        """The channel variables of an adopted call (the bridge's Getvar of QUEUE, SERVICE,
        LANG, IVRPATH, CASE on its caller's channel); empty values are ignored."""
        call = self._calls.get(key)
        if call is None:
            return
        for var, value in values.items():
            if not value:
                continue
            if var == "SERVICE":
                call.service = call.service or value
            elif var == "LANG":
                call.language = call.language or value
            elif var == "CASE":
                call.case_number = call.case_number or value
            elif var == "IVRPATH" and not call.ivr_path:
                call.ivr_path = tuple(p for p in value.split(",") if p)
            elif var == "QUEUE" and call.queue is None:
                call.queue = value  # routed there by the IVR; Queue() not seen running

    def adopt_queue_entries(self, entries: Sequence[AmiEvent], at: float) -> None:
        """`QueueStatus`'s ``QueueEntry`` items: a caller still waiting has waited ``Wait``
        seconds, so the visit began then (and the IVR time before it is known)."""
        for entry in entries:
            if entry.name != "QueueEntry":
                continue
            key = self._uid.get(_uid_of(entry))
            call = self._calls.get(key) if key else None
            if call is None or not call.adopted:
                continue
            waited = duration(entry, "Wait", self._bad)
            if self._bad:
                self._report(entry)
                continue
            if waited is None:
                continue
            queue = entry.get("Queue") or call.current_queue or ""
            leg = call.leg_in(queue)
            if leg is None:
                leg = _Leg(queue, at)
                call.legs.append(leg)
                call.in_queue = True
            if leg.connected:
                continue
            leg.joined_at = max(at - waited, call.started)
            if call.legs[0] is leg:
                call.joined_at = leg.joined_at
                call.join_known = True

    def adopt_operators(self, members: Sequence[AgentStateChanged], at: float) -> list[Event]:
        """Adopted calls bridged to an operator: the member whose interface owns one of the
        call's channels (``PJSIP/1001-0000000a`` is ``PJSIP/1001``'s) answered it. Each gives
        the events of a screen pop (`AgentRinging`, with what the call's variables told) and of
        the answer (`CallAnswered`), so that operator's console gets the call back whole."""
        out: list[Event] = []
        for adoption in self.adoptions:
            call = self._calls.get(adoption.key)
            if call is None:
                continue
            bases = {_interface_base(ch) for ch in adoption.channels if ch != adoption.channel}
            for leg in call.legs:
                if not leg.connected or leg.agent_interface is not None:
                    continue
                found = [m for m in members if m.queue == leg.queue
                         and _interface_base(m.interface) in bases]
                if len(found) != 1:
                    continue  # nobody, or ambiguous: AgentComplete will name them
                member = found[0]
                leg.agent, leg.agent_interface = member.member_name, member.interface
                if call.agent is None:
                    call.agent, call.agent_interface = member.member_name, member.interface
                call.talking.setdefault(member.interface, at)
                out.append(AgentRinging(
                    server=self.server, linkedid=call.linkedid, queue=leg.queue,
                    interface=member.interface, member_name=member.member_name,
                    caller_number=call.caller_number, caller_name=call.caller_name,
                    at=_ts(at), service=call.service, language=call.language,
                    case_number=call.case_number, ivr_path=call.ivr_path,
                ))
                out.append(CallAnswered(
                    server=self.server, linkedid=call.linkedid, queue=leg.queue,
                    interface=member.interface, member_name=member.member_name,
                    wait_seconds=None, ring_seconds=None, at=_ts(at),
                ))
        return out

    # --- handlers -------------------------------------------------------------------------

    def _newchannel(self, event: AmiEvent, out: list[Event]) -> None:
        uid = event.get("Uniqueid")
        lid = event.get("Linkedid") or uid
        if not uid or not lid or uid in self._uid:
            return  # malformed, or a duplicate of a channel we follow
        generation = 1
        closed = self._closed.get(lid)
        if closed is not None:
            ended, generation = closed
            # A fresh first channel stamped after that call ended: the id is reused by a new
            # call. Anything else is a late or repeated event of the ended one.
            if uid != lid or event.timestamp <= ended:
                self.ignored += 1
                return
            generation += 1
            del self._closed[lid]
            self._dead.pop(uid, None)
        call = self._calls.get(lid)
        if call is None:
            # Asterisk makes a call's first channel with Linkedid == Uniqueid; anything else
            # means we joined a call already under way.
            call = self._open(lid, event.timestamp, uid, partial=uid != lid,
                              generation=generation)
            self._caller_id(call, event, authoritative=True)
            if call.caller_number is not None:
                self._announce(call, out)
            return
        # An operator's channel: its caller ID may be the operator's own, never the citizen's.
        call.touched = self.seq
        call.channels.add(uid)
        self._uid[uid] = lid

    def _newcallerid(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        if event.get("Uniqueid") == call.first_uid:
            self._caller_id(call, event, authoritative=True)
            self._announce(call, out)

    def _varset(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        var = event.get("Variable") or ""
        value = event.get("Value") or None
        if var == "CC_CALLBACK":
            call.outbound = True
            return
        self._announce(call, out)
        if var == "SERVICE":
            call.service = value
        elif var == "LANG":
            call.language = value
        elif var == "CASE":
            call.case_number = value
        elif var == "IVRPATH":
            call.ivr_path = tuple(p for p in (value or "").split(",") if p)
        elif var == "IVROUTCOME":
            call.self_served = value == "self_served"
        elif var == "QUEUESTATUS":
            self._queue_status(call, value or "", event.timestamp)
        # QUEUE is the IVR's routing target; the record's queue is the queue actually joined.

    def _queue_status(self, call: _Call, status: str, at: float) -> None:
        """``QUEUESTATUS`` as ``Queue()`` returns to the dialplan. Asterisk 22 sends
        ``QueueCallerAbandon`` for a queue timeout and for leavewhenempty too (app_queue.c
        calls record_abandoned() there); only this variable, set on the caller's channel after
        QueueCallerLeave, tells them from a caller who hung up (then it is not set at all)."""
        leg = call.legs[-1] if call.legs else None
        outcome = _STATUS_OUTCOME.get(status)
        if leg is None or outcome is None or leg.connected or leg.outcome not in (
                None, "abandoned"):
            return
        leg.outcome = outcome
        leg.left_at = leg.left_at if leg.left_at is not None else at
        leg.ended_at = leg.ended_at if leg.ended_at is not None else at
        if leg.wait is None:
            leg.wait = _since(leg.left_at, leg.joined_at)

    def _queue_join(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._caller_id(call, event, authoritative=False)
        self._announce(call, out)
        queue = event.get("Queue") or ""
        at = event.timestamp
        if call.queue is None:
            call.queue = queue
        if call.joined_at is None:
            call.joined_at = at
        call.current_queue = queue
        call.in_queue = True
        prev = call.legs[-1] if call.legs else None
        if prev is not None and prev.outcome in (None, "abandoned"):
            # The caller is in another queue now, so did not hang up: moved on by someone (a
            # Redirect sends QueueCallerAbandon too, and no QUEUESTATUS) or, answered, sent
            # on by the operator (a transfer event, if any, names the target more exactly).
            # A timeout said so already (QUEUESTATUS=TIMEOUT before this join).
            prev.outcome = "transferred"
            prev.target = prev.target or queue
            if prev.transferred_at is None:
                prev.transferred_at = at
            if prev.left_at is None:
                prev.left_at = at
        call.legs.append(_Leg(queue, at))
        out.append(
            QueueJoined(
                server=self.server,
                linkedid=call.linkedid,
                queue=queue,
                position=count(event, "Position", self._bad) or 0,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                at=_ts(at),
                service=call.service,
                language=call.language,
                case_number=call.case_number,
            )
        )

    def _queue_leave(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        call.in_queue = False
        call.left_at = event.timestamp
        leg = call.leg_in(event.get("Queue"))
        if leg is not None and leg.left_at is None:
            leg.left_at = event.timestamp
        out.append(
            QueueLeft(
                server=self.server,
                linkedid=call.linkedid,
                queue=event.get("Queue") or call.current_queue or "",
                at=_ts(event.timestamp),
            )
        )

    def _queue_abandon(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        wait = self._figure(event, "HoldTime", _since(event.timestamp, call.joined_at))
        position = count(event, "Position", self._bad)
        call.in_queue = False
        call.abandoned = True
        call.abandon_position = position
        leg = call.leg_in(event.get("Queue"))
        if leg is not None and not leg.connected and leg.outcome is None:
            # A timeout or leavewhenempty sends this too: QUEUESTATUS may still correct it.
            leg.outcome = "abandoned"
            leg.wait = wait
            leg.left_at = leg.ended_at = event.timestamp
        out.append(
            CallAbandoned(
                server=self.server,
                linkedid=call.linkedid,
                queue=event.get("Queue") or call.current_queue or "",
                position=position,
                original_position=count(event, "OriginalPosition", self._bad),
                wait_seconds=wait,
                at=_ts(event.timestamp),
            )
        )

    def _agent_called(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        call.rung[event.get("Interface") or ""] = event.timestamp
        out.append(
            AgentRinging(
                server=self.server,
                linkedid=call.linkedid,
                queue=event.get("Queue") or call.current_queue or "",
                interface=event.get("Interface") or "",
                member_name=event.get("MemberName") or None,
                caller_number=call.caller_number,
                caller_name=call.caller_name,
                at=_ts(event.timestamp),
                service=call.service,
                language=call.language,
                case_number=call.case_number,
                ivr_path=call.ivr_path,
            )
        )

    def _agent_ringnoanswer(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        interface = event.get("Interface") or ""
        ring = self._figure(event, "RingTime", _since(event.timestamp, call.rung.get(interface)),
                            1000.0)  # milliseconds on the wire
        out.append(
            AgentRingNoAnswer(
                server=self.server,
                linkedid=call.linkedid,
                queue=event.get("Queue") or call.current_queue or "",
                interface=interface,
                ring_seconds=ring,
                at=_ts(event.timestamp),
            )
        )

    def _agent_connect(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        interface = event.get("Interface") or ""
        at = event.timestamp
        wait = self._figure(event, "HoldTime", _since(at, call.joined_at))
        # seconds here, unlike AgentRingNoAnswer
        ring = self._figure(event, "RingTime", _since(at, call.rung.get(interface)))
        member = event.get("MemberName") or None
        call.talking[interface] = at
        call.in_queue = False
        queue = event.get("Queue") or call.current_queue or ""
        leg = call.leg_in(queue)
        if leg is None or leg.connected:  # joined before we listened (adopted), or a rejoin
            leg = _Leg(queue, at - wait if wait is not None else at)
            call.legs.append(leg)
        leg.connected = True
        leg.answered_at = at
        leg.agent, leg.agent_interface = member, interface
        leg.wait, leg.ring = wait, ring
        if call.adopted and wait is not None and not call.join_known:
            leg.joined_at = max(at - wait, call.started)  # adopted while waiting
            if call.legs[0] is leg:
                call.joined_at, call.join_known = leg.joined_at, True
        if leg.left_at is None:
            leg.left_at = at
        if not call.connected:
            # The first operator to answer is the call's agent; a later queue (after a
            # transfer) does not rewrite the record's figures.
            call.connected = True
            call.answered_at = event.timestamp
            call.agent = member
            call.agent_interface = interface
            call.wait = wait
            call.ring = ring
        out.append(
            CallAnswered(
                server=self.server,
                linkedid=call.linkedid,
                queue=event.get("Queue") or call.current_queue or "",
                interface=interface,
                member_name=member,
                wait_seconds=wait,
                ring_seconds=ring,
                at=_ts(event.timestamp),
            )
        )

    def _agent_complete(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        interface = event.get("Interface") or ""
        talk = self._figure(event, "TalkTime",
                            _since(event.timestamp, call.talking.get(interface)))
        if call.talk is None and interface == call.agent_interface:
            call.talk = talk
        for leg in reversed(call.legs):
            if leg.connected and leg.agent_interface == interface and leg.talk is None:
                leg.talk = talk
                leg.ended_at = event.timestamp
                if call.adopted and leg.wait is None:  # connected before we listened
                    self._adopted_complete(call, event, interface, talk, leg)
                break
        else:
            if call.adopted:
                self._adopted_complete(call, event, interface, talk)
        out.append(
            AgentCallCompleted(
                server=self.server,
                linkedid=call.linkedid,
                queue=event.get("Queue") or call.current_queue or "",
                interface=interface,
                talk_seconds=talk,
                at=_ts(event.timestamp),
            )
        )

    def _adopted_complete(self, call: _Call, event: AmiEvent, interface: str,
                          talk: float | None, leg: _Leg | None = None) -> None:
        """AgentComplete of a call adopted mid-way: the operator we could not name yet, and
        Asterisk's own HoldTime and TalkTime for the visit (the connect we never saw)."""
        queue = event.get("Queue") or call.current_queue or ""
        at = event.timestamp
        if leg is None:
            leg = next((x for x in reversed(call.legs) if x.queue == queue and x.talk is None
                        and x.agent_interface is None), None)
        if leg is None:  # the call was first seen at this event
            leg = _Leg(queue, call.started)
            leg.connected = True
            call.legs.append(leg)
            call.connected = True
        member = event.get("MemberName") or None
        wait = self._figure(event, "HoldTime", None)
        leg.agent, leg.agent_interface = member, interface
        leg.talk, leg.ended_at = talk, at
        if leg.wait is None:
            leg.wait = wait
        if talk is not None:
            leg.answered_at = at - talk
            leg.left_at = leg.answered_at
            if wait is not None:
                leg.joined_at = max(leg.answered_at - wait, call.started)
                if call.legs[0] is leg:
                    call.joined_at = leg.joined_at
                    call.join_known = True
        if call.agent is None:
            call.agent, call.agent_interface = member, interface
            call.answered_at = leg.answered_at

    def _hold(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        self._announce(call, out)
        uid = event.get("Uniqueid") or ""
        if uid in call.held:
            return  # a repeated Hold changes nothing
        if not call.held:
            call.hold_since = event.timestamp
        call.held.add(uid)
        out.append(
            CallHeld(
                server=self.server, linkedid=call.linkedid, held=True, at=_ts(event.timestamp)
            )
        )

    def _unhold(self, event: AmiEvent, out: list[Event]) -> None:
        call = self._lookup(event, out)
        if call is None:
            return
        uid = event.get("Uniqueid") or ""
        if uid not in call.held:
            return
        call.held.discard(uid)
        if not call.held and call.hold_since is not None:
            call.hold_total += max(event.timestamp - call.hold_since, 0.0)
            call.hold_since = None
        out.append(
            CallHeld(
                server=self.server, linkedid=call.linkedid, held=False, at=_ts(event.timestamp)
            )
        )

    def _transfer_call(self, event: AmiEvent, prefixes: Sequence[str]) -> _Call | None:
        # The transferee is the citizen; fall back to the transferer's call.
        for prefix in prefixes:
            uid = event.get(f"{prefix}Uniqueid")
            lid = (self._uid.get(uid) if uid else None) or event.get(f"{prefix}Linkedid")
            if lid and lid in self._calls:
                call = self._calls[lid]
                call.touched = self.seq
                return call
        return None

    def _transferred(self, call: _Call, kind: str, target: str | None, at: float,
                     out: list[Event]) -> None:
        self._announce(call, out)
        if call.connected:
            call.transferred = True
        # The visit the caller is transferred out of: the operator's (the latest answered one
        # still undecided), else a caller redirected while waiting. A QueueCallerJoin of the
        # target queue arriving first does not confuse it: that visit is not answered yet.
        open_legs = [leg for leg in call.legs if leg.outcome is None]
        answered = [leg for leg in call.legs if leg.connected and not leg.transfer_seen
                    and leg.outcome in (None, "transferred")]
        leg = answered[-1] if answered else (open_legs[-1] if open_legs else None)
        if leg is not None:
            leg.outcome = "transferred"
            leg.target = target or leg.target
            leg.transfer_seen = True
            leg.transferred_at = at if leg.transferred_at is None else min(
                leg.transferred_at, at)
            if leg.left_at is None:
                leg.left_at = at
        out.append(
            CallTransferred(
                server=self.server, linkedid=call.linkedid, kind=kind, target=target, at=_ts(at)
            )
        )

    def _blind_transfer(self, event: AmiEvent, out: list[Event]) -> None:
        if (event.get("Result") or "Success") != "Success":
            return
        call = self._transfer_call(event, ("Transferee", "Transferer"))
        if call is None:
            return
        exten, context = event.get("Extension"), event.get("Context")
        target = f"{exten}@{context}" if exten and context else exten or None
        self._transferred(call, "blind", target, event.timestamp, out)

    def _attended_transfer(self, event: AmiEvent, out: list[Event]) -> None:
        if (event.get("Result") or "Success") != "Success":
            return
        call = self._transfer_call(event, ("Transferee", "OrigTransferer", "SecondTransferer"))
        if call is None:
            return
        target = (
            event.get("TransferTargetChannel")
            or event.get("DestApp")
            or event.get("SecondTransfererChannel")
            or None
        )
        self._transferred(call, "attended", target, event.timestamp, out)

    def _hangup(self, event: AmiEvent, out: list[Event]) -> None:
        uid = event.get("Uniqueid")
        if not uid:
            return
        lid = self._uid.pop(uid, None)
        self._dead[uid] = None
        if len(self._dead) > 2 * self._max_closed:
            del self._dead[next(iter(self._dead))]
        if lid is None:
            # Not a live channel we know: a duplicate, a late event, or a call we never saw.
            self.ignored += 1
            return
        call = self._calls.get(lid)
        if call is None:
            return
        call.touched = self.seq
        call.channels.discard(uid)
        if uid in call.held:
            call.held.discard(uid)
            if not call.held and call.hold_since is not None:
                call.hold_total += max(event.timestamp - call.hold_since, 0.0)
                call.hold_since = None
        call.ended = max(call.ended, event.timestamp)
        if uid == call.first_uid:
            self._caller_id(call, event, authoritative=False)
        if not call.channels:
            self._close(call, out)
        else:
            self._announce(call, out)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, JSON_DECIMALS)


def record_to_json(record: CallRecord) -> dict[str, Any]:
    """A finished call in the `replay-ami` output shape. Times are ISO 8601 UTC; durations are
    seconds rounded to `JSON_DECIMALS` (3) decimals, ``None`` where they do not apply."""
    return {
        "linkedid": record.linkedid,
        "caller_number": record.caller_number,
        "caller_name": record.caller_name,
        "started_at": record.started_at.astimezone(UTC).isoformat(),
        "ended_at": record.ended_at.astimezone(UTC).isoformat(),
        "queue": record.queue,
        "service": record.service,
        "language": record.language,
        "agent": record.agent,
        "ivr_seconds": _round(record.ivr_seconds),
        "wait_seconds": _round(record.wait_seconds),
        "ring_seconds": _round(record.ring_seconds),
        "talk_seconds": _round(record.talk_seconds),
        "outcome": record.outcome,
        "final_queue": record.final_queue,
        "final_agent": record.final_agent,
        "legs": [leg_to_json(leg) for leg in record.legs],
    }


def leg_to_json(leg: QueueLeg) -> dict[str, Any]:
    """One leg in the `replay-ami` output shape (as `record_to_json`)."""
    return {
        "kind": leg.kind,
        "queue": leg.queue,
        "joined_at": leg.joined_at.astimezone(UTC).isoformat(),
        "left_at": leg.left_at.astimezone(UTC).isoformat(),
        "outcome": leg.outcome,
        "wait_seconds": _round(leg.wait_seconds),
        "ring_seconds": _round(leg.ring_seconds),
        "talk_seconds": _round(leg.talk_seconds),
        "agent": leg.agent,
        "target": leg.target,
    }


__all__ = ["JSON_DECIMALS", "RECENTLY_CLOSED", "Adoption", "CallTracker", "leg_to_json",
           "record_to_json"]
