"""Channels and bridges: the live channels by name, their ids (Uniqueid, Linkedid and the
Local pairs' counter), Newstate/Hangup and the CEL CHAN_END/LINKEDID_END that close them, a Local
device's state, and BridgeEnter/BridgeLeave."""

from __future__ import annotations

import itertools

from .core import CALL, SimCore
from .wire import CAUSE_TXT, Channel, SimBridge


class SimChannels:
    """Owns `channels` (the live ones) and how channels are named, created and ended."""

    def __init__(self, core: SimCore) -> None:
        self.core = core
        self.channels: dict[str, Channel] = {}
        self._uid = itertools.count()
        self._chan = itertools.count()
        self._linked: dict[str, int] = {}

    def new_channel(
        self, name: str, context: str, exten: str, linkedid: str | None, state: int = 0
    ) -> Channel:
        now = self.core.clock.now()
        uid = f"{int(now)}.{next(self._uid)}"
        ch = Channel(
            name=name,
            uniqueid=uid,
            linkedid=linkedid or uid,
            context=context,
            exten=exten,
            created=now,
            state=state,
        )
        self.channels[name] = ch
        self._linked[ch.linkedid] = self._linked.get(ch.linkedid, 0) + 1
        if self.core.records is not None:
            self.core.records.channel(uid, ch.linkedid)
        return ch

    def device_channel(self, interface: str, context: str, exten: str, linkedid: str) -> Channel:
        """The channel a queue dials on a device such as `PJSIP/1001` (`PJSIP/1001-0000000a`)."""
        n = f"{next(self._chan):08x}"
        return self.new_channel(f"{interface}-{n}", context, exten, linkedid)

    def local_pair(self, exten: str, context: str, linkedid: str | None) -> tuple[Channel, Channel]:
        n = f"{next(self._chan):08x}"
        one = self.new_channel(f"Local/{exten}@{context}-{n};1", context, exten, linkedid)
        two = self.new_channel(f"Local/{exten}@{context}-{n};2", context, exten, one.linkedid, 4)
        return one, two

    def newstate(self, ch: Channel, state: int) -> None:
        ch.state = state
        if state == 6 and ch.answered is None:
            ch.answered = self.core.clock.now()
        self.core.ev_chan("Newstate", ch)

    def dsc_local(self, device: str) -> None:
        """A Local device is in use while one of its channel pairs has both halves up
        (core_local's devicestate): with other calls in progress a hang-up reports INUSE."""
        halves: dict[str, int] = {}
        for ch in self.channels.values():
            if ch.device == device and ";" in ch.name:
                pair = ch.name.rsplit(";", 1)[0]
                halves[pair] = halves.get(pair, 0) + 1
        self.core.dsc(device, "INUSE" if any(n == 2 for n in halves.values()) else "NOT_INUSE")

    def hangup_event(self, ch: Channel, cause: int) -> None:
        ch.dead = True
        self.channels.pop(ch.name, None)
        self.core.ev_chan(
            "Hangup", ch, [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))]
        )

    def chan_end(self, ch: Channel, *, app: str | None = None, appdata: str | None = None) -> None:
        self.core.cel(ch, "CHAN_END", app=app, appdata=appdata)
        left = self._linked.get(ch.linkedid, 1) - 1
        if left <= 0:
            self._linked.pop(ch.linkedid, None)
            self.core.cel(ch, "LINKEDID_END", app=app, appdata=appdata)
        else:
            self._linked[ch.linkedid] = left

    def bridge_enter(self, bridge: SimBridge, ch: Channel) -> None:
        bridge.members.append(ch.name)
        self.core.emit("BridgeEnter", CALL, bridge.snapshot() + ch.snapshot())

    def bridge_leave(self, bridge: SimBridge, ch: Channel) -> None:
        if ch.name in bridge.members:
            bridge.members.remove(ch.name)
        self.core.emit("BridgeLeave", CALL, bridge.snapshot() + ch.snapshot())

    def live_channels(self) -> list[Channel]:
        return list(self.channels.values())
