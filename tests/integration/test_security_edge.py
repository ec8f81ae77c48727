"""Issue 20, the listeners: slow and endless connections, over-long URLs, slow bodies.

Before: incomplete HTTP requests never timed out; ~20,000 held connections used up the file
limit, /health stopped answering, FastAGI stopped accepting and the log grew 111 MB in 40 s; an
over-long URL logged an ERROR traceback. Each attack here runs against the server `contactcenter
serve` runs (`edge.serve_http`, the guarded listener) over real sockets; the attacker connects
from 127.0.0.2, the city's Asterisk and the monitoring from 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from contactcenter.app import create_app
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.web import edge
from tests.agi_fake import Caller
from tests.conftest import app_settings, until

pytestmark = pytest.mark.store

ATTACKER = "127.0.0.2"
NOISY = ("contactcenter.web.edge", "aiohttp.server", "aiohttp.access",
         "contactcenter.telephony.agi", "asyncio")


@pytest.fixture
async def served(migrated_url: str, seeded: Any,
                 request: pytest.FixtureRequest) -> AsyncIterator[edge.Served]:
    overrides = {"agi_enabled": "true", "agi_port": "0", "agi_allowed": "127.0.0.1",
                 "http_header_timeout": "1", "http_body_timeout": "1",
                 **getattr(request, "param", {})}
    settings = app_settings(migrated_url, **overrides)
    app = create_app(settings)
    server = await edge.serve_http(app, settings, host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        await server.close()


async def raw(port: int, data: bytes = b"", source: str = ATTACKER) -> socket.socket:
    """A socket from `source`, connected, that has sent `data` (if the server let it)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((source, 0))
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
        if data:
            await loop.sock_sendall(sock, data)
    except OSError:
        pass  # refused by the guard at once: it stays a closed socket on our side
    return sock


async def answer_of(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """What the server sends until it closes (or `timeout`)."""
    loop = asyncio.get_running_loop()
    out = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        async with asyncio.timeout(timeout):
            while chunk := await loop.sock_recv(sock, 65536):
                out += chunk
    return out


def noisy_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(NOISY)]


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_5000_slow_connections_and_health_and_fastagi_still_answer(
    served: edge.Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    # each attack socket is one descriptor here and (briefly) one in the server, same process
    http_n = max(500, min(5000, (soft - 2000) // 2))
    agi_n = min(1000, http_n // 5)
    guard = served.guard
    agi_server = served.runner.app[AGI_SERVER]
    cap = guard.limits.max_per_address
    socks: list[socket.socket] = []
    try:
        half_request = b"GET /health HTTP/1.1\r\nHost: 311.example\r\nX-a: "
        for start in range(0, http_n, 250):  # in waves: the listen backlog is finite
            socks += await asyncio.gather(*(
                raw(served.port, half_request) for _ in range(start, min(http_n, start + 250))))
        for start in range(0, agi_n, 250):
            socks += await asyncio.gather(*(
                raw(agi_server.port, b"agi_network: yes\n")
                for _ in range(start, min(agi_n, start + 250))))
        assert len(socks) == http_n + agi_n

        # every one was accepted, then held (never more than the cap at once) or refused
        await until(lambda: guard.accepted + guard.refused >= http_n, timeout=20)
        assert guard.peak <= cap and guard.refused >= http_n - guard.accepted
        assert guard.refused >= http_n // 2
        await until(lambda: agi_server.stats.not_allowed == agi_n, timeout=20)
        assert agi_server.stats.peak == 0  # not one IVR slot went to the attacker

        # monitoring and the city's Asterisk are served meanwhile
        async with aiohttp.ClientSession() as http:
            resp = await http.get(f"http://127.0.0.1:{served.port}/health",
                                  timeout=aiohttp.ClientTimeout(total=5))
            assert resp.status == 200
        caller = await Caller(inputs=["1", "1"]).call(agi_server.port)
        assert caller.variables.get("QUEUE") == "sanitation"

        # the held connections run out of time; a few lines were logged, not one per socket
        await until(lambda: guard.per_address.get(ATTACKER, 0) == 0, timeout=20)
        assert guard.timeouts >= 1
        lines = noisy_lines(caplog)
        assert len(lines) <= 20, [r.getMessage() for r in lines[:30]]
        assert not [r for r in lines if r.levelno >= logging.ERROR]
    finally:
        for s in socks:
            s.close()


async def test_a_trickled_request_is_cut_at_the_header_deadline(served: edge.Served) -> None:
    loop = asyncio.get_running_loop()
    sock = await raw(served.port, b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    closed = False
    try:
        while time.monotonic() - started < 15:  # bounded: the deadline is 1 s
            try:
                await loop.sock_sendall(sock, b"X-Slow: 1\r\n")
                async with asyncio.timeout(0.2):
                    if await loop.sock_recv(sock, 1024) == b"":
                        closed = True
                        break
            except TimeoutError:
                continue  # nothing from the server yet: keep trickling
            except ConnectionError:
                closed = True
                break
    finally:
        sock.close()
    assert closed, "a connection that keeps sending header lines was never cut"
    assert served.guard.timeouts == 1


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_a_trickled_body_is_answered_408(served: edge.Served) -> None:
    head = (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
            b"\r\nContent-Length: 1000\r\n\r\nusername=a")
    sock = await raw(served.port, head)
    try:
        answer = await answer_of(sock, timeout=15)
    finally:
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    await until(lambda: served.guard.per_address.get(ATTACKER, 0) == 0)


async def test_an_over_long_url_is_a_414_and_one_short_line(
    served: edge.Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for _ in range(20):  # at will, as the finding says
        path = b"/" + b"a" * (edge.MAX_URL + 1000)
        sock = await raw(served.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            answer = await answer_of(sock)
        finally:
            sock.close()
        assert answer.startswith(b"HTTP/1.1 414 URI Too Long"), answer[:100]
    # a header line over aiohttp's own limit: its 400, without the traceback
    sock = await raw(served.port, b"GET / HTTP/1.1\r\nX-Long: " + b"b" * 9000 + b"\r\n\r\n")
    try:
        assert (await answer_of(sock)).split(b"\r\n")[0].endswith(b" 400 Bad Request")
    finally:
        sock.close()
    lines = noisy_lines(caplog)
    assert 1 <= len(lines) <= 3, [r.getMessage() for r in lines]
    assert all(r.levelno < logging.ERROR and r.exc_info is None for r in lines)
    assert all(len(r.getMessage()) < 400 and "\n" not in r.getMessage() for r in lines)
    assert served.guard.too_long == 20


@pytest.mark.parametrize("served", [{"http_max_connections": "40",
                                      "http_max_connections_per_address": "1000"}],
                         indirect=True)
async def test_the_total_cap_is_never_exceeded(served: edge.Served) -> None:
    socks = await asyncio.gather(*(raw(served.port, b"GET / HTTP/1.1\r\n") for _ in range(100)))
    try:
        await until(lambda: served.guard.refused >= 60)
        assert served.guard.peak == 40 and served.guard.open <= 40
    finally:
        for s in socks:
            s.close()
    await until(lambda: served.guard.open == 0)
