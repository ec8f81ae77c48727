"""Issue 19, unchecked numbers, end to end: captures edited to carry `TalkTime: inf`,
`HoldTime: nan`, `HoldTime: -5` and `RingTime: 1e308`, and a reused Linkedid, streamed over a
TCP socket to the real bridge and case writer; nothing invalid is stored or served, the figures
come from the event stamps, and the admin sees the counter and the log lines."""

from __future__ import annotations

import json
import logging
import math
import re
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
from contactcenter.telephony.replay import ReplayServer, event_blocks
from tests.conftest import HEALTH_KEY, app_settings, login, transcript, until

pytestmark = pytest.mark.store

# the captures were made on 2026-11-23 around 03:55 UTC: "today" for a wallboard at 04:30
CLOCK = datetime(2026, 11, 23, 4, 30, tzinfo=UTC)
DURATIONS = ("ivr_seconds", "wait_seconds", "ring_seconds", "talk_seconds", "hold_seconds",
             "handle_seconds")


def _field(block: bytes, name: str) -> bytes:
    m = re.search(rb"\r\n" + name.encode() + rb": ([^\r]*)\r\n", block)
    assert m, (name, block[:60])
    return m.group(1)


def _stamp(blocks: list[bytes], event: str) -> float:
    return float(_field(next(b for b in blocks if b.startswith(b"Event: " + event.encode()
                                                                + b"\r\n")), "Timestamp"))


def _edit(blocks: list[bytes], event: str, **fields: str) -> list[bytes]:
    """The blocks with `fields` of the first `event` block replaced (each must be there)."""
    i = next(i for i, b in enumerate(blocks) if b.startswith(f"Event: {event}\r\n".encode()))
    block = blocks[i]
    for key, value in fields.items():
        block, n = re.subn(rb"\r\n" + key.encode() + rb": [^\r]*\r\n",
                           f"\r\n{key}: {value}\r\n".encode(), block, count=1)
        assert n == 1, (event, key)
    return [*blocks[:i], block, *blocks[i + 1:]]


def _shift(blocks: list[bytes], seconds: float) -> list[bytes]:
    def later(m: re.Match[bytes]) -> bytes:
        return b"Timestamp: %.6f" % (float(m.group(1)) + seconds)

    return [re.sub(rb"Timestamp: ([0-9.]+)", later, b) for b in blocks]


def _strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise AssertionError(f"invalid JSON constant {constant} in {text[:200]}")

    return json.loads(text, parse_constant=refuse)


