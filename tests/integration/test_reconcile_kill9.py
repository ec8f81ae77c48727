"""Issue 19 as real processes: two `contactcenter serve` on PostgreSQL with CC_BRIDGE_LEASE=pg,
the simulated Asterisk (writing queue_log and CDR) in the test. The process holding the lease is
killed with SIGKILL in the middle of a burst; the standby takes the lease, reads AMI, reconciles
the gap from the dead one's checkpoint and completes what it adopted: every call exactly once,
with the simulator's outcome and queue."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from bench import stack as S
from contactcenter import db
from contactcenter.cases.models import Call
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import add_simulated_agents
from contactcenter.telephony.simulator.pbx import CitizenCall, SimPbx
from contactcenter.telephony.simulator.records import AsteriskRecords
from tests.conftest import until

pytestmark = pytest.mark.store


async def _lease(proc: S.Proc, http: aiohttp.ClientSession) -> str:
    with_parts = await S.health(proc, http)
    return str(with_parts["parts"]["lease"]["state"])


async def kill9_with_standby(pg_url: str, tmp_path: Path, n: int,
                             restart_after: float | None = None) -> None:
    """`restart_after`: no standby; a new process starts that many seconds after the kill."""
    await asyncio.to_thread(db.upgrade, pg_url)
    pbx = SimPbx(VirtualClock(40.0), agi_port=S.free_port(), seed=9)  # no IVR: the fallback
    pbx.records = AsteriskRecords(tmp_path / "queue_log", tmp_path / "cdr.csv")
    add_simulated_agents(pbx, ["sanitation", "potholes", "general-311"], 6)
    ami = AmiServer(pbx, S.AMI_USER, S.AMI_SECRET, port=0)
    await ami.start()
    extra = {"CC_BRIDGE_LEASE": "pg", "CC_RECONCILE_INTERVAL": "0.5", "CC_AGI_ENABLED": "false",
             "CC_ASTERISK_RECORDS": f"file:{tmp_path / 'queue_log'};cdr={tmp_path / 'cdr.csv'}"}
    procs: list[S.Proc] = []
    calls: list[CitizenCall] = []
    engine = db.make_engine(pg_url)
    sessions = db.make_sessionmaker(engine)
    try:
        kw: dict[str, Any] = {"ami_port": ami.port, "agi_port": S.free_port(),
                              "workdir": tmp_path, "extra": extra}
        procs.append(S.serve("a", "all", pg_url, **kw))
        await S.wait_healthy(procs, timeout=60)
        async with aiohttp.ClientSession() as http:
            await until(lambda: _is(procs[0], http, "active"), 20, 0.1)
            if restart_after is None:
                procs.append(S.serve("b", "all", pg_url, **kw))
                await S.wait_healthy(procs[1:], timeout=60)
                assert await _lease(procs[1], http) == "standby"
            third = n // 3
            for i in range(n):
                if i == third:
                    os.kill(procs[0].popen.pid, signal.SIGKILL)  # the holder dies mid-burst
                    died = time.monotonic()
                    procs[0].popen.wait()
                if restart_after is not None and i == 2 * third:
                    await asyncio.sleep(max(0.0, died + restart_after - time.monotonic()))
                    procs.append(S.serve("b", "all", pg_url, **kw))
                calls.append(pbx.originate_citizen(
                    f"7876{i:06d}", f"Caller {i}", "", patience=5 + (i * 13) % 90,
                    prewait=0.3))
                await asyncio.sleep(0.01)
            await until(lambda: _is(procs[1], http, "active"), 30, 0.05)
            took = time.monotonic() - died
            await until(lambda: all(c.where == "ended" for c in calls), 300, 0.2)

            async def settled() -> bool:
                async with sessions() as s:
                    total = (await s.execute(select(func.count()).select_from(Call))).scalar()
                    left = (await s.execute(select(func.count()).select_from(Call).where(
                        Call.partial.is_(True), Call.reconciled.is_(False)))).scalar()
                return total == n and left == 0

            await until(settled, 90, 0.3)
            body = await S.health(procs[1], http)
        async with sessions() as s:
            rows = list((await s.execute(select(Call))).scalars())
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.popen.terminate()
                p.popen.wait(10)
        await pbx.close()
        await ami.close()
        pbx.records.close()
        await engine.dispose()
    by_id = {r.linkedid: r for r in rows}
    assert len(rows) == len(by_id) == n  # 0 duplicates, none missing
    wrong = [(sim.ch1.linkedid, sim.outcome, by_id[sim.ch1.linkedid].outcome, sim.queue,
              by_id[sim.ch1.linkedid].final_queue) for sim in calls
             if by_id[sim.ch1.linkedid].outcome.replace("short_", "") != sim.outcome
             or by_id[sim.ch1.linkedid].final_queue != (sim.queue or None)]
    assert not wrong, wrong[:10]
    gap = body["parts"]["reconcile"]["servers"]["default"]["last_gap"]
    assert gap["done"] and gap["calls"] > 0
    how = "with a standby" if restart_after is None else f"restarted after {restart_after:g} s"
    print(f"\nkill -9 {how}, {n} calls: {sum(r.reconciled for r in rows)} reconciled "
          f"({gap['calls']} in the {gap['seconds']} s gap), 0 duplicates; a bridge held the "
          f"lease {took:.2f} s after SIGKILL")


async def _is(proc: S.Proc, http: aiohttp.ClientSession, state: str) -> bool:
    try:
        return await _lease(proc, http) == state
    except (aiohttp.ClientError, OSError, TimeoutError, KeyError):
        return False


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_kill9_with_a_standby_90_calls(pg_url: str, tmp_path: Path) -> None:
    await kill9_with_standby(pg_url, tmp_path, 90)


@pytest.mark.slow
async def test_kill9_with_a_standby_600_calls(pg_url: str, tmp_path: Path) -> None:
    await kill9_with_standby(pg_url, tmp_path, 600)


@pytest.mark.slow
async def test_kill9_no_standby_restart_after_30_s_600_calls(pg_url: str, tmp_path: Path) -> None:
    await kill9_with_standby(pg_url, tmp_path, 600, restart_after=30.0)
