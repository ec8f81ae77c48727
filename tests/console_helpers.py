"""Fakes for the console's tests: a Pbx that records calls, a websocket that records frames."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from contactcenter.events import AgentRinging, PbxError

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


class FakePbx:
    """events.Pbx that records every action; `fail` makes the next actions raise PbxError."""

    def __init__(self) -> None:
        self.actions: list[tuple[Any, ...]] = []
        self.fail: str | None = None
        self.penalties: dict[tuple[str, str], int] = {}  # (queue, interface) -> last QueueAdd's
        self.paused_adds: list[tuple[str, str]] = []  # QueueAdds sent with Paused: true
        # members Asterisk already has: QueueAdd answers "Already there" (as Asterisk does)
        self.already: set[tuple[str, str]] = set()

    def _record(self, *action: Any) -> None:
        if self.fail:
            raise PbxError(self.fail)
        self.actions.append(action)

    async def queue_add(self, queue: str, interface: str, member_name: str, *,
                        paused: bool = False, penalty: int = 0) -> None:
        if (queue, interface) in self.already:
            raise PbxError("Unable to add interface: Already there")
        self._record("add", queue, interface, member_name)
        self.penalties[(queue, interface)] = penalty
        if paused:
            self.paused_adds.append((queue, interface))

    async def queue_remove(self, queue: str, interface: str) -> None:
        self._record("remove", queue, interface)

    async def queue_pause(self, interface: str, paused: bool, *, queue: str | None = None,
                          reason: str = "") -> None:
        self._record("pause", interface, paused, queue, reason)

    async def hangup(self, channel: str) -> None:
        self._record("hangup", channel)

    async def originate(self, channel: str, context: str, exten: str, *, caller_id: str = "",
                        variables: dict[str, str] | None = None) -> None:
        self._record("originate", channel, context, exten)


class FakePhones:
    def __init__(self) -> None:
        self.actions: list[tuple[str, str]] = []

    async def answer(self, interface: str) -> None:
        self.actions.append(("answer", interface))

    async def hangup(self, interface: str) -> None:
        self.actions.append(("hangup", interface))


class FakeWs:
    """What Connection needs of a WebSocketResponse; keeps every frame as decoded JSON."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed = False
        self.close_code: int | None = None

    async def send_str(self, data: str) -> None:
        self.frames.append(json.loads(data))

    async def close(self, *, code: int = 1000, message: bytes = b"") -> bool:
        self.closed, self.close_code = True, code
        return True

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]


def ringing(interface: str, linkedid: str = "1700000000.1", *, queue: str = "potholes",
            number: str | None = "7875550101", name: str | None = "Maria Lopez",
            at: datetime = T0, **kw: Any) -> AgentRinging:
    return AgentRinging("default", linkedid, queue, interface, None, number, name, at, **kw)


def later(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)

