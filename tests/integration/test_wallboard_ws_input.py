"""Issue 11, bad input on the wallboard's websocket: the wallboard only listens, so anything a
screen sends (random text, bytes, JSON, truncated UTF-8, oversized frames) is ignored or, past
the 4 kB frame limit, closes that socket with 1009; the process, the hub and the other screens
go on (the console's handler has its own property test in test_console_ws.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contactcenter.app import create_app
from contactcenter.supervisor.keys import SUPERVISOR
from tests.conftest import app_settings, login

pytestmark = pytest.mark.store

FRAMES = st.one_of(
    st.text(max_size=300), st.binary(max_size=300),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(json.dumps),
    st.binary(min_size=1, max_size=50).map(lambda b: b"\xf0\x9f" + b),  # torn UTF-8
    st.integers(4097, 70_000).map(lambda n: "x" * n),  # past the frame limit
)


async def test_garbage_to_the_wallboard_socket(
    aiohttp_client: Any, migrated_url: str, seeded: Any
) -> None:
    client = await aiohttp_client(create_app(app_settings(migrated_url)))
    await login(client, "supervisor")
    origin = {"Origin": str(client.make_url("/")).rstrip("/")}
    hub = client.server.app[SUPERVISOR].hub
    watcher = await client.ws_connect("/wallboard/ws", headers=origin)
    first = json.loads((await watcher.receive(timeout=5)).data)

    samples: list[str | bytes] = []

    @settings(max_examples=80, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(FRAMES)
    def collect(raw: str | bytes) -> None:  # hypothesis drives a sync function: run them below
        samples.append(raw)

    collect()
    closed_big = 0
    ws = await client.ws_connect("/wallboard/ws", headers=origin)
    await ws.receive(timeout=5)  # its first snapshot
    for raw in samples:
        size = len(raw.encode() if isinstance(raw, str) else raw)
        await (ws.send_bytes(raw) if isinstance(raw, bytes) else ws.send_str(raw))
        if size > 4096:
            msg = await ws.receive(timeout=5)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
            closed_big += 1
            ws = await client.ws_connect("/wallboard/ws", headers=origin)
            await ws.receive(timeout=5)
        else:
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=0.01)  # ignored: no reply, no close
            assert not ws.closed
    assert closed_big and closed_big < len(samples)
    # the hub dropped the closed screens, kept the live ones, and still serves a new one
    assert hub.count() == 2
    fresh = await client.ws_connect("/wallboard/ws", headers=origin)
    again = json.loads((await fresh.receive(timeout=5)).data)
    assert again.keys() == first.keys()
    assert (await client.get("/health")).status == 200
    for s in (ws, watcher, fresh):
        await s.close()
