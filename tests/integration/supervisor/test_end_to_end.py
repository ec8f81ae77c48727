"""End to end with the real parts: the burst of 40 captured calls streamed over a TCP socket to
the AMI bridge, the case writer storing each call, and the wallboard counting the bus' events.
The figures must equal the hand count (see tests/unit/supervisor/test_stats.py), the calls
table, /reports, and, after a restart, the rebuilt wallboard."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from contactcenter.app import create_app
from contactcenter.cases.models import Call
from contactcenter.clock import ShiftedClock
from contactcenter.keys import SESSIONS
from contactcenter.queues.models import Queue
from contactcenter.telephony.replay import ReplayServer
from tests.conftest import app_settings, login, transcript, until

pytestmark = pytest.mark.store

# the burst was captured on 2026-11-23 between 03:56 and 03:58 UTC; the wallboard's clock is
# set just after it, so those calls are "today" (UTC) and some are in "the last hour"
CLOCK = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
HAND = {  # offered, answered, abandoned, short, SL, ASA, AHT, abandon rate
    "sanitation": [20, 8, 12, 0, 0.3, 11.2, 4.2, 0.6],
    "potholes": [13, 5, 8, 0, 0.1538, 18.4, 4.2, 0.6154],
    "general-311": [7, 4, 3, 0, 0.4286, 11.2, 3.2, 0.4286],
}
FIELDS = ("offered", "answered", "abandoned", "short_abandoned", "service_level",
          "asa_seconds", "aht_seconds", "abandon_rate")


async def test_burst_through_the_bridge_and_back_after_a_restart(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    # The hand count is talk time only: no after-call work in this capture's queues (the
    # console would otherwise add its wrap-up to each answered call's handle time).
    async with seeded() as db, db.begin():
        await db.execute(update(Queue).values(wrapup_seconds=0))
    server = ReplayServer([transcript("ami-burst-40.raw")], username="cc", secret="s3",
                          start_after=0.2)
    port = await server.start()
    live = app_settings(migrated_url, timezone="UTC", ami_enabled="true", ami_port=str(port),
                        ami_username="cc", ami_secret="s3", spool_dir=str(tmp_path / "spool"))
    try:
        client = await aiohttp_client(create_app(live, clock=ShiftedClock(CLOCK)))
        await login(client, "supervisor")
        sessions = client.server.app[SESSIONS]

        async def stored() -> int:
            async with sessions() as db:
                return int((await db.execute(select(func.count()).select_from(Call))).scalar())

        async def api() -> dict[str, Any]:
            body = await (await client.get("/api/queues")).json()
            return {q["name"]: q for q in body["queues"]}

        async def all_counted() -> dict[str, Any] | None:
            q = await api()
            done = sum(q[n]["offered"] for n in HAND if n in q) == 40 and await stored() == 40
            return q if done else None

        q = await until(all_counted, 20, 0.2)
    finally:
        await server.close()
    # ASA and AHT are shown to 0.1 s: 90/8 = 11.25 -> 11.2 (round half to even)
    for name, expected in HAND.items():
        assert [q[name][k] for k in FIELDS] == expected, name

    async with sessions() as db:
        rows = (await db.execute(select(Call.queue, Call.outcome, func.count())
                                 .group_by(Call.queue, Call.outcome))).all()
    table: dict[str, Counter[str]] = {}
    for queue, outcome, n in rows:
        table.setdefault(queue, Counter())[outcome] = n
    for name in HAND:
        assert q[name]["offered"] == sum(table[name].values())
        assert q[name]["answered"] == table[name]["answered"]
        assert q[name]["abandoned"] == table[name]["abandoned"]

    resp = await client.get("/reports/summary.csv?from=2026-11-23&to=2026-11-23")
    report = {r["name"]: r for r in csv.DictReader(io.StringIO(await resp.text()))
              if r["by"] == "queue"}
    for name, expected in HAND.items():
        assert [int(report[name][k]) for k in FIELDS[:4]] == expected[:4], name
        assert float(report[name]["service_level"]) == expected[4], name

    # restart without Asterisk: the figures come back from the calls table
    await client.close()
    quiet = app_settings(migrated_url, timezone="UTC", spool_dir=str(tmp_path / "spool2"))
    client = await aiohttp_client(create_app(quiet, clock=ShiftedClock(CLOCK)))
    await login(client, "supervisor")
    again = await api()
    for name in HAND:
        assert again[name] == q[name] | {"agents": again[name]["agents"]}, name
        assert [again[name][k] for k in FIELDS] == HAND[name]
