"""Redis itself restarts (a private redis-server we stop and start again on the same port):
the bus reconnects, other processes receive again, and in-process subscribers (the case writer)
never miss an event, even those published while Redis was down."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from contactcenter.bus import RedisBus
from contactcenter.events import BroadcastMessage, Event
from tests.conftest import real_clock_env, until

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    def __init__(self, tmp: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            pytest.fail("redis-server is not installed (`make test` needs Redis)")
        self.exe, self.tmp, self.port = exe, tmp, _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=real_clock_env(),
        )

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def msg(i: int) -> BroadcastMessage:
    return BroadcastMessage(sender="sup", text=str(i), at=T0)


async def test_redis_restart(private_redis: PrivateRedis) -> None:
    url = f"redis://127.0.0.1:{private_redis.port}/0"
    bridge, web = RedisBus(url), RedisBus(url)  # two "processes"
    writer_got: list[Event] = []
    web_got: list[Event] = []

    async def writer(e: Event) -> None:
        writer_got.append(e)

    async def console(e: Event) -> None:
        web_got.append(e)

    bridge.subscribe(writer)
    web.subscribe(console)
    # the server may still be starting: the bus retries by itself
    await bridge.start()
    await web.start()
    await asyncio.wait_for(web.subscribed.wait(), 10)
    await bridge.publish(msg(0))
    await until(lambda: len(web_got) == 1, timeout=5)

    private_redis.stop()
    await until(lambda: not web.connected, timeout=10)
    for i in range(1, 4):  # published while Redis is down
        await bridge.publish(msg(i))
    await until(lambda: len(writer_got) == 4, timeout=5)
    assert [e.text for e in writer_got] == ["0", "1", "2", "3"]  # type: ignore[attr-defined]
    assert web.health()["ok"] is False

    private_redis.start()
    await until(lambda: web.connected, timeout=15)
    await asyncio.wait_for(web.subscribed.wait(), 10)
    await bridge.publish(msg(4))
    await until(lambda: any(e.text == "4" for e in web_got), timeout=10)  # type: ignore[attr-defined]
    assert web.reconnects >= 1
    await until(lambda: len(writer_got) == 5, timeout=5)
    assert [e.text for e in writer_got] == ["0", "1", "2", "3", "4"]  # type: ignore[attr-defined]
    await bridge.close()
    await web.close()
