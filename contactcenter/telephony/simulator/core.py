"""What every part of the simulated Asterisk shares: the virtual clock, the AMI event stream
(listeners, `emit` and the helpers that write Newexten, VarSet, CEL and DeviceStateChange in
Asterisk's wording), the dialplan's global variables, the random source, the background tasks
and the waits on virtual time."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .clock import VirtualClock
from .model import CitizenCall
from .records import AsteriskRecords
from .wire import Channel, Headers, cel, event_frame

log = logging.getLogger(__name__)

CALL, DIALPLAN, AGENT, DTMF, CDR = (
    "call,all",
    "dialplan,all",
    "agent,all",
    "dtmf,all",
    "cdr,all",
)
# The capture's [globals]: seconds before answering (99 = never) and talk seconds per agent.
DEFAULT_GLOBALS = {
    "RING_2001": "2",
    "TALK_2001": "6",
    "RING_2002": "1",
    "TALK_2002": "4",
    "RING_2003": "99",
    "TALK_2003": "3",
    "RING_2004": "2",
    "TALK_2004": "5",
    "RING_2005": "1",
    "TALK_2005": "3",
}
CID_PRES = [("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")]
ANSWER_DELAY = 0.5  # Answer() on these channels returns half a second later (seen in captures)

Listener = Callable[[bytes], None]


def fmt_num(x: float) -> str:
    """A number as the dialplan writes it in application data: `2`, `2.5`."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


class SimCore:
    """Owns the clock, the listeners (AMI clients) and every event written, Asterisk's records
    (queue_log, CDR) when a test asks for them, the globals, the RNG and the tasks."""

    def __init__(self, clock: VirtualClock, seed: int | None) -> None:
        self.clock = clock
        self.listeners: list[Listener] = []
        self.events = 0
        self.globals: dict[str, str] = dict(DEFAULT_GLOBALS)
        self.rng = random.Random(seed)
        # Asterisk's own queue_log and CDR (simulator/records.py), when a test asks for them
        self.records: AsteriskRecords | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    def emit(self, name: str, privilege: str, headers: Headers) -> None:
        data = event_frame(name, privilege, self.clock.now(), headers)
        self.events += 1
        if name == "Cdr" and self.records is not None:
            self.records.cdr_event(headers)
        for listener in list(self.listeners):
            listener(data)

    def qlog(self, call: CitizenCall, queue: str, agent: str, event: str, *data: object) -> None:
        """A queue_log line for the caller's channel (call id: its Uniqueid)."""
        if self.records is not None:
            self.records.queue_log(self.clock.now(), call.ch2.uniqueid, queue, agent, event,
                                   *data)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def ev_chan(
        self, name: str, ch: Channel, extra: Sequence[tuple[str, str]] = (), priv: str = CALL
    ) -> None:
        self.emit(name, priv, ch.snapshot() + list(extra))

    def newexten(
        self,
        ch: Channel,
        app: str,
        data: str,
        priority: int | None = None,
        exten: str | None = None,
        context: str | None = None,
    ) -> None:
        if priority is not None:
            ch.priority = priority
        if exten is not None:
            ch.exten = exten
        if context is not None:
            ch.context = context
        ch.app, ch.appdata = app, data
        self.ev_chan(
            "Newexten",
            ch,
            [("Extension", ch.exten), ("Application", app), ("AppData", data)],
            DIALPLAN,
        )

    def varset(self, ch: Channel | None, var: str, value: str) -> None:
        if ch is None:
            self.globals[var] = value
            self.emit(
                "VarSet",
                DIALPLAN,
                [("Channel", "none"), ("Uniqueid", "none"), ("Variable", var), ("Value", value)],
            )
            return
        ch.vars[var] = value
        self.ev_chan("VarSet", ch, [("Variable", var), ("Value", value)], DIALPLAN)

    def cel(self, ch: Channel, name: str, **kw: Any) -> None:
        if ch.name.endswith(";1") and ch.context == "citizen-dialer" and kw.get("app") is None:
            # the originated half's CEL snapshot keeps the dial's application
            kw.update(app="AppDial2", appdata="(Outgoing Line)")
        self.emit("CEL", CALL, cel(ch, name, self.clock.now(), **kw))

    def dsc(self, device: str, state: str) -> None:
        self.emit("DeviceStateChange", CALL, [("Device", device), ("State", state)])

    async def wait(self, seconds: float | None, *events: asyncio.Event) -> bool:
        """Sleep `seconds` of virtual time (None: forever) unless one of `events` fires first;
        True when an event fired."""
        if any(e.is_set() for e in events):
            return True
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        timer = asyncio.ensure_future(self.clock.sleep(seconds)) if seconds is not None else None
        try:
            await asyncio.wait(
                waiters + ([timer] if timer else []), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for t in waiters + ([timer] if timer else []):
                t.cancel()
        return any(e.is_set() for e in events)

    async def until(self, when: float | None, *events: asyncio.Event) -> bool:
        """Wait until virtual time `when` (None: forever) unless an event fires first. Waiting
        for absolute times keeps a busy event loop's lateness from adding up along a call."""
        return await self.wait(None if when is None else when - self.clock.now(), *events)
