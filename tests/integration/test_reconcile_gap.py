"""Issue 19: calls that begin and end while the bridge is not connected to AMI get their record
from Asterisk's own queue_log and CDR (the simulator writes both as Asterisk does), once each,
marked reconciled; the gap is logged and shown in /health and /metrics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.cases.models import CallLeg
from contactcenter.keys import COUNTERS, SESSIONS
from contactcenter.telephony.models import BridgeCheckpoint
from contactcenter.telephony.plugin import BRIDGE
from contactcenter.telephony.reconcile_plugin import RECONCILERS
from contactcenter.telephony.simulator.pbx import CitizenCall
from contactcenter.telephony.simulator.records import AsteriskRecords
from tests.conftest import login, until
from tests.faults_support import Center, center

pytestmark = pytest.mark.store
DATA = Path(__file__).resolve().parents[1] / "data" / "asterisk"


def records_of(tmp_path: Path) -> tuple[AsteriskRecords, dict[str, str]]:
    qlog, cdr = tmp_path / "queue_log", tmp_path / "cdr.csv"
    return AsteriskRecords(qlog, cdr), {"asterisk_records": f"file:{qlog};cdr={cdr}",
                                        "reconcile_interval": "0.2"}


def outcome_agrees(sim: CitizenCall, outcome: str) -> bool:
    if sim.outcome == "abandoned":
        return outcome in ("abandoned", "short_abandoned")
    return outcome == sim.outcome


async def run_gap(c: Center, n_before: int, n_gap: int, n_after: int,
                  ) -> tuple[list[CitizenCall], list[CitizenCall], list[CitizenCall]]:
    link = c.app[BRIDGE].links["default"]
    await until(lambda: link.resyncs == 1, 10, 0.05)
    # patience 1..40 s and keys 1,1 / 1,2 / 1,3: answered, abandoned and short-abandoned calls
    before = [c.call(i, ["1", str(1 + i % 3)], patience=2 + (i * 7) % 40)
              for i in range(n_before)]
    await until(lambda: c.finished(before), 120, 0.1)
    await until(lambda: _stored(c, n_before), 20, 0.1)
    await c.ami.close()  # the bridge loses AMI: nothing is seen from here
    await until(lambda: not link.client.health()["logged_in"], 5, 0.05)
    gap = [c.call(100 + i, ["1", str(1 + i % 3)], patience=2 + (i * 5) % 40)
           for i in range(n_gap)]
    await until(lambda: c.finished(gap), 180, 0.1)
    await c.ami.start()
    await until(lambda: link.resyncs == 2, 20, 0.1)
    after = [c.call(200 + i, ["1", "1"], patience=60) for i in range(n_after)]
    await until(lambda: c.finished(after), 120, 0.1)
    await until(lambda: _stored(c, n_before + n_gap + n_after), 30, 0.1)
    return before, gap, after


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_calls_during_an_ami_outage_are_reconciled_once(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recs, overrides = records_of(tmp_path)
    caplog.set_level(logging.WARNING, "contactcenter.telephony.records")
    async with center(aiohttp_client, migrated_url, tmp_path, scale=10.0, agents=2,
                      **overrides) as c:
        c.pbx.records = recs
        before, gap, after = await run_gap(c, 3, 8, 2)
        rows = await c.rows()
        async with c.app[SESSIONS]() as db:
            legs = list((await db.execute(select(CallLeg))).scalars())
            checkpoint = await db.get(BridgeCheckpoint, "default")
        body = await c.health()
        counters = c.app[COUNTERS]
        # the wallboard's figures count the reconciled calls too (they came over the bus)
        await login(c.client, "supervisor")
        api = await (await c.client.get("/api/queues")).json()
        offered = sum(q["offered"] for q in api["queues"])
        rec = c.app[RECONCILERS]["default"]
    by_id = {r.linkedid: r for r in rows}
    assert len(rows) == len(by_id) == 13  # every call once: no duplicate, none missing
    assert offered == sum(leg.kind == "queue" for leg in legs)
    for sim in gap:
        row = by_id[sim.ch1.linkedid]
        assert row.reconciled and not row.partial
        assert outcome_agrees(sim, row.outcome), (sim.outcome, row.outcome)
        if sim.queue:
            assert row.queue == sim.queue and row.first_queue == sim.queue
            assert any(leg.call_id == row.id for leg in legs)
        assert row.caller_number == sim.ch2.cid_num
    for sim in before + after:
        assert not by_id[sim.ch1.linkedid].reconciled
    assert rec.gap is not None and rec.gap.done and rec.gap.calls == len(gap)
    part = body["parts"]["reconcile"]
    assert part["ok"] is True
    assert part["servers"]["default"]["last_gap"]["calls"] == len(gap)
    assert part["servers"]["default"]["calls_reconciled"] == len(gap)
    assert counters["cc_calls_reconciled_total"][1]() == len(gap)  # /metrics reads these
    assert counters["cc_reconcile_gaps_total"][1]() == 1
    assert checkpoint is not None and checkpoint.gap_calls == len(gap)
    assert any("calls reconciled" in r.getMessage() and f"{len(gap)} calls" in r.getMessage()
               for r in caplog.records)


@pytest.mark.slow  # seconds of real-time waiting (an outage, a burst): `make test`, not test-fast
async def test_unreadable_records_make_reconcile_degraded_then_it_catches_up(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    recs, overrides = records_of(tmp_path)
    async with center(aiohttp_client, migrated_url, tmp_path, scale=10.0, agents=2,
                      **overrides) as c:
        c.pbx.records = recs
        link = c.app[BRIDGE].links["default"]
        await until(lambda: link.resyncs == 1, 10, 0.05)
        first = [c.call(1, ["1", "1"], patience=60)]
        await until(lambda: c.finished(first), 60, 0.1)
        await until(lambda: _stored(c, 1), 20, 0.1)
        await c.ami.close()
        await until(lambda: not link.client.health()["logged_in"], 5, 0.05)
        gap = [c.call(10 + i, ["1", "1"], patience=60) for i in range(2)]
        await until(lambda: c.finished(gap), 60, 0.1)
        hidden = tmp_path / "queue_log.away"
        (tmp_path / "queue_log").rename(hidden)  # Asterisk's records out of reach
        await c.ami.start()
        await until(lambda: link.resyncs == 2, 20, 0.1)
        rec = c.app[RECONCILERS]["default"]
        await until(lambda: rec.gap is not None and rec.gap.error is not None, 10, 0.05)
        body = await c.health()
        assert body["http_status"] == 503
        part = body["parts"]["reconcile"]["servers"]["default"]
        assert part["behind"] is True and "queue_log" in part["last_gap"]["error"]
        # a call seen live meanwhile: the stored checkpoint stays at the gap's start, so a
        # restart now would find the gap again
        live = [c.call(20, ["1", "1"], patience=60)]
        await until(lambda: c.finished(live), 60, 0.1)
        await until(lambda: _stored(c, 2), 20, 0.1)
        async with c.app[SESSIONS]() as db:
            point = await db.get(BridgeCheckpoint, "default")
        assert point is not None and point.last_event_at is not None
        assert point.last_event_at.timestamp() == pytest.approx(rec.gap.start, abs=1e-3)
        hidden.rename(tmp_path / "queue_log")
        await until(lambda: _stored(c, 4), 20, 0.1)
        body = await c.health()
        assert body["parts"]["reconcile"]["ok"] is True
        rows = await c.rows()
    assert sorted(r.reconciled for r in rows) == [False, False, True, True]


async def _stored(c: Center, n: int) -> bool:
    return await c.stored() == n


async def test_the_simulators_queue_log_has_asterisks_shape(tmp_path: Path) -> None:
    """Each event the simulator writes has the fields real Asterisk 22.10.1 wrote for it
    (tests/data/asterisk/*.queue_log): same event names, same number of data fields, numbers
    where Asterisk has numbers."""
    from contactcenter.telephony.reconcile import read_queue_log
    from contactcenter.telephony.simulator.ami_server import AmiServer
    from contactcenter.telephony.simulator.clock import VirtualClock
    from contactcenter.telephony.simulator.generator import add_simulated_agents
    from contactcenter.telephony.simulator.pbx import SimPbx

    real: dict[str, tuple[int, ...]] = {}
    for f in sorted(DATA.glob("*.queue_log")):
        for r in read_queue_log(f.read_text()):
            real[r.event] = tuple(int(d.replace(".", "").isdigit()) for d in r.data)
    recs, _ = records_of(tmp_path)
    pbx = SimPbx(VirtualClock(50.0), agi_port=1, seed=3)
    pbx.records = recs
    add_simulated_agents(pbx, ["general-311"], 1)  # the IVR is unreachable: fallback
    server = AmiServer(pbx, "cc", "s3", port=0)
    await server.start()
    try:
        calls = [pbx.originate_citizen(f"55501{i:02d}", "C", "", patience=3 + 40 * (i % 2),
                                       prewait=0.2) for i in range(6)]
        await until(lambda: all(c.where == "ended" for c in calls), 60, 0.05)
    finally:
        await pbx.close()
        await server.close()
        recs.close()
    sim = read_queue_log((tmp_path / "queue_log").read_text())
    seen = {r.event for r in sim}
    assert {"ENTERQUEUE", "CONNECT", "COMPLETEAGENT", "ABANDON"} <= seen
    for r in sim:
        if r.event in real:
            shape = tuple(int(d.replace(".", "").isdigit()) for d in r.data)
            assert shape == real[r.event], (r, real[r.event])
