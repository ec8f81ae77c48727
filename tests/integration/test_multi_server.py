"""Several Asterisks (`CC_AMI_SERVERS`): two servers whose linkedids collide (the same capture
played by both) are two calls, keyed by (server, linkedid), each recorded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter.app import create_app
from contactcenter.config import load_settings
from contactcenter.keys import SESSIONS
from contactcenter.telephony.replay import ReplayServer
from tests.conftest import HEALTH, HEALTH_KEY, transcript, until
from tests.expected_records import CALL_ANSWERED


@pytest.mark.store
async def test_two_servers_same_linkedid_two_calls(
    aiohttp_client: Any, migrated_url: str, tmp_path: Path
) -> None:
    data = transcript("ami-call-answered.raw")
    one = ReplayServer([data], username="cc", secret="s3")
    two = ReplayServer([data], username="cc", secret="s3")
    p1, p2 = await one.start(), await two.start()
    settings = load_settings(env={
        "CC_DATABASE_URL": migrated_url, "CC_AMI_USERNAME": "cc", "CC_AMI_SECRET": "s3",
        "CC_AMI_SERVERS": f"pbx1=127.0.0.1:{p1},pbx2=127.0.0.1:{p2}", "CC_AGI_PORT": "0",
        "CC_SPOOL_DIR": str(tmp_path / "spool"), "CC_HEALTH_API_KEY": HEALTH_KEY,
    })
    try:
        client = await aiohttp_client(create_app(settings))
        app = client.server.app
        from contactcenter.cases.models import Call

        async def stored() -> list[Any]:
            async with app[SESSIONS]() as session:
                rows = list((await session.execute(select(Call))).scalars())
            return rows if len(rows) >= 2 else []

        rows = await until(stored, 15)
        health = await (await client.get("/health", headers=HEALTH)).json()
    finally:
        await one.close()
        await two.close()
    linkedid = CALL_ANSWERED[0]["linkedid"]
    assert sorted((r.server, r.linkedid) for r in rows) == [("pbx1", linkedid),
                                                            ("pbx2", linkedid)]
    assert {r.outcome for r in rows} == {"answered"}
    assert set(health["parts"]["ami"]["servers"]) == {"pbx1", "pbx2"}
    # each server got its own resync, and no Filter (manager.conf's eventfilter does that)
    for server in (one, two):
        names = [a.get("action") for a in server.actions]
        assert names[:2] == ["Challenge", "Login"] and "Filter" not in names
        assert {"CoreShowChannels", "QueueStatus"} <= set(names)
