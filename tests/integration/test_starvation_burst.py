"""Issue 19, "nothing silently wrong" under CPU starvation: two busy processes pinned to the CPUs
the product runs on, and a 2,000-call burst from the simulator (another process) through the
real app: IVR over FastAGI, the AMI bridge, the bus, the case writer, the wallboard. Afterwards
the store (calls and their legs), `/api/queues` and the reports agree exactly, per queue, or the
wallboard said it was stale and then agrees."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter.app import create_app
from contactcenter.cases.models import Call, CallLeg
from contactcenter.keys import CLOCK, SESSIONS
from contactcenter.supervisor import reports
from contactcenter.supervisor.keys import SUPERVISOR
from tests.conftest import HEALTH, ROOT, app_settings, login, until
from tests.integration.supervisor.conftest import daytime_zone
from tests.integration.test_soak_simulator import free_port

pytestmark = pytest.mark.slow

CALLS = 2_000


def burners() -> list[subprocess.Popen[bytes]]:
    """Two processes that only burn CPU, pinned to the CPUs this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
             for _ in range(2)]
    for p in procs:
        os.sched_setaffinity(p.pid, cpus)
    return procs


async def test_a_2000_call_burst_under_cpu_starvation_agrees_everywhere(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    ami_port, agi_port = free_port(), free_port()
    settings = app_settings(
        migrated_url, timezone=daytime_zone(), ami_enabled="true", ami_port=str(ami_port),
        ami_username="cc", ami_secret="s3", agi_enabled="true", agi_port=str(agi_port),
        spool_dir=str(tmp_path / "spool"), log_level="WARNING")
    env = {**os.environ, "CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "s3", "CC_LOG_LEVEL": "ERROR"}
    hogs = burners()
    try:
        sim = await asyncio.create_subprocess_exec(
            str(ROOT / ".venv" / "bin" / "contactcenter"), "simulate", "--ami-port",
            str(ami_port), "--agi", f"127.0.0.1:{agi_port}", "--calls", str(CALLS),
            "--rate", "20/s", "--scale", "10", "--agents", "30", "--talk", "30",
            "--patience", "40", "--seed", "23", "--wait-client", "30",
            stdout=asyncio.subprocess.PIPE, env=env, cwd=tmp_path)
        assert sim.stdout is not None
        try:
            client = await aiohttp_client(create_app(settings))
            await login(client, "supervisor")
            out = await asyncio.wait_for(sim.stdout.read(), 600)
            await asyncio.wait_for(sim.wait(), 30)
        finally:
            if sim.returncode is None:
                sim.terminate()
                await sim.wait()
    finally:
        for p in hogs:
            p.kill()
            p.wait()
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["calls"] == CALLS and "unfinished" not in summary["outcomes"]
    app = client.server.app
    sessions = app[SESSIONS]

    async def stored() -> int:
        async with sessions() as db:
            return int((await db.execute(select(func.count()).select_from(Call))).scalar())

    await until(lambda: _eq(stored, CALLS), 60, 0.5)

    async def legs_by_queue() -> dict[str, Counter[str]]:
        async with sessions() as db:
            rows = (await db.execute(
                select(CallLeg.queue, CallLeg.outcome, func.count())
                .where(CallLeg.queue.is_not(None))
                .group_by(CallLeg.queue, CallLeg.outcome))).all()
        out: dict[str, Counter[str]] = {}
        for queue, outcome, n in rows:
            out.setdefault(queue, Counter())[outcome] += int(n)
        return out

    async def served() -> dict[str, tuple[int, int]]:
        body = await (await client.get("/api/queues")).json()
        return {q["name"]: (q["offered"], q["answered"]) for q in body["queues"]
                if q["offered"]}

    store = await legs_by_queue()
    wanted = {q: (sum(c.values()), c["answered"]) for q, c in store.items()}
    # the wallboard agrees exactly, at once or after saying it was stale and rebuilding
    await until(lambda: _same(served, wanted), 60, 0.5)
    # and the reports (the interval summary) say the same
    svc = app[SUPERVISOR].service
    today = app[CLOCK].now().astimezone(svc.tz).date()
    rng = reports.DateRange(today - timedelta(days=1), today)
    report = await reports.call_report(sessions, rng, svc.stats)
    assert {q: (t.offered, t.answered) for q, t in report.by_queue.items() if t.offered} == wanted
    health = await (await client.get("/health", headers=HEALTH)).json()
    assert health["parts"]["bus"]["dropped"] == 0 or health["parts"]["wallboard"].get(
        "drop_rebuilds", 0) > 0  # a drop is only allowed when it was said and repaired
    print(f"\nstarvation burst: {CALLS} calls, store legs {dict(store)}, "
          f"bus {health['parts']['bus']}")


async def _eq(fn: Any, n: int) -> bool:
    return await fn() == n


async def _same(fn: Any, wanted: dict[str, tuple[int, int]]) -> bool:
    return await fn() == wanted
