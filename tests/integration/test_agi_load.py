"""200 concurrent FastAGI sessions on the real store: every call routed, none lost, and the
IVR's own per-command time stays small. (bench/agi_latency.py is the full measurement, with the
server in its own process; this keeps a loose bound so a loaded CI box does not flake.)"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.agi_latency import _drive
from contactcenter.ivr.services import IvrServices
from contactcenter.seed import seed_reference
from tests.ivr_support import Recorder, running_ivr


@pytest.mark.store
async def test_200_concurrent_sessions(sessions: async_sessionmaker[AsyncSession]) -> None:
    await seed_reference(sessions)
    recorder = Recorder()
    async with running_ivr(IvrServices(sessions), recorder) as server:
        result = await _drive(server.port, sessions=200, calls=400, think=0.05)
        latency = server.stats.latency_ms()
        stats = server.stats
    print({**result, **{f"server_{k}": v for k, v in latency.items()}})
    assert result["concurrent_sessions"] == 200
    assert result["routed_ok"] == 400 and result["commands"] == 400 * 7
    assert stats.errors == 0 and stats.timeouts == 0 and stats.sessions_active == 0
    assert {r.queue for r in recorder.results} == {"sanitation"}
    assert latency["p99_ms"] is not None and latency["p99_ms"] < 50, latency
