"""The AMI connection: one `AmiClient` per Asterisk, and `AmiPbx`, the `Pbx` gateway over them.

Why a panoramisk *protocol* and not panoramisk's `Manager` (1.4, read in its source):
- `Manager` reconnects after a fixed 2 s with no backoff, rebuilds no state, and on `FullyBooted`
  sends again every action that had no reply: an `Originate` or `QueueAdd` in flight at a cut
  would run twice. We fail those with `PbxError` instead and resync ourselves.
- Its `Action` future never completes for `QueueAdd`: a reply "Added interface to queue" is taken
  for the start of an event list (`Action.multi`), so the caller waits forever; no action has a
  timeout; there is no MD5 challenge login.
- Its parser decodes every chunk to `str` and builds a dict for every frame (about 3x slower than
  a bare splitter, issue 10), and dispatch runs every event through every registered regex.
So `AmiProtocol` subclasses panoramisk's `AMIProtocol` (transport handling, `close()`), but its
`data_received` feeds our `FrameReader`, which drops VarSet/CEL/Newexten before building a dict,
and everything above the socket (login, ActionID matching, timeouts, reconnect, resync) is here.

Rules kept here:
- Replies are matched by `ActionID`, never by arrival order; list actions (QueueStatus,
  CoreShowChannels, QueueSummary) collect their events until `EventList: Complete`.
- Every action has a timeout and raises `PbxError` on an `Error` reply, a timeout or a cut.
- Nothing is ever resent after a cut: whatever was in flight fails; what was not sent yet waits
  (within its timeout) for the link to be back.
- Reconnect with capped exponential backoff and jitter; `FullyBooted` marks the link ready, then
  `on_ready` (the bridge's resync) runs once per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import random
import time
from collections.abc import Callable, Collection, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from panoramisk.ami_protocol import AMIProtocol

from ..clock import SYSTEM
from ..events import PbxError
from .frames import AmiEvent, AmiResponse, FrameReader, encode_action

log = logging.getLogger(__name__)

EventHandler = Callable[[AmiEvent], None]
ReadyHook = Callable[["AmiClient"], Coroutine[Any, Any, None]]
LinkHook = Callable[["AmiClient", bool, str], None]

# Actions whose events come as a list ended by `EventList: Complete`.
LIST_ACTIONS = frozenset(
    {"queuestatus", "queuesummary", "coreshowchannels", "status", "sippeers", "pjsipshowendpoints"}
)


@dataclass(slots=True)
class _Pending:
    name: str
    future: asyncio.Future[tuple[AmiResponse, list[AmiEvent]]]
    is_list: bool
    response: AmiResponse | None = None
    events: list[AmiEvent] = field(default_factory=list)


class AmiProtocol(AMIProtocol):  # type: ignore[misc]  # panoramisk ships no type hints
    """panoramisk's protocol with our frame reader in `data_received`."""

    def __init__(self, client: AmiClient) -> None:
        super().__init__()
        self.client = client
        self.reader = client.reader

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.client._connection_made(self)

    def data_received(self, data: bytes) -> None:
        client = self.client
        client.bytes_in += len(data)
        frames = self.reader.feed(data)
        if self.reader.bad_greeting is not None:
            client._bad_greeting(self, self.reader.bad_greeting)
            return
        greeted = client._greeted
        if greeted is not None and not greeted.done() and (
            frames or self.reader.greeting is not None
        ):
            client.greeting = self.reader.greeting
            greeted.set_result(None)
        if frames:
            client._on_frames(frames)

    def connection_lost(self, exc: Exception | None) -> None:
        # panoramisk's own connection_lost calls Manager.connection_lost: we have no Manager.
        self.closed = True
        self.client._connection_lost(self, exc)

    def write(self, data: bytes) -> None:
        if not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        # panoramisk's close() would queue these for a resend: never
        self.responses: dict[str, Any] = {}
        self.factory = None
        super().close()


