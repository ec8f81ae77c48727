"""Issue 11, AMI: with several calls in flight the link is cut and the port refuses for a while;
meanwhile Asterisk restarts (its channels are gone, and their Hangup events were never seen).
When the bridge gets back in (new `FullyBooted`, `CoreShowChannels` empty) every call ends in
exactly one record: the ones in flight are flagged partial, the ones before are whole, and calls
after the restart are recorded normally. (One call across a restart is covered by
test_telephony_plugin.py; the refusal with backoff by test_ami_client.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from contactcenter.telephony.plugin import BRIDGE
from contactcenter.telephony.simulator.generator import add_simulated_agents
from tests.conftest import until
from tests.faults_support import center

pytestmark = pytest.mark.store


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_refused_then_restarted_asterisk_every_call_once_in_flight_partial(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    async with center(aiohttp_client, migrated_url, tmp_path, scale=10.0, agents=2) as c:
        link = c.app[BRIDGE].links["default"]
        await until(lambda: link.resyncs == 1, 10, 0.05)
        before = [c.call(i, ["1", "1"], patience=120) for i in range(2)]
        await until(lambda: c.finished(before), 60, 0.1)
        await until(lambda: _stored(c, 2), 10, 0.1)
        # six calls in flight: past the IVR, waiting in the queues or talking
        flight = [c.call(10 + i, ["1", "3"][: 1 + i % 2], patience=600) for i in range(6)]
        await until(lambda: not any(x.where in ("dialplan", "agi") for x in flight), 30, 0.05)
        flight = [x for x in flight if x.where != "ended"]  # answered quickly: not in flight
        assert len(flight) >= 4

        await c.ami.close()  # the socket is killed and the port refuses
        await until(lambda: not link.client.health()["logged_in"], 5, 0.05)
        c.pbx.shutdown(restart=True)  # Asterisk restarts unseen: its channels are gone
        await asyncio.sleep(1.5)  # refused connects meanwhile (the bridge backs off)
        body = await c.health()
        assert body["parts"]["ami"]["ok"] is False and body["http_status"] == 503
        await c.ami.start()  # up again, same port
        add_simulated_agents(c.pbx, ["sanitation", "potholes", "general-311"], 2)
        await until(lambda: link.resyncs == 2, 20, 0.1)
        after = [c.call(30 + i, ["1", "1"], patience=120) for i in range(2)]
        await until(lambda: c.finished(after), 60, 0.1)
        await until(lambda: _stored(c, 10), 15, 0.1)
        rows = await c.rows()
    by_id = {r.linkedid: r for r in rows}
    assert len(rows) == len(by_id) == 10  # one record per call, no duplicate
    assert all(by_id[x.ch1.linkedid].partial for x in flight)
    assert not any(by_id[x.ch1.linkedid].partial for x in before + after)
    assert {by_id[x.ch1.linkedid].queue for x in after} == {"sanitation"}


async def _stored(c: Any, n: int) -> bool:
    return await c.stored() == n
