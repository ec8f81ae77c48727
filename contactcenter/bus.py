"""One bus, two transports.

Every domain event is published once. Subscribers in the same process always get it directly
(local-first), so the case writer never depends on pub/sub delivery. With Redis, the event is also
sent to the other processes on a Redis pub/sub channel; each process skips its own echoes by an
origin id.

Each subscription has its own bounded queue and worker task: a slow or failing subscriber can
neither stall the publisher (the AMI reader) nor the other subscribers. When a queue is full the
event is dropped for that subscriber only, counted, logged, and the subscriber is told
(`on_drop`: a derived view marks itself stale and rebuilds from the store); `health()` reports it.

A `lossless` subscription (the case writer: a record must never be dropped) never drops: its
queue has no limit, and past `maxsize` waiting events `publish` waits for it (backpressure up
to the bridge, which then stops reading the AMI sockets). Events from other processes (Redis)
are queued without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .events import Event, EventDecodeError, event_from_dict

log = logging.getLogger(__name__)

Handler = Callable[[Event], Awaitable[None]]


class Subscription:
    def __init__(
        self,
        bus: BaseBus,
        handler: Handler,
        types: tuple[type[Event], ...] | None,
        name: str,
        maxsize: int,
        lossless: bool = False,
        on_drop: Callable[[int], None] | None = None,
    ) -> None:
        self.bus = bus
        self.handler = handler
        self.types = types
        self.name = name or getattr(handler, "__qualname__", repr(handler))
        self.lossless = lossless
        self.high_water = maxsize
        self.queue: asyncio.Queue[Event] = asyncio.Queue(0 if lossless else maxsize)
        self.room = asyncio.Event()  # lossless: below high water (publish may go on)
        self.room.set()
        self.waits = 0  # lossless: times a publisher waited for this subscriber
        self.on_drop = on_drop
        self.dropped = 0
        self.failed = 0
        self._last_warning = 0.0
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"bus:{self.name}")

    def wants(self, event: Event) -> bool:
        return self.types is None or isinstance(event, self.types)

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.on_drop is not None:
                try:
                    self.on_drop(self.dropped)
                except Exception:  # the publisher (the AMI reader) must not fail for it
                    log.exception("bus subscriber %s: on_drop failed", self.name)
            now = time.monotonic()
            if now - self._last_warning > 5:
                self._last_warning = now
                log.warning(
                    "bus subscriber %s is behind (%d queued): dropped %d events so far",
                    self.name, self.queue.qsize(), self.dropped,
                )
            return
        if self.lossless and self.queue.qsize() >= self.high_water:
            self.room.clear()

    async def _run(self) -> None:
        while True:
            event = await self.queue.get()
            try:
                await self.handler(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failed += 1
                log.exception("bus subscriber %s failed on %s", self.name, type(event).__name__)
            finally:
                self.queue.task_done()
                if not self.room.is_set() and self.queue.qsize() < self.high_water:
                    self.room.set()

    async def drain(self) -> None:
        """Until the handler has taken everything queued, or its task has ended (cancelled or
        broken: nothing will ever take the rest, so waiting on would hang a shutdown)."""
        if self.task.done():
            return
        joined = asyncio.ensure_future(self.queue.join())
        try:
            await asyncio.wait({joined, self.task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            joined.cancel()

    async def close(self) -> None:
        self.bus._subs.discard(self)
        self.room.set()  # a publisher waiting for it goes on
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


CLAIM_TTL = 3600  # seconds a claim is remembered: longer than any process lags behind


class BaseBus:
    kind = "base"

    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self.published = 0

    def subscribe(
        self,
        handler: Handler,
        *,
        types: tuple[type[Event], ...] | None = None,
        name: str = "",
        maxsize: int = 10_000,
        lossless: bool = False,
        on_drop: Callable[[int], None] | None = None,
    ) -> Subscription:
        sub = Subscription(self, handler, types, name, maxsize, lossless, on_drop)
        self._subs.add(sub)
        return sub

    def _deliver_local(self, event: Event) -> None:
        for sub in tuple(self._subs):
            if sub.wants(event):
                sub.offer(event)

    async def _backpressure(self) -> None:
        """Wait while a lossless subscriber is past its high water (it never drops)."""
        for sub in tuple(self._subs):
            if not sub.room.is_set():
                sub.waits += 1
                await sub.room.wait()

    async def publish(self, event: Event) -> None:
        raise NotImplementedError

    async def claim(self, key: str, ttl: int = CLAIM_TTL) -> bool:
        """True in exactly one of the processes sharing this bus, for a reaction to an event
        that must happen once however many web processes hear it (an Asterisk action, a row
        update). One process: always True."""
        return True

    async def drain(self) -> None:
        """Wait until every local subscriber has handled what it was given (tests, shutdown)."""
        for sub in tuple(self._subs):
            await sub.drain()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        for sub in tuple(self._subs):
            await sub.close()

    def health(self) -> dict[str, Any]:
        return {
            "ok": True,
            "kind": self.kind,
            "subscribers": len(self._subs),
            "backlog": max((s.queue.qsize() for s in self._subs), default=0),
            "dropped": sum(s.dropped for s in self._subs),
            "dropped_by": {s.name: s.dropped for s in self._subs if s.dropped},
            "backpressure_waits": sum(s.waits for s in self._subs),
        }


class LocalBus(BaseBus):
    kind = "local"

    async def publish(self, event: Event) -> None:
        self.published += 1
        self._deliver_local(event)
        await self._backpressure()


SEND_BATCH = 500  # events per Redis message


class RedisBus(BaseBus):
    """Local-first delivery plus Redis pub/sub to the other processes."""

    kind = "redis"
    CHANNEL = "cc:events"

    def __init__(self, url: str, *, channel: str | None = None, outbox_size: int = 50_000) -> None:
        super().__init__()
        self.url = url
        self.channel = channel or self.CHANNEL
        self.origin = uuid.uuid4().hex
        self._head = f'{{"origin":"{self.origin}"'  # every message we send starts with it
        self._outbox: asyncio.Queue[str] = asyncio.Queue(outbox_size)
        self._tasks: list[asyncio.Task[None]] = []
        self._redis: Any = None
        self.connected = False
        self.subscribed = asyncio.Event()
        self.outbox_dropped = 0
        self.claim_errors = 0
        self.reconnects = 0
        self.last_error = ""

    async def claim(self, key: str, ttl: int = CLAIM_TTL) -> bool:
        """SET NX on the shared Redis. Redis unreachable: True (the action is repeated by each
        process, as before claims, rather than done by none)."""
        if self._redis is None:
            return True
        try:
            won = await self._redis.set(f"{self.channel}:claim:{key}", self.origin, nx=True,
                                        ex=ttl)
        except Exception as exc:  # any Redis failure: act locally
            self.claim_errors += 1
            log.warning("redis bus: claim %s not checked (%s); acting here", key, exc)
            return True
        return bool(won)

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=None, health_check_interval=5
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._sender(), name="redisbus:sender"),
            loop.create_task(self._listener(), name="redisbus:listener"),
        ]

    async def publish(self, event: Event) -> None:
        self.published += 1
        self._deliver_local(event)
        payload = json.dumps(event.to_dict(), separators=(",", ":"))
        try:
            self._outbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.outbox_dropped += 1
            if self.outbox_dropped % 1000 == 1:
                log.warning("redis bus outbox full: %d events not sent to other processes",
                            self.outbox_dropped)
        await self._backpressure()

    async def _sender(self) -> None:
        backoff = 0.1
        outbox = self._outbox
        while True:
            # Whatever queued up meanwhile goes in one pipeline, in order: one round trip per
            # batch, not per event (a busy bridge loop made one-at-a-time the bottleneck of
            # pops on other processes, issue 10).
            batch = [await outbox.get()]
            while len(batch) < SEND_BATCH and not outbox.empty():
                batch.append(outbox.get_nowait())
            # ...and in one message: `{"origin": ..., "events": [...]}` (a single event keeps the
            # `"event"` form). Redis commands and our own echoes are then paid per batch.
            if len(batch) == 1:
                message = f'{self._head},"event":{batch[0]}}}'
            else:
                message = f'{self._head},"events":[{",".join(batch)}]}}'
            while True:
                try:
                    await self._redis.publish(self.channel, message)
                    backoff = 0.1
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # redis.ConnectionError, TimeoutError, OSError
                    self.last_error = f"publish: {exc}"
                    log.warning("redis publish failed (%s); retrying in %.1fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)

    async def _listener(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.connected = True
                self.subscribed.set()
                backoff = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=5.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    self._on_message(msg["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                self.subscribed.clear()
                self.reconnects += 1
                self.last_error = f"subscribe: {exc}"
                log.warning("redis bus lost its subscription (%s); reconnecting in %.1fs",
                            exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _on_message(self, raw: bytes | str) -> None:
        try:
            if (raw if isinstance(raw, str) else raw[:80].decode("ascii", "replace")).startswith(
                self._head
            ):
                return  # our own echo: not even decoded
            data = json.loads(raw)
            if data.get("origin") == self.origin:
                return
            items = data["events"] if "events" in data else [data["event"]]
            if not isinstance(items, list):
                raise TypeError("events is not a list")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("redis bus: ignored a malformed message (%s)", exc)
            return
        for item in items:  # one bad event in a batch costs only itself
            try:
                event = event_from_dict(item)
            except (ValueError, KeyError, TypeError, AttributeError, EventDecodeError) as exc:
                log.warning("redis bus: ignored a malformed event (%s)", exc)
                continue
            self._deliver_local(event)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
        await super().close()

    def health(self) -> dict[str, Any]:
        out = super().health()
        out.update(
            ok=self.connected,
            outbox=self._outbox.qsize(),
            outbox_dropped=self.outbox_dropped,
            claim_errors=self.claim_errors,
            reconnects=self.reconnects,
        )
        if self.last_error:
            out["last_error"] = self.last_error
        return out


def make_bus(redis_url: str, channel: str = "") -> BaseBus:
    return RedisBus(redis_url, channel=channel or None) if redis_url else LocalBus()
