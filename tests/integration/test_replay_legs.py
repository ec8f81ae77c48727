"""Issue 19's real captures (tests/data/asterisk/, Asterisk 22.10.1) replayed over a real TCP
socket through the real bridge and case writer: a blind transfer general-311/Eve -> sanitation/Ana
and a sanitation timeout + the dialplan's fallback to general-311/Carla give the legs a person
read off Asterisk's own AgentConnect/AgentComplete/QueueCallerAbandon figures
(tests/expected_records.py OWN_EXPECTED); a caller who hangs up in the queue stays abandoned.
queue_log, which Asterisk wrote meanwhile, agrees leg by leg."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from contactcenter import cli, db
from contactcenter.cases.models import Call, CallLeg
from contactcenter.telephony.replay import record_json, replay
from tests.expected_records import OWN_EXPECTED

CAPTURES = Path(__file__).resolve().parents[1] / "data" / "asterisk"
FILES = list(OWN_EXPECTED)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("name", FILES)
def test_each_capture_replays_to_its_hand_read_legs(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["replay-ami", str(CAPTURES / name)]) == 0
    assert _lines(capsys.readouterr().out) == OWN_EXPECTED[name]


@pytest.mark.parametrize("seed", [1, 2])
async def test_all_three_in_random_chunks_on_one_connection(seed: int) -> None:
    rng = random.Random(seed)
    records = await replay([(CAPTURES / n).read_bytes() for n in FILES],
                           chunking=lambda left: min(left, rng.randint(1, 700)))
    assert [record_json(r) for r in records] == [r for n in FILES for r in OWN_EXPECTED[n]]


def test_queue_log_agrees_leg_by_leg() -> None:
    """Asterisk's queue_log of the same calls: each ENTERQUEUE is a leg; CONNECT's wait,
    COMPLETEAGENT/BLINDTRANSFER's talk, EXITWITHTIMEOUT/ABANDON's wait match ours."""
    for name in FILES:
        log = (CAPTURES / name.replace(".raw", ".queue_log")).read_text()
        ours: list[tuple[Any, ...]] = []
        for line in log.splitlines():
            _t, callid, queue, agent, verb, *data = line.split("|")
            if callid in ("MANAGER", "NONE"):
                continue
            if verb == "ENTERQUEUE":
                ours.append([queue, None, None, None, None])  # type: ignore[arg-type]
            elif verb == "CONNECT":
                ours[-1][2], ours[-1][3] = agent, float(data[0])
            elif verb in ("COMPLETEAGENT", "COMPLETECALLER"):
                ours[-1][1], ours[-1][4] = "answered", float(data[1])
            elif verb == "BLINDTRANSFER":
                ours[-1][1], ours[-1][4] = "transferred", float(data[3])
            elif verb == "EXITWITHTIMEOUT":
                ours[-1][1], ours[-1][3] = "timed_out", float(data[2])
            elif verb == "ABANDON":
                ours[-1][1], ours[-1][3] = "abandoned", float(data[2])
        (record,) = OWN_EXPECTED[name]
        legs = [[x["queue"], x["outcome"], x["agent"], x["wait_seconds"], x["talk_seconds"]]
                for x in record["legs"]]
        assert legs == ours, name


def test_asterisk_side_filters_keep_queuestatus() -> None:
    """What Asterisk sends through the shipped account (its read classes, then manager.conf's
    eventfilter lines: the bridge sends no Filter) still tells the timeout from the hang-up."""
    from tests.integration.test_asterisk_config import _manager, _shipped_account_passes

    opts, items = _manager()
    read = set(opts["read"].split(","))
    filters = [v for k, v in items if k == "eventfilter"]
    data = (CAPTURES / "ami-queue-timeout-fallback.raw").read_bytes()
    frames = [f for f in data.split(b"\r\n\r\n") if f.startswith(b"Event: ")]
    passed = [f + b"\r\n\r\n" for f in frames if _shipped_account_passes(f, read, filters)]
    assert any(b"Variable: QUEUESTATUS\r\nValue: TIMEOUT" in f for f in passed)
    records = asyncio.run(replay([b"Asterisk Call Manager/11.0.0\r\n" + b"".join(passed)]))
    assert [record_json(r) for r in records] == OWN_EXPECTED["ami-queue-timeout-fallback.raw"]


def test_without_queuestatus_the_caller_joining_another_queue_was_moved_not_abandoned(
) -> None:
    """An Asterisk whose event filter drops QUEUESTATUS (the shipped one did): the caller
    joining another queue right after the abandon event cannot have hung up; without
    QUEUESTATUS=TIMEOUT it looks like a Redirect (which app_queue also reports as an abandon),
    so the visit counts as transferred: neither an abandon nor a timeout."""
    data = (CAPTURES / "ami-queue-timeout-fallback.raw").read_bytes()
    blocks = [b + b"\r\n\r\n" for b in data.split(b"\r\n\r\n") if b]
    kept = [b for b in blocks if b"Variable: QUEUESTATUS" not in b]
    assert len(kept) == len(blocks) - 1
    (record,) = asyncio.run(replay([b"".join(kept)]))
    assert [(x.queue, x.outcome, x.wait_seconds, x.target) for x in record.legs] == [
        ("sanitation", "transferred", 8.0, "general-311"),
        ("general-311", "answered", 2.0, None)]


@pytest.mark.store
def test_the_store_holds_the_legs_and_counts_each_queue_s_own(
    migrated_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    files = [str(CAPTURES / n) for n in FILES]
    assert cli.main(["replay-ami", *files, "--db", migrated_url]) == 0
    capsys.readouterr()

    async def stored() -> tuple[list[Any], list[Any]]:
        engine = db.make_engine(migrated_url)
        try:
            async with engine.connect() as conn:
                calls = (await conn.execute(
                    select(Call.linkedid, Call.outcome, Call.first_queue, Call.final_queue,
                           Call.final_agent, Call.wait_seconds, Call.talk_seconds)
                    .order_by(Call.linkedid))).all()
                legs = (await conn.execute(
                    select(Call.linkedid, CallLeg.seq, CallLeg.queue, CallLeg.outcome,
                           CallLeg.agent, CallLeg.wait_seconds, CallLeg.talk_seconds)
                    .join(Call, Call.id == CallLeg.call_id)
                    .order_by(Call.linkedid, CallLeg.seq))).all()
                return list(calls), list(legs)
        finally:
            await engine.dispose()

    calls, legs = asyncio.run(stored())
    assert [tuple(c) for c in calls] == [
        ("1795533976.6", "answered", "general-311", "sanitation", "Ana", 3.0, 11.0),
        ("1795533993.12", "answered", "sanitation", "general-311", "Carla", 10.0, 5.0),
        ("1795534011.16", "abandoned", "sanitation", "sanitation", None, 5.0, None),
    ]
    assert [tuple(x) for x in legs] == [
        ("1795533976.6", 0, "general-311", "transferred", "Eve", 1.0, 5.0),
        ("1795533976.6", 1, "sanitation", "answered", "Ana", 2.0, 6.0),
        ("1795533993.12", 0, "sanitation", "timed_out", None, 8.0, None),
        ("1795533993.12", 1, "general-311", "answered", "Carla", 2.0, 5.0),
        ("1795534011.16", 0, "sanitation", "abandoned", None, 5.0, None),
    ]
    # per queue, over its own legs: sanitation offered 3 (answered, timed out, abandoned);
    # general-311 offered 2 (Eve's transferred leg was answered, Carla's)
    per_queue = Counter((x.queue, x.outcome) for x in legs)
    assert per_queue == {("sanitation", "answered"): 1, ("sanitation", "timed_out"): 1,
                         ("sanitation", "abandoned"): 1, ("general-311", "transferred"): 1,
                         ("general-311", "answered"): 1}
    # replayed again into the same store: nothing twice, legs included
    assert cli.main(["replay-ami", *files, "--db", migrated_url]) == 0
    capsys.readouterr()
    assert asyncio.run(stored()) == (calls, legs)
