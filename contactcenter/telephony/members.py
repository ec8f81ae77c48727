"""MemberTracker: queue members' state as Asterisk reports it (pure: no I/O, no clock).

Live events (``QueueMemberStatus``, ``QueueMemberAdded``, ``QueueMemberPause``,
``QueueMemberRemoved``) become `AgentStateChanged`. After a (re)connect the reply to a
``QueueStatus`` action (``QueueParams``/``QueueMember``/``QueueEntry`` events) becomes one
`QueueMembersSynced`, plus an ``AgentStateChanged(device_state="logged_out")`` for every member
we knew in a reported queue that Asterisk no longer lists: after a restart with
``persistentmembers = no`` the queues come back empty, and presence must notice.

Numbers (``Status``, ``Wrapuptime``) are read strictly (`numbers`); a refused one is counted in
`bad_fields` and described in `warnings`, as in the call tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from contactcenter.events import DEVICE_STATES, AgentStateChanged, Event, QueueMembersSynced
from contactcenter.telephony.frames import AmiEvent
from contactcenter.telephony.numbers import (
    MAX_DURATION,
    BadField,
    check_timestamp,
    count,
    describe,
)

LOGGED_OUT = "logged_out"

_LIVE = frozenset({"QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause"})


def _interface(event: AmiEvent) -> str:
    # Live events say Interface; QueueStatus's QueueMember says Location (older: both).
    return event.get("Interface") or event.get("Location") or ""


def _member_name(event: AmiEvent) -> str | None:
    return event.get("MemberName") or event.get("Name") or None


class MemberTracker:
    """Remembers each (queue, interface) member's last reported state."""

    def __init__(self, server: str = "default") -> None:
        self.server = server
        self._members: dict[tuple[str, str], AgentStateChanged] = {}
        self.bad_fields = 0
        self.warnings: list[str] = []  # one line per event with refused fields; owner clears
        self._bad: list[BadField] = []

    def members(self) -> list[AgentStateChanged]:
        """Every member we believe is in a queue now."""
        return list(self._members.values())

    def _state(self, event: AmiEvent, at: float) -> AgentStateChanged | None:
        queue = event.get("Queue") or ""
        interface = _interface(event)
        if not queue or not interface:
            self._flush(event)
            return None
        paused = event.get("Paused") == "1"
        code = count(event, "Status", self._bad)
        wrapup = count(event, "Wrapuptime", self._bad, limit=int(MAX_DURATION))
        self._flush(event)
        return AgentStateChanged(
            server=self.server,
            queue=queue,
            interface=interface,
            member_name=_member_name(event),
            device_state="unknown" if code is None else DEVICE_STATES.get(code, "unknown"),
            paused=paused,
            pause_reason=(event.get("PausedReason") or None) if paused else None,
            at=datetime.fromtimestamp(at, UTC),
            in_call=event.get("InCall") == "1",
            wrapup_seconds=wrapup,
        )

    def _flush(self, event: AmiEvent) -> None:
        if self._bad:
            self.bad_fields += len(self._bad)
            where = f" ({event.get('Queue') or ''} {_interface(event)})"
            self.warnings.append(describe(event, self._bad) + where)
            self._bad.clear()

    def feed(self, event: AmiEvent) -> list[Event]:
        name = event.name
        if name in _LIVE or name == "QueueMemberRemoved":
            check_timestamp(event, self._bad)  # reported with the event's other fields
        if name in _LIVE:
            state = self._state(event, event.timestamp)
            if state is None:
                return []
            self._members[(state.queue, state.interface)] = state
            return [state]
        if name == "QueueMemberRemoved":
            queue, interface = event.get("Queue") or "", _interface(event)
            self._flush(event)
            if not queue or not interface:
                return []
            self._members.pop((queue, interface), None)
            return [self._logged_out(queue, interface, _member_name(event), event.timestamp)]
        return []

    def _logged_out(
        self, queue: str, interface: str, member_name: str | None, at: float
    ) -> AgentStateChanged:
        return AgentStateChanged(
            server=self.server,
            queue=queue,
            interface=interface,
            member_name=member_name,
            device_state=LOGGED_OUT,
            paused=False,
            pause_reason=None,
            at=datetime.fromtimestamp(at, UTC),
        )

    def from_queue_status(self, events: Sequence[AmiEvent], at: float) -> list[Event]:
        """The reply events of one ``QueueStatus`` action -> the full member list.

        Only queues the reply reports (a ``QueueParams`` per queue) are reconciled, so a
        ``QueueStatus`` of one queue does not log out members of the others.
        """
        covered: set[str] = set()
        seen: dict[tuple[str, str], AgentStateChanged] = {}
        for ev in events:
            if ev.name == "QueueParams":
                if ev.get("Queue"):
                    covered.add(ev.get("Queue") or "")
            elif ev.name == "QueueMember":
                state = self._state(ev, at)
                if state is not None:
                    covered.add(state.queue)
                    seen[(state.queue, state.interface)] = state
            # QueueEntry (a waiting caller) is the call tracker's business, not presence.
        out: list[Event] = [
            QueueMembersSynced(
                server=self.server, members=tuple(seen.values()), at=datetime.fromtimestamp(at, UTC)
            )
        ]
        for key, old in list(self._members.items()):
            if key[0] in covered and key not in seen:
                del self._members[key]
                out.append(self._logged_out(old.queue, old.interface, old.member_name, at))
        self._members.update(seen)
        return out


__all__ = ["LOGGED_OUT", "MemberTracker"]
