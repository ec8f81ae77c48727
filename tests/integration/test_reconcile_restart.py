"""Issue 19: the bridge process stops in the middle of a simulator burst (its tracker's state
is lost with it, as with kill -9) and another one starts on the same store a while later: every
call has exactly one record, with the simulator's outcome and queue. Calls that ended while no
bridge ran come from Asterisk's queue_log/CDR (reconciled, from the dead process's checkpoint);
calls up at the restart are adopted and then completed from the same records."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from contactcenter.app import create_app
from contactcenter.cases.models import Call
from contactcenter.keys import SESSIONS
from contactcenter.telephony.keys import AGI_SERVER
from contactcenter.telephony.plugin import BRIDGE
from contactcenter.telephony.reconcile_plugin import LEASE, RECONCILERS
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import add_simulated_agents
from contactcenter.telephony.simulator.pbx import CitizenCall, SimPbx
from contactcenter.telephony.simulator.records import AsteriskRecords
from tests.conftest import HEALTH, STORE_ON_PG, app_settings, until

pytestmark = pytest.mark.store


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def burst_with_restart(aiohttp_client: Any, url: str, tmp_path: Path, n: int, *,
                             standby: bool = False) -> None:
    """`standby`: both bridge processes run from the start with CC_BRIDGE_LEASE=pg; the second
    stands by and takes over when the first dies. Else the second starts a second later."""
    pbx = SimPbx(VirtualClock(40.0), agi_port=1, seed=19)
    pbx.records = AsteriskRecords(tmp_path / "queue_log", tmp_path / "cdr.csv")
    add_simulated_agents(pbx, ["sanitation", "potholes", "general-311"], 6)
    ami = AmiServer(pbx, "cc", "s3", port=0)
    await ami.start()
    settings = app_settings(
        url, timezone="UTC", ami_enabled="true", ami_port=str(ami.port), ami_username="cc",
        ami_secret="s3", agi_enabled="true", agi_port=str(_port()),
        spool_dir=str(tmp_path / "spool"), reconcile_interval="0.2",
        asterisk_records=f"file:{tmp_path / 'queue_log'};cdr={tmp_path / 'cdr.csv'}",
        bridge_lease="pg" if standby else "off")
    calls: list[CitizenCall] = []

    def originate(i: int) -> None:
        keys = ["1", str(1 + i % 3)] if i % 7 else ["2", "1"]
        calls.append(pbx.originate_citizen(f"7875{i:06d}", f"Caller {i}", "",
                                           patience=5 + (i * 13) % 90, prewait=0.5,
                                           answers=keys))

    try:
        first = await aiohttp_client(create_app(settings))
        pbx.agi_port = first.server.app[AGI_SERVER].port
        link = first.server.app[BRIDGE].links["default"]
        await until(lambda: link.resyncs == 1, 10, 0.05)
        if standby:
            second = await aiohttp_client(create_app(settings.replace(agi_port=_port())))
            body = await (await second.get("/health", headers=HEALTH)).json()
            assert second.server.app[LEASE].state == "standby"
            assert body["parts"]["ami"] == {"ok": True, "state": "standby"}
            assert second.server.app[BRIDGE].links["default"].resyncs == 0
        third = n // 3
        for i in range(third):
            originate(i)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the first process holds calls in every state
        await first.close()  # the bridge is gone: nothing reads AMI, no FastAGI answers
        died = time.monotonic()
        for i in range(third, 2 * third):
            originate(i)
            await asyncio.sleep(0.01)
        if not standby:
            await asyncio.sleep(1.0)
            second = await aiohttp_client(create_app(settings))
        app = second.server.app
        pbx.agi_port = app[AGI_SERVER].port  # the dialplan's second FastAGI server
        link = app[BRIDGE].links["default"]
        await until(lambda: link.resyncs == 1, 10, 0.05)
        took = time.monotonic() - died
        for i in range(2 * third, n):
            originate(i)
            await asyncio.sleep(0.01)
        await until(lambda: all(c.where == "ended" for c in calls), 300, 0.2)

        async def stored() -> int:
            async with app[SESSIONS]() as s:
                return int((await s.execute(select(func.count()).select_from(Call))).scalar())

        async def settled() -> bool:
            if await stored() != n:
                return False
            async with app[SESSIONS]() as s:
                left = (await s.execute(select(func.count()).select_from(Call).where(
                    Call.partial.is_(True), Call.reconciled.is_(False)))).scalar()
            return left == 0

        await until(settled, 60, 0.2)
        async with app[SESSIONS]() as s:
            rows = list((await s.execute(select(Call))).scalars())
        rec = app[RECONCILERS]["default"]
        await second.close()
    finally:
        await pbx.close()
        await ami.close()
        pbx.records.close()
    by_id = {r.linkedid: r for r in rows}
    assert len(rows) == len(by_id) == n  # one record per call, 0 duplicates
    wrong = []
    for sim in calls:
        row = by_id[sim.ch1.linkedid]
        outcome = row.outcome.replace("short_abandoned", "abandoned")
        if outcome != sim.outcome or (sim.queue and row.final_queue != sim.queue):
            wrong.append((sim.ch1.linkedid, sim.outcome, outcome, sim.queue, row.first_queue,
                          row.reconciled, row.partial))
    assert not wrong, wrong[:10]
    assert rec.gap is not None and rec.gap.done and rec.gap.calls > 0
    reconciled = sum(r.reconciled for r in rows)
    print(f"\n{n} calls: {reconciled} reconciled ({rec.gap.calls} in the gap, "
          f"{rec.completed_total} partial completed), 0 duplicates; AMI read again "
          f"{took:.2f} s after the first bridge died" + (" (standby)" if standby else ""))


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_bridge_restart_mid_burst_60_calls(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    await burst_with_restart(aiohttp_client, migrated_url, tmp_path, 60)


@pytest.mark.slow
async def test_bridge_restart_mid_burst_600_calls(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    await burst_with_restart(aiohttp_client, migrated_url, tmp_path, 600)


@pytest.mark.skipif(not STORE_ON_PG, reason="the lease is a PostgreSQL advisory lock")
async def test_standby_bridge_takes_over_mid_burst_90_calls(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    await burst_with_restart(aiohttp_client, migrated_url, tmp_path, 90, standby=True)


@pytest.mark.slow
@pytest.mark.skipif(not STORE_ON_PG, reason="the lease is a PostgreSQL advisory lock")
async def test_standby_bridge_takes_over_mid_burst_600_calls(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    await burst_with_restart(aiohttp_client, migrated_url, tmp_path, 600, standby=True)


@pytest.mark.skipif(not STORE_ON_PG, reason="the lease is a PostgreSQL advisory lock")
async def test_a_holder_whose_lease_session_dies_stops_reading_ami(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    """The lease's own database session is killed under a live process (a network cut to
    PostgreSQL, an admin's pg_terminate_backend): within a few seconds it stops reading AMI and
    /health says the lease is lost, so a standby (which now gets the lock) is the only reader."""
    pbx = SimPbx(VirtualClock(1.0), agi_port=1, seed=5)
    ami = AmiServer(pbx, "cc", "s3", port=0)
    await ami.start()
    settings = app_settings(
        migrated_url, timezone="UTC", ami_enabled="true", ami_port=str(ami.port),
        ami_username="cc", ami_secret="s3", agi_enabled="false",
        spool_dir=str(tmp_path / "spool"), bridge_lease="pg", asterisk_records="off")
    try:
        client = await aiohttp_client(create_app(settings))
        app = client.server.app
        lease, link = app[LEASE], app[BRIDGE].links["default"]
        await until(lambda: lease.state == "active" and link.client.logged_in, 20, 0.05)
        async with app[SESSIONS]() as s:
            pids = (await s.execute(text(
                "select pid from pg_locks where locktype = 'advisory' and granted "
                "and database = (select oid from pg_database where datname = "
                "current_database())"))).scalars().all()
            assert len(pids) == 1
            await s.execute(text("select pg_terminate_backend(:p)"), {"p": pids[0]})
        await until(lambda: lease.state == "lost", 20, 0.05)
        await until(lambda: not link.client.logged_in, 10, 0.05)
        resp = await client.get("/health", headers=HEALTH)
        body = await resp.json()
        assert resp.status == 503 and body["parts"]["lease"]["state"] == "lost"
    finally:
        await pbx.close()
        await ami.close()
