"""200 concurrent FastAGI sessions against the real server and store, the server in its own
process (bench/agi_latency.py): every call routed, none lost, and the IVR's own time per command
stays small. The figure to report comes from `python -m bench.agi_latency`; the bound here is
loose (a regression catcher: before version checks were coalesced, p99 was about 800 ms) so a
loaded CI box does not flake."""

from __future__ import annotations

import asyncio

from bench.agi_latency import run


async def test_200_concurrent_sessions() -> None:
    result = await asyncio.to_thread(run, 200, 400, 50.0, "sqlite")
    print(result)
    assert result["concurrent_sessions"] == 200
    # 11 commands a session: 7 before the IVR left its trace (LANG and IVRPATH as it goes)
    assert result["routed_ok"] == 400 and result["commands"] == 400 * 11
    assert result["server_errors"] == 0 and result["server_commands"] == 400 * 11
    assert result["server_p99_ms"] is not None and result["server_p99_ms"] < 100, result