class AmiClient:
    """One AMI endpoint: connect, log in, read events, send actions, reconnect forever."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        name: str = "default",
        on_event: EventHandler | None = None,
        on_ready: ReadyHook | None = None,
        on_link: LinkHook | None = None,
        auth: str = "md5",  # "md5" (Challenge, the secret never crosses the wire) or "plain"
        action_timeout: float = 5.0,
        connect_timeout: float = 5.0,
        boot_timeout: float = 5.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 10.0,
        ping_interval: float = 20.0,
        action_id_prefix: str | None = None,
        keep_noise: bool = False,
        keep_events: Collection[str] | None = None,
        events: bool = True,  # False: an actions-only session (`Events: off`, no FullyBooted wait)
        clock: Callable[[], float] = SYSTEM.timestamp,  # receipt time of events without a stamp
    ) -> None:
        if auth not in ("md5", "plain"):
            raise ValueError(f"auth must be 'md5' or 'plain', not {auth!r}")
        self.host, self.port, self.name = host, port, name
        self.username, self.secret, self.auth = username, secret, auth
        self.on_event: EventHandler = on_event or (lambda ev: None)
        self.on_ready = on_ready
        self.on_link = on_link
        self.action_timeout = action_timeout
        self.connect_timeout = connect_timeout
        self.boot_timeout = boot_timeout
        self.backoff_initial, self.backoff_max = backoff_initial, backoff_max
        self.ping_interval = ping_interval
        self.keep_noise = keep_noise
        self.events = events
        # Events the owner reads; the rest are dropped before a dict is built. While a list
        # action (QueueStatus...) is waiting, every event is kept so its items get through.
        self._keep = frozenset(e.encode() for e in keep_events) if keep_events else None
        self._prefix = action_id_prefix or f"cc{random.randrange(16**6):06x}"
        self._ids = itertools.count(1)
        self.clock = clock
        self.reader = FrameReader(keep_noise=keep_noise, keep_events=self._keep, clock=clock)
        self._old_errors = 0  # frame errors of earlier connections
        self._failures = 0  # connection attempts failed in a row
        self._protocol: AmiProtocol | None = None
        self._pending: dict[str, _Pending] = {}
        self._lost: asyncio.Future[None] | None = None
        self._greeted: asyncio.Future[None] | None = None
        self._booted: asyncio.Event = asyncio.Event()
        self.ready = asyncio.Event()  # logged in, booted and resynced: actions may go out
        self.logged_in = False
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # figures for /health
        self.connects = 0
        self.disconnects = 0
        self.bytes_in = 0
        self.events_in = 0
        self.last_error = ""
        self.last_event_at = 0.0
        self.last_event_lag: float | None = None
        self.greeting: str | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"ami:{self.name}"
            )

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop_connection("client closed")

    def pause_reading(self) -> None:
        if self._protocol is not None and not self._protocol.closed:
            with contextlib.suppress(RuntimeError, AttributeError):
                self._protocol.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._protocol is not None and not self._protocol.closed:
            with contextlib.suppress(RuntimeError, AttributeError):
                self._protocol.transport.resume_reading()

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with jitter (50-100% of the step)."""
        step: float = min(self.backoff_max, self.backoff_initial * (2 ** min(attempt, 30)))
        return step * random.uniform(0.5, 1.0)

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                if await self._session():
                    attempt = 0  # it was up: start the backoff again from the bottom
                    self._failures = 0
            except asyncio.CancelledError:
                raise
            except (OSError, PbxError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self._failures += 1
                # Loud on the first failure, then once a minute or so: an outage is one story.
                level = logging.WARNING if self._failures % 20 == 1 else logging.DEBUG
                log.log(level, "AMI %s (%s:%s): %s (attempt %d)", self.name, self.host,
                        self.port, self.last_error, self._failures)
            except Exception as exc:  # a bug: say so loudly, but keep the link coming back
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("AMI %s: unexpected failure; reconnecting", self.name)
            finally:
                self._drop_connection(self.last_error or "connection closed")
            if self._closing:
                break
            delay = self.backoff(attempt)
            attempt += 1
            log.info("AMI %s: reconnecting in %.2fs", self.name, delay)
            await asyncio.sleep(delay)

    async def _session(self) -> bool:
        """One connection, from connect to loss. True when it got as far as ready."""
        loop = asyncio.get_running_loop()
        self._old_errors += self.reader.errors
        self.reader = FrameReader(keep_noise=self.keep_noise, keep_events=self._keep,
                                  clock=self.clock)
        self._booted.clear()
        self._lost = loop.create_future()
        self._greeted = loop.create_future()
        async with asyncio.timeout(self.connect_timeout):
            await loop.create_connection(lambda: AmiProtocol(self), self.host, self.port)
        self.connects += 1
        await self._login()
        self.logged_in = True
        self.last_error = ""
        log.info("AMI %s: logged in to %s:%s (%s)", self.name, self.host, self.port,
                 self.greeting or "no greeting")
        if self.on_link is not None:
            self.on_link(self, True, "logged in")
        if not self.events:
            self._booted.set()  # no events on this session: FullyBooted never comes
        booted: asyncio.Future[Any] = loop.create_task(self._booted.wait())
        try:
            await asyncio.wait({booted, self._lost}, timeout=self.boot_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            booted.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await booted
        if self._lost.done():
            return False
        if not self._booted.is_set():
            log.warning("AMI %s: no FullyBooted within %.1fs; going on", self.name,
                        self.boot_timeout)
        if self.on_ready is not None:
            resync = loop.create_task(self.on_ready(self))
            try:
                await asyncio.wait({resync, self._lost}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not resync.done():
                    resync.cancel()
                try:
                    await resync
                except asyncio.CancelledError:
                    if not resync.cancelled():
                        raise  # we ourselves are being cancelled
                except (PbxError, OSError) as exc:
                    log.error("AMI %s: resync failed: %s", self.name, exc)
                except Exception:  # a bug in a tracker must not take the link down
                    log.exception("AMI %s: resync failed", self.name)
            if self._lost.done():
                return False
        self.ready.set()
        pinger = loop.create_task(self._pinger())
        try:
            await self._lost
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        return True

    async def _pinger(self) -> None:
        """A silent dead link (no FIN) is found by a Ping that gets no reply."""
        while True:
            await asyncio.sleep(self.ping_interval)
            try:
                await self.action("Ping", timeout=min(self.action_timeout, self.ping_interval))
            except PbxError as exc:
                log.warning("AMI %s: ping failed (%s); dropping the link", self.name, exc)
                self._drop_connection("ping timeout")
                return

    async def _login(self) -> None:
        # Asterisk greets first; a server that does not is not an AMI.
        assert self._greeted is not None
        try:
            async with asyncio.timeout(self.connect_timeout):
                await asyncio.shield(self._greeted)
        except TimeoutError:
            raise PbxError("no AMI greeting from the server") from None
        headers: dict[str, str]
        if self.auth == "md5":
            challenge = await self._send_raw("Challenge", {"AuthType": "MD5"})
            key = challenge[0].headers.get("Challenge")
            if not challenge[0].ok or not key:
                raise PbxError(f"login refused: {challenge[0].message or 'no challenge'}")
            digest = hashlib.md5((key + self.secret).encode()).hexdigest()
            headers = {"AuthType": "MD5", "Username": self.username, "Key": digest,
                       "Events": "on" if self.events else "off"}
        else:
            headers = {"Username": self.username, "Secret": self.secret,
                       "Events": "on" if self.events else "off"}
        resp, _ = await self._send_raw("Login", headers)
        if not resp.ok:
            raise PbxError(f"login refused: {resp.message}")

    # --- protocol callbacks --------------------------------------------------------------------

    def _connection_made(self, protocol: AmiProtocol) -> None:
        self._protocol = protocol

    def _bad_greeting(self, protocol: AmiProtocol, why: str) -> None:
        """Not an Asterisk (or a hostile one): fail the log-in now and close, rather than read
        on until the greeting timeout."""
        greeted = self._greeted
        if greeted is not None and not greeted.done():
            greeted.set_exception(PbxError(f"bad AMI greeting: {why}"))
        if not protocol.closed:
            protocol.close()

    def _connection_lost(self, protocol: AmiProtocol, exc: Exception | None) -> None:
        if protocol is not self._protocol:
            return
        self._drop_connection(f"connection lost: {exc}" if exc else "connection closed by peer")

    def _drop_connection(self, why: str) -> None:
        protocol, self._protocol = self._protocol, None
        was_up = self.logged_in
        self.logged_in = False
        self.ready.clear()
        self._booted.clear()
        if protocol is not None and not protocol.closed:
            protocol.close()
        # Fail everything in flight: a resend could run an Originate or a QueueAdd twice.
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(
                    PbxError(f"{p.name}: AMI link to {self.name} lost before the reply "
                             "(not resent)")
                )
                p.future.exception()  # mark retrieved: the waiter may already be gone
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if protocol is not None:
            self.disconnects += 1
        if was_up and self.on_link is not None:
            self.on_link(self, False, why)

    def _on_frames(self, frames: Sequence[AmiEvent | AmiResponse]) -> None:
        pending = self._pending
        on_event = self.on_event
        count = 0
        last: AmiEvent | None = None
        for frame in frames:
            if type(frame) is AmiEvent:
                if pending:
                    aid = frame.headers.get("ActionID")
                    if aid is not None:
                        p = pending.get(aid)
                        if p is not None and p.is_list:
                            p.events.append(frame)
                            if frame.headers.get("EventList") == "Complete":
                                self._finish(aid, p)
                            continue
                name = frame.name
                if name == "FullyBooted":
                    self._booted.set()
                elif name == "Shutdown":
                    log.warning("AMI %s: Asterisk is shutting down (%s)", self.name,
                                frame.headers.get("Restart", ""))
                count += 1
                last = frame
                try:
                    on_event(frame)
                except Exception:  # one bad event must not stop the link
                    log.exception("AMI %s: event handler failed on %s", self.name, frame.name)
            else:
                self._on_response(frame)
        if count:
            self.events_in += count
            assert last is not None
            self.last_event_at = last.received_at
            raw = last.headers.get("Timestamp")
            if raw:
                with contextlib.suppress(ValueError):
                    self.last_event_lag = last.received_at - float(raw)

    def _on_response(self, resp: AmiResponse) -> None:
        aid = resp.action_id
        p = self._pending.get(aid) if aid is not None else None
        if p is None or aid is None:
            log.debug("AMI %s: reply to no pending action (%s): %s", self.name, aid, resp.status)
            return
        p.response = resp
        if not p.is_list or not resp.ok or not _starts_list(resp):
            self._finish(aid, p)

    def _finish(self, aid: str, p: _Pending) -> None:
        self._pending.pop(aid, None)
        if p.future.done():
            return
        resp = p.response or AmiResponse("Success", {"ActionID": aid})
        p.future.set_result((resp, p.events))

    # --- actions -------------------------------------------------------------------------------

    def _next_id(self) -> str:
        return f"{self._prefix}-{next(self._ids)}"

    async def _send_raw(
        self, name: str, headers: Mapping[str, str | list[str]], *,
        timeout: float | None = None, shown_timeout: float | None = None,
    ) -> tuple[AmiResponse, list[AmiEvent]]:
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise PbxError(f"{name}: not connected to AMI {self.name}")
        timeout = self.action_timeout if timeout is None else timeout
        aid = self._next_id()
        fut: asyncio.Future[tuple[AmiResponse, list[AmiEvent]]] = (
            asyncio.get_running_loop().create_future()
        )
        is_list = name.lower() in LIST_ACTIONS
        self._pending[aid] = _Pending(name, fut, is_list)
        if is_list:
            self.reader.keep_events = None
        protocol.write(encode_action(name, {"ActionID": aid, **headers}))
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            shown = timeout if shown_timeout is None else shown_timeout
            raise PbxError(f"{name}: no reply from AMI {self.name} within {shown:g}s") from None
        finally:
            self._pending.pop(aid, None)
            if is_list and not any(p.is_list for p in self._pending.values()):
                self.reader.keep_events = self._keep

    async def send(
        self, name: str, headers: Mapping[str, str | list[str]] | None = None, *,
        timeout: float | None = None,
    ) -> tuple[AmiResponse, list[AmiEvent]]:
        """Send an action once; wait (within `timeout`) for the link if it is down.
        Returns the reply and, for list actions, the listed events. Raises `PbxError`."""
        timeout = self.action_timeout if timeout is None else timeout
        started = time.monotonic()
        if not self.ready.is_set():
            try:
                async with asyncio.timeout(timeout):
                    await self.ready.wait()
            except TimeoutError:
                raise PbxError(
                    f"{name}: AMI {self.name} not connected ({self.last_error or 'connecting'})"
                ) from None
        left = max(0.01, timeout - (time.monotonic() - started))
        resp, events = await self._send_raw(name, headers or {}, timeout=left,
                                            shown_timeout=timeout)
        if not resp.ok:
            raise PbxError(f"{name}: {resp.message or resp.status}")
        return resp, events

    async def action(
        self, name: str, headers: Mapping[str, str | list[str]] | None = None, *,
        timeout: float | None = None, during_resync: bool = False,
    ) -> AmiResponse:
        """One action's reply. `during_resync` sends before the link is marked ready (the
        resync's own questions, e.g. Getvar of an adopted call)."""
        if during_resync:
            resp, _ = await self._send_raw(name, headers or {}, timeout=timeout)
            if not resp.ok:
                raise PbxError(f"{name}: {resp.message or resp.status}")
            return resp
        return (await self.send(name, headers, timeout=timeout))[0]

    async def list_action(
        self, name: str, headers: Mapping[str, str | list[str]] | None = None, *,
        timeout: float | None = None, during_resync: bool = False,
    ) -> list[AmiEvent]:
        """QueueStatus, CoreShowChannels, QueueSummary: the events until `EventList: Complete`.
        `during_resync` sends before the link is marked ready (the resync itself needs it)."""
        if during_resync:
            resp, events = await self._send_raw(name, headers or {}, timeout=timeout)
            if not resp.ok:
                raise PbxError(f"{name}: {resp.message or resp.status}")
        else:
            _, events = await self.send(name, headers, timeout=timeout)
        # The closing `...Complete` event is bookkeeping, not an item.
        return [e for e in events if e.headers.get("EventList") != "Complete"]

    def health(self) -> dict[str, Any]:
        return {
            "ok": self.logged_in,
            "host": f"{self.host}:{self.port}",
            "logged_in": self.logged_in,
            "ready": self.ready.is_set(),
            "connects": self.connects,
            "disconnects": self.disconnects,
            "events": self.events_in,
            "frame_errors": self._old_errors + self.reader.errors,
            "last_event_lag_s": None if self.last_event_lag is None
            else round(self.last_event_lag, 3),
            "pending_actions": len(self._pending),
            **({"last_error": self.last_error} if self.last_error else {}),
        }


def _starts_list(resp: AmiResponse) -> bool:
    if resp.headers.get("EventList", "").lower() == "start":
        return True
    return "will follow" in resp.message.lower()


class AmiPbx:
    """The `Pbx` gateway of events.py over one or several Asterisks.

    Queue membership goes to every server (an operator serves a queue wherever it runs) and
    succeeds when at least one accepts; channel actions go to the named server, or are tried
    on each until one knows the channel. Errors are `PbxError` with Asterisk's message."""

    def __init__(self, clients: Mapping[str, AmiClient]) -> None:
        self.clients = dict(clients)

    def _pick(self, server: str | None) -> list[AmiClient]:
        if not self.clients:
            raise PbxError("no AMI endpoint configured (AMI is disabled)")
        if server is None:
            return list(self.clients.values())
        try:
            return [self.clients[server]]
        except KeyError:
            raise PbxError(f"unknown Asterisk server {server!r}") from None

    async def _on_any(
        self, server: str | None, name: str, headers: Mapping[str, str | list[str]]
    ) -> None:
        errors: list[str] = []
        for client in self._pick(server):
            try:
                await client.action(name, headers)
                return
            except PbxError as exc:
                errors.append(f"{client.name}: {exc}" if len(self.clients) > 1 else str(exc))
        raise PbxError("; ".join(errors))

    async def _on_all(
        self, server: str | None, name: str, headers: Mapping[str, str | list[str]]
    ) -> None:
        clients = self._pick(server)
        results = await asyncio.gather(
            *(c.action(name, headers) for c in clients), return_exceptions=True
        )
        errors = [f"{c.name}: {r}" if len(clients) > 1 else str(r)
                  for c, r in zip(clients, results, strict=True) if isinstance(r, BaseException)]
        if len(errors) == len(clients):
            raise PbxError("; ".join(errors))
        for err in errors:
            log.warning("%s partly failed: %s", name, err)

    async def queue_add(
        self, queue: str, interface: str, member_name: str, *, paused: bool = False,
        penalty: int = 0, server: str | None = None,
    ) -> None:
        await self._on_all(server, "QueueAdd", {
            "Queue": queue, "Interface": interface, "MemberName": member_name,
            "Paused": "true" if paused else "false", "Penalty": str(penalty),
        })

    async def queue_remove(self, queue: str, interface: str, *, server: str | None = None) -> None:
        await self._on_all(server, "QueueRemove", {"Queue": queue, "Interface": interface})

    async def queue_pause(
        self, interface: str, paused: bool, *, queue: str | None = None, reason: str = "",
        server: str | None = None,
    ) -> None:
        headers = {"Interface": interface, "Paused": "true" if paused else "false"}
        if queue:
            headers["Queue"] = queue
        if reason:
            headers["Reason"] = reason
        await self._on_all(server, "QueuePause", headers)

    async def hangup(self, channel: str, *, server: str | None = None) -> None:
        await self._on_any(server, "Hangup", {"Channel": channel})

    async def redirect(
        self, channel: str, context: str, exten: str, *, priority: int = 1,
        server: str | None = None,
    ) -> None:
        await self._on_any(server, "Redirect", {
            "Channel": channel, "Context": context, "Exten": exten, "Priority": str(priority),
        })

    async def originate(
        self, channel: str, context: str, exten: str, *, caller_id: str = "",
        variables: dict[str, str] | None = None, server: str | None = None,
    ) -> None:
        # Never on several servers, never retried: an Originate places a real call.
        client = self._pick(server)[0]
        headers: dict[str, str | list[str]] = {
            "Channel": channel, "Context": context, "Exten": exten, "Priority": "1",
            "Async": "true",
        }
        if caller_id:
            headers["CallerID"] = caller_id
        if variables:
            headers["Variable"] = [f"{k}={v}" for k, v in variables.items()]
        await client.action("Originate", headers)
