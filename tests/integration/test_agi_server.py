"""The FastAGI server under bad peers: nothing a client does may block another session."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from contactcenter.telephony.agi import AgiChannel, AgiCommandError, FastAgiServer
from tests.agi_fake import Caller, agi_block
from tests.conftest import until
from tests.ivr_support import FakeStore, Recorder, file_menu, running_ivr


@pytest.fixture
async def ivr() -> AsyncIterator[tuple[FastAgiServer, Recorder]]:
    recorder = Recorder()
    async with running_ivr(FakeStore(file_menu()), recorder, header_timeout=0.5,
                           command_timeout=0.3, media_timeout=0.3) as server:
        yield server, recorder


async def test_half_sent_block_and_silent_client_do_not_block_others(
    ivr: tuple[FastAgiServer, Recorder],
) -> None:
    server, _ = ivr
    half_r, half_w = await asyncio.open_connection("127.0.0.1", server.port)
    half_w.write(agi_block()[:200])  # no blank line, and the socket stays open
    await half_w.drain()
    silent_r, silent_w = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.perf_counter()
    caller = await Caller(inputs=["1", "1"]).call(server.port, timeout=2)
    assert time.perf_counter() - started < 0.4  # done well before the header timeout
    assert caller.variables["QUEUE"] == "sanitation"
    # then the bad ones are dropped: both see EOF
    assert await asyncio.wait_for(half_r.read(), 2) == b""
    assert await asyncio.wait_for(silent_r.read(), 2) == b""
    half_w.close()
    silent_w.close()
    assert server.stats.bad_requests == 2 and server.stats.errors == 0


async def test_block_cut_by_eof_is_a_bad_request(ivr: tuple[FastAgiServer, Recorder]) -> None:
    server, _ = ivr
    _, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(agi_block()[:300])
    await writer.drain()
    writer.close()
    await until(lambda: server.stats.bad_requests == 1)
    caller = await Caller(inputs=["1", "2"]).call(server.port)
    assert caller.variables["QUEUE"] == "potholes"


async def test_oversized_line_is_refused(ivr: tuple[FastAgiServer, Recorder]) -> None:
    server, _ = ivr
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"agi_channel: " + b"x" * 100_000 + b"\n\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()
    assert server.stats.bad_requests == 1


async def test_peer_silent_mid_session_times_out_alone(
    ivr: tuple[FastAgiServer, Recorder],
) -> None:
    server, recorder = ivr
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(agi_block(uniqueid="silent.1"))
    await writer.drain()
    assert await reader.readline() == b"ANSWER\n"  # and we never reply
    caller = await Caller(inputs=["1", "3"]).call(server.port, timeout=2)
    assert caller.variables["QUEUE"] == "general-311"
    assert await asyncio.wait_for(reader.read(), 2) == b""  # dropped after command_timeout
    writer.close()
    await until(lambda: len(recorder.results) == 2)
    assert server.stats.timeouts == 1 and server.stats.sessions_active == 0
    assert {r.outcome for r in recorder.results} == {"queued", "hangup"}


async def _raw_session(handler: Any, replies: list[bytes]) -> tuple[list[str], list[Any]]:
    seen: list[Any] = []

    async def wrapped(channel: AgiChannel) -> None:
        try:
            await handler(channel)
        except Exception as exc:
            seen.append(exc)
            raise

    server = FastAgiServer(wrapped, "127.0.0.1", 0, command_timeout=1)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(agi_block())
        commands = []
        for reply in replies:
            commands.append((await reader.readline()).decode().rstrip("\n"))
            writer.write(reply)
        assert await asyncio.wait_for(reader.read(), 2) == b""
        writer.close()
        await until(lambda: server.stats.sessions_active == 0)
    finally:
        await server.close()
    return commands, seen


async def test_510_and_520_raise_command_errors() -> None:
    async def handler(channel: AgiChannel) -> None:
        await channel.set_variable("QUEUE", "x")

    _, seen = await _raw_session(handler, [b"510 Invalid or unknown command\n"])
    assert isinstance(seen[0], AgiCommandError) and seen[0].code == 510
    usage = (b"520-Invalid command syntax.  Proper usage follows:\n"
             b" Usage: SET VARIABLE <variablename> <value>\n520 End of proper usage.\n")
    _, seen = await _raw_session(handler, [usage])
    assert isinstance(seen[0], AgiCommandError) and seen[0].code == 520
    assert "Usage: SET VARIABLE" in str(seen[0])


async def test_get_variable_and_hangup_line_then_511() -> None:
    values: list[Any] = []

    async def handler(channel: AgiChannel) -> None:
        values.append(await channel.get_variable("CALLERID(num)"))
        values.append(await channel.get_variable("NOPE"))
        values.append(await channel.stream_file("beep", "12"))
        try:
            await channel.verbose("x")
        except Exception as exc:
            values.append(type(exc).__name__)
        try:
            await channel.verbose("y")  # no command is sent on a dead channel
        except Exception as exc:
            values.append(type(exc).__name__)

    commands, _ = await _raw_session(handler, [
        b"200 result=1 (7875550101)\n", b"200 result=0\n", b"200 result=50 endpos=100\n",
        b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n",
    ])
    assert commands == ["GET VARIABLE CALLERID(num)", "GET VARIABLE NOPE",
                        'STREAM FILE beep "12"', 'VERBOSE "x" 1']
    assert values == ["7875550101", None, "2", "CallerHungUp", "CallerHungUp"]


async def test_close_cancels_sessions_in_progress() -> None:
    recorder = Recorder()
    async with running_ivr(FakeStore(file_menu()), recorder) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(agi_block())
        assert await reader.readline() == b"ANSWER\n"
        started = time.perf_counter()
    assert time.perf_counter() - started < 1
    assert await asyncio.wait_for(reader.read(), 2) == b""
    writer.close()


async def test_sessions_over_the_limit_are_refused() -> None:
    recorder = Recorder()
    async with running_ivr(FakeStore(file_menu()), recorder, max_sessions=1) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(agi_block())
        assert await reader.readline() == b"ANSWER\n"
        r2, w2 = await asyncio.open_connection("127.0.0.1", server.port)
        w2.write(agi_block())
        try:  # closed unread: EOF or a reset, never a command
            assert await asyncio.wait_for(r2.read(), 2) == b""
        except ConnectionResetError:
            pass
        assert server.stats.refused == 1
        writer.close()
        w2.close()
