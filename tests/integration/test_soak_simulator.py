"""Issue 11, soak with the simulator: `contactcenter simulate` (another process: the simulated
Asterisk, its AMI server and FastAGI client) places 10,000 calls at about 90 a second through
the real app in this process: the IVR over FastAGI, the AMI bridge, the bus, the case writer
and the wallboard. Callers choose languages and services, some key a case number, many give
up in the queue, some are answered, some time out: a mix of outcomes.

Afterwards: calls originated (the simulator's own count) = calls recorded (calls table, one
per call) = the wallboard's offered count for the calls that reached a queue, per outcome too;
and this process' resident memory grew less than RSS_BOUND_MB."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.app import create_app
from contactcenter.cases.models import Call
from contactcenter.keys import SESSIONS
from tests.conftest import HEALTH, ROOT, app_settings, login, until
from tests.integration.supervisor.conftest import daytime_zone
from tests.integration.test_soak import rss_mb

# Not marked `store`: at ~140 s it runs once (SQLite); the 10,000-call feed soak
# (test_soak.py, ~25 s) is the one that runs again on PostgreSQL.
pytestmark = pytest.mark.slow

CALLS = 10_000
RSS_BOUND_MB = 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_simulator_soak_10000_calls(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    ami_port, agi_port = free_port(), free_port()
    settings = app_settings(
        migrated_url, timezone=daytime_zone(), ami_enabled="true", ami_port=str(ami_port),
        ami_username="cc", ami_secret="s3", agi_enabled="true", agi_port=str(agi_port),
        spool_dir=str(tmp_path / "spool"), log_level="WARNING")
    env = {**os.environ, "CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "s3", "CC_LOG_LEVEL": "ERROR"}
    sim = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "contactcenter"), "simulate", "--ami-port", str(ami_port),
        "--agi", f"127.0.0.1:{agi_port}", "--calls", str(CALLS), "--rate", "9/s",
        "--scale", "10", "--agents", "40", "--talk", "30", "--patience", "40", "--seed", "11",
        "--wait-client", "30", stdout=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
    assert sim.stdout is not None
    try:
        rss0 = rss_mb()
        t0 = time.monotonic()
        client = await aiohttp_client(create_app(settings))
        await login(client, "supervisor")
        out = await asyncio.wait_for(sim.stdout.read(), 170)
        await asyncio.wait_for(sim.wait(), 10)
        elapsed = time.monotonic() - t0
    finally:
        if sim.returncode is None:
            sim.terminate()
            await sim.wait()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    sessions = client.server.app[SESSIONS]

    async def stored() -> int:
        async with sessions() as db:
            return int((await db.execute(select(func.count()).select_from(Call))).scalar())

    async def offered() -> int:
        body = await (await client.get("/api/queues")).json()
        return sum(q["offered"] for q in body["queues"])

    await until(lambda: _eq(stored, CALLS), 30, 0.5)
    async with sessions() as db:
        outcomes = Counter(dict((await db.execute(
            select(Call.outcome, func.count()).group_by(Call.outcome))).all()))
        queued = (await db.execute(select(func.count()).select_from(Call)
                                   .where(Call.queue.is_not(None)))).scalar()
        partial = (await db.execute(select(func.count()).select_from(Call)
                                    .where(Call.partial.is_(True)))).scalar()
    await until(lambda: _eq(offered, queued), 20, 0.5)
    health = await (await client.get("/health", headers=HEALTH)).json()
    growth = rss_mb() - rss0
    print(f"\nsimulator soak: {summary['calls']} calls, {summary['events']} AMI events in "
          f"{elapsed:.0f}s; simulator outcomes {summary['outcomes']}; recorded {dict(outcomes)};"
          f" offered {queued}; RSS +{growth:.0f} MB; agi {health['parts']['agi']['p99_ms']} ms "
          f"p99, fallbacks {health['parts']['ivr']['fallbacks']}")
    assert summary["calls"] == CALLS and "unfinished" not in summary["outcomes"]
    assert partial == 0
    sim_out = Counter(summary["outcomes"])
    assert outcomes["answered"] == sim_out["answered"]
    assert outcomes["abandoned"] + outcomes["short_abandoned"] == sim_out["abandoned"]
    assert len([k for k, v in outcomes.items() if v]) >= 3  # a mix
    assert health["parts"]["bus"]["dropped"] == 0
    assert health["parts"]["ivr"]["fallbacks"] == 0
    assert growth < RSS_BOUND_MB


async def _eq(fn: Any, n: int) -> bool:
    return await fn() == n
