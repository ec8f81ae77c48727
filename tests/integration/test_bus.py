"""One contract, two transports: LocalBus in-process and RedisBus across "processes" (two bus
instances with their own origin, on a real Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from contactcenter.bus import BaseBus, LocalBus, RedisBus
from contactcenter.events import BroadcastMessage, CaseChanged, Event
from tests.conftest import until

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def msg(i: int) -> BroadcastMessage:
    return BroadcastMessage(sender="sup", text=str(i), at=T0)


@pytest.fixture(params=["local", "redis"])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[BaseBus, BaseBus]]:
    """(publisher side, subscriber side): the same bus for local, two processes for Redis."""
    if request.param == "local":
        bus = LocalBus()
        yield bus, bus
        await bus.close()
        return
    url = request.getfixturevalue("redis_url")
    channel = f"cc:test:{uuid.uuid4().hex}"
    a, b = RedisBus(url, channel=channel), RedisBus(url, channel=channel)
    await a.start()
    await b.start()
    await asyncio.wait_for(b.subscribed.wait(), 5)
    yield a, b
    await a.close()
    await b.close()


class Collector:
    def __init__(self) -> None:
        self.got: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.got.append(event)


async def test_order_per_publisher_and_many_subscribers(pair: tuple[BaseBus, BaseBus]) -> None:
    pub, sub = pair
    collectors = [Collector() for _ in range(5)]
    for c in collectors:
        sub.subscribe(c)
    for i in range(300):
        await pub.publish(msg(i))
    for c in collectors:
        await until(lambda c=c: len(c.got) == 300)
        assert [e.text for e in c.got] == [str(i) for i in range(300)]  # type: ignore[attr-defined]


async def test_type_filter_and_unsubscribe(pair: tuple[BaseBus, BaseBus]) -> None:
    pub, sub = pair
    only_cases, everything = Collector(), Collector()
    s1 = sub.subscribe(only_cases, types=(CaseChanged,))
    sub.subscribe(everything)
    await pub.publish(msg(1))
    await pub.publish(CaseChanged(number="311-2026-000001", status="open", citizen_id=None, at=T0))
    await until(lambda: len(everything.got) == 2)
    assert [type(e) for e in only_cases.got] == [CaseChanged]
    await s1.close()
    await pub.publish(CaseChanged(number="311-2026-000002", status="open", citizen_id=None, at=T0))
    await until(lambda: len(everything.got) == 3)
    await asyncio.sleep(0.05)
    assert len(only_cases.got) == 1


async def test_a_failing_subscriber_does_not_break_others(pair: tuple[BaseBus, BaseBus]) -> None:
    pub, sub = pair
    good = Collector()

    async def bad(event: Event) -> None:
        raise RuntimeError("boom")

    bad_sub = sub.subscribe(bad)
    sub.subscribe(good)
    for i in range(10):
        await pub.publish(msg(i))
    await until(lambda: len(good.got) == 10)
    await until(lambda: bad_sub.failed == 10)


async def test_slow_subscriber_is_bounded_and_counted() -> None:
    bus = LocalBus()
    gate = asyncio.Event()
    fast = Collector()

    async def slow(event: Event) -> None:
        await gate.wait()

    sub = bus.subscribe(slow, maxsize=5)
    bus.subscribe(fast)
    for i in range(20):
        await bus.publish(msg(i))
    await until(lambda: len(fast.got) == 20)
    assert sub.dropped >= 14
    assert bus.health()["dropped"] == sub.dropped
    gate.set()
    await bus.close()


async def test_local_delivery_does_not_depend_on_redis(redis_url: str) -> None:
    """The case writer lives in the publishing process: it must get events with Redis gone."""
    bus = RedisBus("redis://127.0.0.1:1/0", channel="cc:test:dead")  # nothing listens there
    await bus.start()
    got = Collector()
    bus.subscribe(got)
    await bus.publish(msg(1))
    await until(lambda: len(got.got) == 1)
    assert bus.health()["ok"] is False
    await bus.close()


async def test_redis_reconnects_after_the_server_drops_the_connection(redis_url: str) -> None:
    channel = f"cc:test:{uuid.uuid4().hex}"
    a, b = RedisBus(redis_url, channel=channel), RedisBus(redis_url, channel=channel)
    await a.start()
    await b.start()
    got = Collector()
    b.subscribe(got)
    await asyncio.wait_for(b.subscribed.wait(), 5)
    await a.publish(msg(0))
    await until(lambda: len(got.got) == 1)

    admin = aioredis.from_url(redis_url)
    killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1
    await until(lambda: b.reconnects >= 1, timeout=10)
    await asyncio.wait_for(b.subscribed.wait(), 10)
    for i in range(1, 6):
        await a.publish(msg(i))
    await until(lambda: len(got.got) == 6, timeout=10)
    assert [e.text for e in got.got] == ["0", "1", "2", "3", "4", "5"]  # type: ignore[attr-defined]
    await admin.aclose()
    await a.close()
    await b.close()


async def listening(redis_url: str) -> tuple[RedisBus, Collector, Any, str]:
    """A started bus on a fresh channel with a collecting subscriber, and a plain Redis client
    to publish raw messages on that channel (what another process, or garbage, would send)."""
    channel = f"cc:test:{uuid.uuid4().hex}"
    b = RedisBus(redis_url, channel=channel)
    await b.start()
    got = Collector()
    b.subscribe(got)
    await asyncio.wait_for(b.subscribed.wait(), 5)
    return b, got, aioredis.from_url(redis_url), channel


async def test_malformed_redis_message_is_ignored(redis_url: str) -> None:
    b, got, admin, channel = await listening(redis_url)
    await admin.publish(channel, b"\xff not json")
    await admin.publish(channel, b'{"origin": "x", "event": {"type": "Nope"}}')
    await admin.publish(channel, '{"origin": "x", "event": ' + msg(7).to_json() + "}")
    await until(lambda: len(got.got) == 1)
    assert got.got[0] == msg(7)
    await admin.aclose()
    await b.close()


async def test_a_batch_message_delivers_its_good_events_in_order(redis_url: str) -> None:
    """The sender packs what queued up into one message; a bad item costs only itself, and a
    process skips its own batches (issue 10)."""
    b, got, admin, channel = await listening(redis_url)
    await admin.publish(channel, '{"origin": "x", "events": [' + msg(1).to_json()
                        + ', {"type": "Nope"}, ' + msg(2).to_json() + "]}")
    await admin.publish(channel, '{"origin": "x", "events": 5}')
    await admin.publish(channel, '{"origin": "' + b.origin + '", "events": ['
                        + msg(9).to_json() + "]}")  # an echo of our own: skipped
    await admin.publish(channel, '{"origin": "x", "event": ' + msg(3).to_json() + "}")
    await until(lambda: len(got.got) == 3)
    await asyncio.sleep(0.1)
    assert got.got == [msg(1), msg(2), msg(3)]
    await admin.aclose()
    await b.close()


async def test_claim_is_won_by_one_process(pair: tuple[BaseBus, BaseBus]) -> None:
    """What both web processes react to (a wrap-up's QueuePause) is done by one of them."""
    a, b = pair
    key = f"wrapup-end:default:{uuid.uuid4().hex}:PJSIP/1001"
    first, second = await asyncio.gather(a.claim(key), b.claim(key))
    if a is b:  # one process: it always acts
        assert first and second
    else:
        assert sorted([first, second]) == [False, True]
        assert await a.claim(key) is False and await b.claim(key) is False
        assert await a.claim(key + "-other") is True


async def test_claim_acts_locally_when_redis_is_unreachable() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0", channel=f"cc:test:{uuid.uuid4().hex}")
    await bus.start()
    try:
        assert await asyncio.wait_for(bus.claim("k"), 10) is True
        assert bus.claim_errors == 1
    finally:
        await bus.close()


async def test_lossless_subscriber_makes_the_publisher_wait_and_loses_nothing() -> None:
    bus = LocalBus()
    got: list[int] = []
    gate = asyncio.Event()

    async def slow(event: Event) -> None:
        await gate.wait()
        assert isinstance(event, BroadcastMessage)
        got.append(int(event.text))

    sub = bus.subscribe(slow, maxsize=5, lossless=True)
    publisher = asyncio.get_running_loop().create_task(_publish_all(bus, 50))
    await until(lambda: sub.waits >= 1)  # past 5 queued, publish waits
    assert not publisher.done() and sub.queue.qsize() <= 6
    gate.set()
    await publisher
    await bus.drain()
    assert got == list(range(50)) and sub.dropped == 0
    await bus.close()


async def _publish_all(bus: BaseBus, n: int) -> None:
    for i in range(n):
        await bus.publish(msg(i))


async def test_a_bounded_subscriber_is_told_when_it_drops() -> None:
    bus = LocalBus()
    gate = asyncio.Event()
    told: list[int] = []

    async def slow(event: Event) -> None:
        await gate.wait()

    sub = bus.subscribe(slow, maxsize=3, on_drop=told.append)
    for i in range(10):
        await bus.publish(msg(i))
    assert told and told[-1] == sub.dropped and sub.dropped >= 6
    assert bus.health()["dropped_by"] == {sub.name: sub.dropped}
    gate.set()
    await bus.close()
