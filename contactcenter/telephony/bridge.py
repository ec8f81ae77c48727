"""The AMI bridge: for each Asterisk, AmiClient -> CallTracker/MemberTracker -> the bus.

Several Asterisks: each endpoint of `settings.ami_endpoints()` gets its own client and trackers;
the endpoint's name is the `server` of every event and record, so calls are keyed by
(server, linkedid) and two servers' ids never collide.

The read path is synchronous on purpose: frames -> tracker -> a deque of domain events, with no
await per event. One publisher task per bridge empties the deque onto the bus. The deque is
bounded by flow control: above `HIGH_WATER` the bridge pauses reading the AMI sockets (the kernel
buffers, then Asterisk, hold the rest) and says so in the log and in `/health`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from ..bus import BaseBus
from ..clock import SYSTEM, Clock
from ..config import AmiEndpoint, Settings
from ..events import AmiLinkChanged, Event, PbxError
from ..queues.directory import QueueDirectory
from .ami import AmiClient, AmiPbx
from .calls import Adoption, CallTracker
from .frames import AmiEvent, AmiResponse
from .members import MemberTracker

log = logging.getLogger(__name__)

# Events that feed the member tracker (presence); every kept event feeds the call tracker.
MEMBER_EVENTS = frozenset(
    {"QueueMemberStatus", "QueueMemberAdded", "QueueMemberPause", "QueueMemberRemoved"}
)
# What the call tracker reads: the events of its handler table. Everything else (Newstate, Dial*,
# Bridge*, OriginateResponse, a third of what survives the noise filter) is dropped by the frame
# reader before parsing. tests/unit/test_bridge_events.py fails when the member tracker starts
# reading an event not listed above.
CALL_EVENTS = CallTracker().events_read
# The AMI client's own: FullyBooted marks a link ready, Shutdown is logged.
WANTED_EVENTS = CALL_EVENTS | MEMBER_EVENTS | {"FullyBooted", "Shutdown"}

# No AMI `Filter` action: manager.c registers it with the `system` write class, which would also
# let the bridge restart Asterisk and load modules. The noise is dropped by the account's
# `eventfilter` lines in manager.conf (asterisk-config/) and, whatever Asterisk sends, by the
# frame reader before a dict is built (keep_events).


# What a resync asks Asterisk about each call it adopts (Getvar on the caller's channel), and
# for how many calls at most (five actions each; a resync must not take minutes).
ADOPT_VARIABLES = ("QUEUE", "SERVICE", "LANG", "IVRPATH", "CASE")
ADOPT_GETVAR_CALLS = 200
ADOPT_GETVAR_SECONDS = 10.0  # a slow Asterisk: the rest are adopted without their variables

HIGH_WATER = 20_000
LOW_WATER = 2_000
# Events with refused number fields (`numbers.py`) logged per server and window; a stream of
# them must not flood the log: the rest are counted, and `bad_fields` in /health has them all.
BAD_LOG_BURST = 10
BAD_LOG_WINDOW = 60.0


def _utc(ts: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC)


class ServerLink:
    """One Asterisk: its client and its trackers."""

    def __init__(self, bridge: Bridge, endpoint: AmiEndpoint, client_options: Mapping[str, Any]):
        self.bridge = bridge
        self.name = endpoint.name
        settings = bridge.settings
        self.calls = CallTracker(endpoint.name, short_abandon_seconds=bridge.short_abandon)
        self.members = MemberTracker(server=endpoint.name)
        self.client = AmiClient(
            endpoint.host,
            endpoint.port,
            settings.ami_username,
            settings.ami_secret,
            name=endpoint.name,
            on_event=self.on_event,
            on_ready=self.resync,
            on_link=self.on_link,
            action_timeout=settings.ami_action_timeout,
            **{"keep_events": WANTED_EVENTS, "clock": bridge.clock.timestamp,
               **client_options},
        )
        self.resyncs = 0
        self.adopted = 0  # calls adopted by resyncs (live before we listened)
        self.last_timestamp = 0.0
        self._bad_window = -BAD_LOG_WINDOW  # monotonic start of the current log window
        self._bad_logged = 0
        self._bad_unlogged = 0

    @property
    def bad_fields(self) -> int:
        return self.calls.bad_fields + self.members.bad_fields

    def on_event(self, ev: AmiEvent) -> None:
        out = self.calls.feed(ev)
        if ev.name in MEMBER_EVENTS:
            more = self.members.feed(ev)
            out = [*out, *more] if out else more
        if self.calls.warnings or self.members.warnings:
            self.log_bad_fields()
        if out:
            self.bridge.emit(out)
        self.bridge.events_seen += 1

    def log_bad_fields(self) -> None:
        """One WARNING line per event with refused number fields, at most `BAD_LOG_BURST`
        a window; then one line saying how many were not logged."""
        now = time.monotonic()
        if now - self._bad_window >= BAD_LOG_WINDOW:
            if self._bad_unlogged:
                log.warning("AMI %s: %d more events with bad number fields were not logged "
                            "(bad_fields in /health counts them all)", self.name,
                            self._bad_unlogged)
            self._bad_window, self._bad_logged, self._bad_unlogged = now, 0, 0
        for warnings in (self.calls.warnings, self.members.warnings):
            for line in warnings:
                if self._bad_logged < BAD_LOG_BURST:
                    self._bad_logged += 1
                    log.warning("AMI %s: bad number field, not stored (figure derived from "
                                "event times where possible): %s", self.name, line)
                else:
                    self._bad_unlogged += 1
            warnings.clear()

    async def resync(self, client: AmiClient) -> None:
        """After every (re)connect: rebuild calls and members from what Asterisk has now.
        Calls that ended while we were away are closed by the tracker (once)."""
        since = self.calls.seq  # calls touched after this are alive on this link: spared
        clock = self.bridge.clock
        channels = await client.list_action("CoreShowChannels", during_resync=True)
        self.bridge.emit(list(self.calls.resync(channels, at=clock.timestamp(), since=since)))
        adoptions = list(self.calls.adoptions)
        await self.ask_variables(client, adoptions)
        status = await client.list_action("QueueStatus", during_resync=True)
        at = clock.timestamp()
        self.bridge.emit(list(self.members.from_queue_status(status, at=at)))
        if adoptions:
            # Calls live before we listened: how long each waiting caller has waited, and
            # which operator each bridged one is talking to (their console gets it back).
            self.calls.adopt_queue_entries(status, at)
            self.bridge.emit(self.calls.adopt_operators(self.members.members(), at))
            self.adopted += len(adoptions)
            log.info("AMI %s: adopted %d calls already under way", self.name, len(adoptions))
        if self.calls.warnings or self.members.warnings:
            self.log_bad_fields()
        self.resyncs += 1
        log.info("AMI %s: resynced (%d channels, %d queue status events, %d calls open)",
                 self.name, len(channels), len(status), self.calls.open_calls())

    async def ask_variables(self, client: AmiClient, adoptions: Sequence[Adoption]) -> None:
        """`Getvar` of the IVR's variables on each adopted call's caller channel (at most
        `ADOPT_GETVAR_CALLS` calls and `ADOPT_GETVAR_SECONDS`; a channel gone meanwhile simply
        answers nothing)."""
        deadline = time.monotonic() + ADOPT_GETVAR_SECONDS
        for adoption in adoptions[:ADOPT_GETVAR_CALLS]:
            if time.monotonic() > deadline:
                log.warning("AMI %s: no time left to ask the variables of every adopted call",
                            self.name)
                break
            if not adoption.channel:
                continue
            replies = await asyncio.gather(*(
                client.action("Getvar", {"Channel": adoption.channel, "Variable": var},
                              during_resync=True)
                for var in ADOPT_VARIABLES), return_exceptions=True)
            values = {var: r.headers.get("Value", "") for var, r in zip(ADOPT_VARIABLES, replies,
                                                                        strict=True)
                      if isinstance(r, AmiResponse)}
            failed = [r for r in replies if not isinstance(r, AmiResponse | PbxError)]
            if failed:
                raise failed[0]  # the link dropped: the next connect resyncs again
            self.calls.adopt_variables(adoption.key, values)

    def on_link(self, client: AmiClient, connected: bool, detail: str) -> None:
        now = self.bridge.clock.timestamp()
        if not connected:
            # Nothing is closed at the drop: the resync after the reconnect decides which calls
            # ended meanwhile (the tracker only marks where its events stopped).
            self.calls.on_disconnect(now)
        self.bridge.emit([AmiLinkChanged(self.name, connected, _utc(now), detail)])

    def close_open_calls(self, at: float) -> int:
        """Close every open call as partial (a replayed stream that ended mid-call)."""
        out = list(self.calls.close_all(at))
        self.bridge.emit(out)
        return len(out)


class Bridge:
    def __init__(
        self,
        settings: Settings,
        bus: BaseBus,
        *,
        thresholds: Mapping[str, float] | None = None,
        client_options: Mapping[str, Any] | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock
        self.thresholds: dict[str, float] = dict(thresholds or {})
        self.links = {
            ep.name: ServerLink(self, ep, client_options or {})
            for ep in settings.ami_endpoints()
        }
        self.pbx = AmiPbx({name: link.client for name, link in self.links.items()})
        self._outbox: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._publisher: asyncio.Task[None] | None = None
        self._meter: asyncio.Task[None] | None = None
        self.paused = False
        self.pauses = 0
        self.published = 0
        self.events_seen = 0
        self.events_per_second = 0.0

    def short_abandon(self, queue: str) -> float:
        return self.thresholds.get(queue, float(self.settings.short_abandon_seconds))

    def follow(self, directory: QueueDirectory) -> None:
        """Short-abandon thresholds per queue from the directory, now and after each reload."""

        def update(d: QueueDirectory) -> None:
            self.thresholds = {q.name: float(q.short_abandon_seconds) for q in d.all()}

        update(directory)
        directory.on_change(update)

    # --- the read path -------------------------------------------------------------------------

    def emit(self, events: list[Event]) -> None:
        if not events:
            return
        self._outbox.extend(events)
        self._idle.clear()
        self._wake.set()
        if not self.paused and len(self._outbox) > HIGH_WATER:
            self.paused = True
            self.pauses += 1
            log.warning("bridge: %d domain events waiting for the bus; pausing AMI reads",
                        len(self._outbox))
            for link in self.links.values():
                link.client.pause_reading()

    async def _publish_loop(self) -> None:
        outbox = self._outbox
        while True:
            await self._wake.wait()
            self._wake.clear()
            while outbox:
                event = outbox.popleft()
                await self.bus.publish(event)
                self.published += 1
                if self.paused and len(outbox) < LOW_WATER:
                    self.paused = False
                    log.info("bridge: caught up; resuming AMI reads")
                    for link in self.links.values():
                        link.client.resume_reading()
            self._idle.set()

    async def _meter_loop(self) -> None:
        last, last_at = self.events_seen, time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            self.events_per_second = (self.events_seen - last) / (now - last_at)
            last, last_at = self.events_seen, now

    async def flushed(self) -> None:
        """Every domain event emitted so far has been handed to the bus."""
        await self._idle.wait()

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._publisher = loop.create_task(self._publish_loop(), name="bridge:publish")
        self._meter = loop.create_task(self._meter_loop(), name="bridge:meter")
        for link in self.links.values():
            await link.client.start()

    async def close(self) -> None:
        for link in self.links.values():
            await link.client.close()
        # Hand what is left to the bus before stopping (records must not be lost on shutdown).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self.flushed()
        for task in (self._publisher, self._meter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def close_open_calls(self, at: float | None = None) -> int:
        return sum(link.close_open_calls(at if at is not None else self.clock.timestamp())
                   for link in self.links.values())

    def idle(self) -> bool:
        return all(link.calls.idle for link in self.links.values())

    def open_calls(self) -> int:
        return sum(link.calls.open_calls() for link in self.links.values())

    def bad_fields(self) -> int:
        """AMI number fields refused since start, every server (numbers.py)."""
        return sum(link.bad_fields for link in self.links.values())

    def health(self) -> dict[str, Any]:
        servers = {name: link.client.health() | {"open_calls": link.calls.open_calls(),
                                                 "resyncs": link.resyncs,
                                                 "adopted": link.adopted,
                                                 "bad_fields": link.bad_fields}
                   for name, link in self.links.items()}
        return {
            "ok": all(s["logged_in"] for s in servers.values()),
            "servers": servers,
            "events_per_second": round(self.events_per_second, 1),
            "events": self.events_seen,
            "frame_errors": sum(s["frame_errors"] for s in servers.values()),
            "bad_fields": self.bad_fields(),
            "open_calls": self.open_calls(),
            "outbox": len(self._outbox),
            "reads_paused": self.paused,
            "pauses": self.pauses,
        }
