"""The telephony plugin inside the app: bridge + writer wired by cleanup contexts, `/health`
parts, the `PBX` key; and an Asterisk restart in the middle of the stream (issue 11)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.bus import LocalBus
from contactcenter.config import Settings
from contactcenter.events import CallEnded, Event, PbxError
from contactcenter.keys import PBX, SESSIONS
from contactcenter.telephony.bridge import Bridge
from contactcenter.telephony.calls import record_to_json
from contactcenter.telephony.replay import ReplayServer, event_blocks
from tests.conftest import HEALTH, HEALTH_KEY, transcript, until
from tests.expected_records import CALL_ANSWERED, RESTART


@pytest.mark.store
async def test_app_records_a_call_from_asterisk(
    aiohttp_client: Any, migrated_url: str, tmp_path: Path
) -> None:
    server = ReplayServer([transcript("ami-call-answered.raw")], username="cc", secret="s3")
    port = await server.start()
    settings = Settings(database_url=migrated_url, ami_port=port, ami_username="cc",
                        ami_secret="s3", spool_dir=str(tmp_path / "spool"), agi_port=0,
                        health_api_key=HEALTH_KEY)
    try:
        client = await aiohttp_client(create_app(settings))
        app = client.server.app

        async def health() -> dict[str, Any]:
            resp = await client.get("/health", headers=HEALTH)
            return dict(await resp.json())

        body = await until(lambda: _ok(health()), 10)
        ami = body["parts"]["ami"]
        assert ami["servers"]["default"]["logged_in"] is True
        assert body["parts"]["writer"]["spool_depth"] == 0

        async def stored() -> list[Any]:
            from contactcenter.cases.models import Call

            async with app[SESSIONS]() as session:
                return list((await session.execute(select(Call))).scalars())

        (call,) = await until(stored, 10)
        assert call.linkedid == CALL_ANSWERED[0]["linkedid"]
        assert (call.outcome, call.agent, call.talk_seconds) == ("answered", "Ana Operator", 6.0)
        assert call.citizen_id is not None
        assert (await app[PBX].queue_pause("Local/2001@agents/n", True, reason="break")) is None
        final = await health()
        assert final["parts"]["ami"]["events"] > 0
        assert final["parts"]["ami"]["servers"]["default"]["last_event_lag_s"] > 0
    finally:
        await server.close()
    actions = [a.get("action") for a in server.actions]
    assert actions[:4] == ["Challenge", "Login", "CoreShowChannels", "QueueStatus"]
    assert "Filter" not in actions  # needs write=system: manager.conf's eventfilter instead
    assert {"action": "QueuePause", "reason": "break"}.items() <= {
        k: v for a in server.actions if a.get("action") == "QueuePause" for k, v in a.items()
    }.items()


async def _ok(body: Any) -> Any:
    b = await body
    return b if b["status"] == "ok" else None


async def test_ami_disabled(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db", ami_enabled=False,
                        spool_dir=str(tmp_path / "spool"), health_api_key=HEALTH_KEY, agi_port=0)
    client = await aiohttp_client(create_app(settings))
    body = await (await client.get("/health", headers=HEALTH)).json()
    assert body["parts"]["ami"] == {"ok": True, "state": "disabled"}
    with pytest.raises(PbxError, match="disabled"):
        await client.server.app[PBX].hangup("Local/1@x-0001;1")


async def test_ami_down_shows_in_health(aiohttp_client: Any, tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/d.db", ami_port=1,
                        spool_dir=str(tmp_path / "spool"), health_api_key=HEALTH_KEY, agi_port=0)
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/health", headers=HEALTH)
    body = await resp.json()
    assert resp.status == 503
    assert body["parts"]["ami"]["ok"] is False
    assert body["parts"]["ami"]["servers"]["default"]["logged_in"] is False


async def _run_bridge(first: list[bytes], second: list[bytes]) -> list[Event]:
    """Stream `first` on a connection the server then closes, `second` on the next one."""
    s1 = ReplayServer(first, verbatim=True)
    port = await s1.start()
    bus = LocalBus()
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    sub = bus.subscribe(collect, types=(CallEnded,))
    bridge = Bridge(Settings(ami_port=port, ami_username="replay", ami_secret="replay"), bus,
                    client_options={"backoff_initial": 0.05, "backoff_max": 0.2,
                                    "boot_timeout": 0.5})
    await bridge.start()
    s2 = ReplayServer(second, verbatim=True)
    try:
        await asyncio.wait_for(s1.streamed.wait(), 10)
        link = bridge.links["default"]
        await link.client.action("Ping")  # every streamed event has been read
        await s1.close()  # Asterisk goes away
        await s2.start(port=port)
        await asyncio.wait_for(s2.streamed.wait(), 10)
        await until(lambda: link.resyncs == 2, 10)
        await link.client.action("Ping")
        await bridge.flushed()
        await bus.drain()
        return seen
    finally:
        await bridge.close()
        await sub.close()
        await s1.close()
        await s2.close()


async def test_asterisk_restart_ends_the_call_once() -> None:
    before = b"".join(event_blocks(transcript("ami-restart-before.raw")))
    after = b"".join(event_blocks(transcript("ami-restart-after.raw")))
    seen = await _run_bridge([before], [after])
    assert [record_to_json(e.record) for e in seen if isinstance(e, CallEnded)] == RESTART


async def test_asterisk_restart_mid_call_gives_one_partial_record() -> None:
    """The socket closes before the hang-ups of the restart reach us; after it Asterisk has
    no channels: the call is closed once, flagged partial, with what was known."""
    blocks = event_blocks(transcript("ami-restart-before.raw"))
    cut = next(i for i, b in enumerate(blocks) if b.startswith(b"Event: AgentConnect"))
    seen = await _run_bridge([b"".join(blocks[: cut + 1])], [])
    ended = [e.record for e in seen if isinstance(e, CallEnded)]
    assert len(ended) == 1 and ended[0].partial
    got = record_to_json(ended[0])
    for key in ("linkedid", "caller_number", "queue", "agent", "wait_seconds", "ring_seconds"):
        assert got[key] == RESTART[0][key], key


async def test_two_asterisks_calls_keyed_by_server() -> None:
    """Two endpoints stream the same capture: same linkedid, two servers, two records."""
    raw = transcript("ami-call-answered.raw")
    a, b = ReplayServer([raw]), ReplayServer([raw])
    pa, pb = await a.start(), await b.start()
    settings = Settings(ami_servers=f"east=127.0.0.1:{pa},west=127.0.0.1:{pb}",
                        ami_username="replay", ami_secret="replay")
    bus = LocalBus()
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    sub = bus.subscribe(collect, types=(CallEnded,))
    bridge = Bridge(settings, bus, client_options={"boot_timeout": 0.5})
    await bridge.start()
    try:
        await asyncio.wait_for(asyncio.gather(a.streamed.wait(), b.streamed.wait()), 10)
        await until(lambda: len(seen) == 2, 10)
        records = sorted((e.record for e in seen if isinstance(e, CallEnded)),
                         key=lambda r: r.server)
        assert [r.call_id for r in records] == [
            f"east:{CALL_ANSWERED[0]['linkedid']}", f"west:{CALL_ANSWERED[0]['linkedid']}"]
        assert all(record_to_json(r) == CALL_ANSWERED[0] for r in records)
        health = bridge.health()
        assert health["ok"] and set(health["servers"]) == {"east", "west"}
    finally:
        await bridge.close()
        await sub.close()
        await a.close()
        await b.close()
