"""Issue 20, FastAGI slot exhaustion: 2,010 peers that went silent at the first media command
held every IVR slot for 300 s, so real callers were refused, and the cap could be exceeded (it
was checked before the `agi_*` block, counted after it).

Real servers on port 0, real sockets; strangers connect from 127.0.0.2, Asterisk from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections.abc import AsyncIterator

import pytest

from contactcenter.telephony.agi import AgiChannel, FastAgiServer
from tests.agi_fake import Caller, agi_block
from tests.conftest import until
from tests.ivr_support import FakeStore, Recorder, file_menu, running_ivr

ASTERISK = (ipaddress.ip_network("127.0.0.1/32"),)


async def peer(port: int, source: str = "127.0.0.1",
               data: bytes = b"") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    if data:
        writer.write(data)
        await writer.drain()
    return reader, writer


async def silent_at_first_media(port: int, source: str = "127.0.0.1") -> asyncio.StreamWriter:
    """Sends a valid block, answers ANSWER, then never answers again (socket left open)."""
    reader, writer = await peer(port, source, agi_block())
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(5):
            while line := await reader.readline():
                if line.startswith(b"ANSWER"):
                    writer.write(b"200 result=0\n")
                    await writer.drain()
                elif line.startswith((b"STREAM", b"GET DATA", b"SAY")):
                    break  # the first media command: silence from here on
                else:
                    writer.write(b"200 result=1\n")
                    await writer.drain()
    return writer


@pytest.fixture
async def small_ivr() -> AsyncIterator[FastAgiServer]:
    async with running_ivr(FakeStore(file_menu()), Recorder(), max_sessions=20,
                           media_timeout=1.0, allowed=ASTERISK) as server:
        yield server


async def test_the_session_cap_cannot_be_exceeded(small_ivr: FastAgiServer) -> None:
    server = small_ivr
    # 50 at once, each sending its block: all connect before any block is read
    writers = await asyncio.gather(*(silent_at_first_media(server.port) for _ in range(50)))
    try:
        await until(lambda: server.stats.refused == 30)
        assert server.stats.peak == 20 and server.stats.sessions_active <= 20
    finally:
        for w in writers:
            w.close()


async def test_silent_peers_free_their_slots_in_a_callers_time(small_ivr: FastAgiServer) -> None:
    server = small_ivr
    writers = [await silent_at_first_media(server.port) for _ in range(20)]
    try:
        await until(lambda: server.stats.sessions_active == 20)
        # every slot is held: a caller now is refused (the dialplan's fallback queues them)...
        refused = Caller(inputs=["1", "1"])
        with contextlib.suppress(ConnectionResetError):  # closed with the block unread
            await refused.call(server.port)
        assert refused.commands == [] and server.stats.refused == 1
        # ... for one media timeout (here 1 s; 120 s by default, was 300), not for ever
        await until(lambda: server.stats.sessions_active == 0, timeout=10)
        caller = await Caller(inputs=["1", "1"]).call(server.port)
        assert caller.variables["QUEUE"] == "sanitation"
        assert server.stats.timeouts >= 20
    finally:
        for w in writers:
            w.close()


async def test_strangers_get_no_slot_at_all(small_ivr: FastAgiServer) -> None:
    server = small_ivr
    strangers = await asyncio.gather(*(peer(server.port, "127.0.0.2", agi_block())
                                       for _ in range(200)))
    try:
        for reader, _ in strangers:
            with contextlib.suppress(ConnectionResetError):  # closed with our block unread
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        assert server.stats.not_allowed == 200 and server.stats.peak == 0
        started = time.perf_counter()
        caller = await Caller(inputs=["1", "1"]).call(server.port)
        assert caller.variables["QUEUE"] == "sanitation"
        assert time.perf_counter() - started < 5
    finally:
        for _, w in strangers:
            w.close()


async def test_a_session_has_a_deadline_of_its_own() -> None:
    """A peer that answers every command in time, for ever, still ends at the session limit."""

    async def endless(channel: AgiChannel) -> None:
        while True:
            await channel.stream_file("311/en/menu", "123")

    server = FastAgiServer(endless, "127.0.0.1", 0, session_timeout=1.0, media_timeout=5.0)
    await server.start()
    reader, writer = await peer(server.port, data=agi_block())
    answered = 0
    try:
        async with asyncio.timeout(15):
            while await reader.readline():
                answered += 1
                await asyncio.sleep(0.05)  # a caller listening to a short prompt
                writer.write(b"200 result=0 endpos=800\n")
                await writer.drain()
    finally:
        writer.close()
        await server.close()
    assert answered >= 5 and server.stats.timeouts == 1
    assert "session over 1s" in (server.last_error or "")