async def test_bad_numbers_are_never_stored_nor_served_and_a_reused_linkedid_is_kept(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # no after-call work: handle time is then talk time alone (as in test_end_to_end)
    async with seeded() as db, db.begin():
        await db.execute(update(Queue).values(wrapup_seconds=0))
    answered = event_blocks(transcript("ami-call-answered.raw"))
    answered = _edit(answered, "AgentConnect", HoldTime="nan", RingTime="1e308")
    answered = _edit(answered, "AgentComplete", TalkTime="inf")
    abandoned = _edit(event_blocks(transcript("ami-call-abandoned.raw")), "QueueCallerAbandon",
                      HoldTime="-5")
    # The same call twice, one minute apart: every Uniqueid, so the Linkedid, comes back.
    ivr = event_blocks(transcript("ami-ivr-hangup.raw"))
    stream = b"".join([*answered, *abandoned, *ivr, *_shift(ivr, 60.0)])

    server = ReplayServer([stream], username="cc", secret="s3", start_after=0.2)
    port = await server.start()
    live = app_settings(migrated_url, timezone="UTC", ami_enabled="true", ami_port=str(port),
                        ami_username="cc", ami_secret="s3", spool_dir=str(tmp_path / "spool"))
    caplog.set_level(logging.WARNING, logger="contactcenter")
    try:
        client = await aiohttp_client(create_app(live, clock=ShiftedClock(CLOCK)))
        await login(client, "supervisor")
        sessions = client.server.app[SESSIONS]

        async def stored() -> int:
            async with sessions() as db:
                return int((await db.execute(select(func.count()).select_from(Call))).scalar())

        await until(lambda: _eq(stored, 4), 20, 0.2)
    finally:
        await server.close()

    async with sessions() as db:
        rows = {r.linkedid: r for r in (await db.execute(select(Call))).scalars()}
    assert set(rows) == {"1795406102.0", "1795406136.10", "1795406173.16", "1795406173.16#2"}
    for row in rows.values():
        for name in DURATIONS:
            value = getattr(row, name)
            assert value is None or (math.isfinite(value) and value >= 0), (row.linkedid, name)

    # Asterisk's figures refused: the same figures from the event stamps instead.
    call = rows["1795406102.0"]
    connect, complete = _stamp(answered, "AgentConnect"), _stamp(answered, "AgentComplete")
    assert call.outcome == "answered"
    assert call.wait_seconds == pytest.approx(connect - _stamp(answered, "QueueCallerJoin"))
    assert call.ring_seconds == pytest.approx(connect - _stamp(answered, "AgentCalled"))
    assert call.talk_seconds == pytest.approx(complete - connect)
    assert 1.5 < call.wait_seconds < 3 and 1.5 < call.ring_seconds < 3  # Asterisk said 2, 2
    assert 5.5 < call.talk_seconds < 7  # and 6
    gone = rows["1795406136.10"]
    assert gone.outcome == "abandoned"
    assert gone.wait_seconds == pytest.approx(
        _stamp(abandoned, "QueueCallerAbandon") - _stamp(abandoned, "QueueCallerJoin"))
    first, second = rows["1795406173.16"], rows["1795406173.16#2"]
    assert (second.started_at - first.started_at).total_seconds() == pytest.approx(60.0)
    assert first.outcome == second.outcome == "ivr_hangup"

    # One WARNING line per event naming the event and the field.
    lines = [r.getMessage() for r in caplog.records if "bad number field" in r.getMessage()]
    assert len(lines) == 3, lines
    assert any("AgentConnect HoldTime='nan', RingTime='1e308'" in x for x in lines)
    assert any("AgentComplete TalkTime='inf'" in x for x in lines)
    assert any("QueueCallerAbandon HoldTime='-5'" in x for x in lines)

    resp = await client.get("/api/queues")
    queues = {q["name"]: q for q in _strict_json(await resp.text())["queues"]}
    assert queues["sanitation"]["answered"] == 1 and queues["sanitation"]["abandoned"] == 1
    assert queues["sanitation"]["aht_seconds"] == round(complete - connect, 1)

    health = _strict_json(await (await client.get(
        "/health", headers={"X-API-Key": HEALTH_KEY})).text())
    assert health["parts"]["ami"]["bad_fields"] == 4
    assert health["parts"]["ami"]["servers"]["default"]["bad_fields"] == 4
    metrics = await (await client.get("/metrics")).text()
    assert "cc_ami_bad_fields_total 4.0" in metrics


async def _eq(fn: Any, expected: int) -> bool:
    return bool(await fn() == expected)


async def test_api_queues_stays_valid_json_with_a_bad_row_in_the_store(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path,
) -> None:
    """Rows written by another path (an import, a hand fix) bypass the case writer's check."""
    sessions = seeded
    started = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    bad = {"a": (math.inf, 30.0), "b": (-5.0, math.inf), "c": (math.nan, math.nan),
           "d": (4.0, 60.0)}
    async with sessions() as db, db.begin():
        for lid, (wait, talk) in bad.items():
            db.add(Call(server="default", linkedid=lid, started_at=started, ended_at=started,
                        outcome="answered", queue="sanitation", agent="Ana",
                        wait_seconds=wait, talk_seconds=talk, handle_seconds=talk,
                        ivr_path=[], partial=False))
    quiet = app_settings(migrated_url, timezone="UTC", spool_dir=str(tmp_path / "spool"))
    client = await aiohttp_client(create_app(quiet, clock=ShiftedClock(CLOCK)))
    await login(client, "supervisor")
    resp = await client.get("/api/queues")
    assert resp.status == 200
    (sanitation,) = [q for q in _strict_json(await resp.text())["queues"]
                     if q["name"] == "sanitation"]
    assert sanitation["answered"] == 4
    # only the sane figures count: ASA from "d" alone (4), AHT from "a" and "d" ((30+60)/2)
    assert sanitation["asa_seconds"] == 4.0
    assert sanitation["aht_seconds"] == 45.0
