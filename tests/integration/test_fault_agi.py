"""Issue 11: the FastAGI server restarts while calls are in the IVR and new ones arrive. Calls
in a session when it stops, and calls that find the port closed, go to the dialplan's fallback
(`AGISTATUS` / empty `QUEUE` -> Queue(general-311), as in asterisk-config/extensions.conf, played
by the simulator); none hangs, each ends in one record; after the restart the IVR routes again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contactcenter.telephony.keys import AGI_SERVER
from tests.conftest import until
from tests.faults_support import center

pytestmark = pytest.mark.store


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_fastagi_restart_sends_callers_to_the_fallback_none_hangs(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    async with center(aiohttp_client, migrated_url, tmp_path, scale=10.0) as c:
        server = c.app[AGI_SERVER]
        await until(lambda: server.listening, 5)
        # callers who listen to the menu (no keys yet): their sessions are in progress
        in_ivr = [c.call(i, [], patience=120) for i in range(4)]
        await until(lambda: server.stats.sessions_active == 4, 15, 0.02)
        await server.close()  # the IVR process goes away mid-session
        assert not server.listening
        refused = [c.call(10 + i, ["1", "1"], patience=120) for i in range(4)]
        await until(lambda: c.finished(refused) or None, 60, 0.1)
        await server.start()  # back on the same port
        after = [c.call(20 + i, ["1", "1"], patience=120) for i in range(3)]
        await until(lambda: c.finished(in_ivr + refused + after), 90, 0.1)
        await until(lambda: _stored(c, 11), 15, 0.1)
        rows = {r.linkedid: r for r in await c.rows()}
    assert len(rows) == 11
    for call in in_ivr + refused:
        assert rows[call.ch1.linkedid].queue == "general-311", call.ch1.linkedid
    for call in after:
        assert rows[call.ch1.linkedid].queue == "sanitation"
    fallback_vars = [call.ch2.vars.get("AGISTATUS") for call in refused]
    assert fallback_vars == ["FAILURE"] * 4


async def _stored(c: Any, n: int) -> bool:
    return await c.stored() == n
