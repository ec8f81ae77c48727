"""`contactcenter replay-ami`: every capture, replayed over a real TCP socket through the real
bridge and case writer, gives the records a person read off the raw events
(tests/expected_records.py)."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from contactcenter import cli, db
from contactcenter.cases.models import Call
from contactcenter.telephony.replay import event_blocks, record_json, replay
from tests.conftest import ROOT, TRANSCRIPTS, transcript
from tests.expected_records import (
    BURST_CALLERS,
    BURST_CHECKED,
    BURST_TOTALS,
    CALL_ANSWERED,
    EXPECTED,
)


def _lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("files", list(EXPECTED), ids=lambda f: "+".join(f))
def test_every_capture_replays_to_the_hand_checked_records(
    files: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    for name in files:
        transcript(name)  # fails clearly when shared/ is missing
    code = cli.main(["replay-ami", *(str(TRANSCRIPTS / f) for f in files)])
    out = capsys.readouterr().out
    assert code == 0
    assert _lines(out) == EXPECTED[files]


ALL_FILES = [f for files in EXPECTED for f in files]
ALL_RECORDS = [r for files in EXPECTED for r in EXPECTED[files]]


@pytest.mark.parametrize("seed", [1, 2])
async def test_replay_in_random_chunks_gives_the_same_records(seed: int) -> None:
    rng = random.Random(seed)
    files = [transcript(n) for n in ALL_FILES]
    # 1..700 bytes per write: frames, lines and the \r\n\r\n terminator are cut anywhere.
    records = await replay(files, chunking=lambda left: min(left, rng.randint(1, 700)))
    assert [record_json(r) for r in records] == ALL_RECORDS


async def test_burst_in_random_chunks_loses_nothing() -> None:
    rng = random.Random(40)
    records = await replay([transcript("ami-burst-40.raw")],
                           chunking=lambda left: min(left, rng.randint(1, 4000)))
    assert len({r.linkedid for r in records}) == len(records) == BURST_TOTALS["calls"]
    by_id = {r.linkedid: record_json(r) for r in records}
    assert [by_id[e["linkedid"]] for e in BURST_CHECKED] == BURST_CHECKED


def test_replay_as_a_subprocess() -> None:
    """Every capture, one after the other on one connection, in a separate process."""
    proc = subprocess.run(
        [sys.executable, "-m", "contactcenter", "replay-ami",
         *(str(TRANSCRIPTS / f) for f in ALL_FILES)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert _lines(proc.stdout) == ALL_RECORDS


@pytest.mark.store
def test_burst_40_no_call_lost_duplicated_or_left_open(
    migrated_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["replay-ami", str(TRANSCRIPTS / "ami-burst-40.raw"), "--db", migrated_url])
    records = _lines(capsys.readouterr().out)
    assert code == 0
    ids = [r["linkedid"] for r in records]
    assert len(ids) == len(set(ids)) == BURST_TOTALS["calls"]
    outcomes = Counter(r["outcome"] for r in records)
    assert outcomes == {"answered": BURST_TOTALS["answered"],
                        "abandoned": BURST_TOTALS["abandoned"]}
    assert {r["caller_number"] for r in records} == BURST_CALLERS
    assert not [r for r in records if r.get("partial")]
    by_id = {r["linkedid"]: r for r in records}
    for expected in BURST_CHECKED:
        assert by_id[expected["linkedid"]] == expected

    # ...and the store holds each once, with the caller linked as a citizen.
    async def stored() -> tuple[int, int]:
        engine = db.make_engine(migrated_url)
        try:
            async with engine.connect() as conn:
                n = (await conn.execute(select(func.count()).select_from(Call))).scalar_one()
                linked = (await conn.execute(
                    select(func.count()).select_from(Call).where(Call.citizen_id.is_not(None))
                )).scalar_one()
                return n, linked
        finally:
            await engine.dispose()

    import asyncio

    assert asyncio.run(stored()) == (40, 40)
    # Replaying the same capture into the same store writes nothing twice.
    assert cli.main(["replay-ami", str(TRANSCRIPTS / "ami-burst-40.raw"),
                     "--db", migrated_url]) == 0
    capsys.readouterr()
    assert asyncio.run(stored()) == (40, 40)


def test_a_capture_cut_mid_call_still_gives_one_partial_record(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """A capture never seen before: it starts after the call began (no Newchannel of the
    citizen) and stops before it ended (no AgentComplete, no Hangup)."""
    blocks = event_blocks(transcript("ami-call-answered.raw"))
    start = next(i for i, b in enumerate(blocks) if b.startswith(b"Event: QueueCallerJoin"))
    end = next(i for i, b in enumerate(blocks) if b.startswith(b"Event: AgentConnect"))
    path = tmp_path / "cut.raw"
    path.write_bytes(b"".join(blocks[start : end + 1]))
    code = cli.main(["replay-ami", str(path), "--grace", "0.2"])
    records = _lines(capsys.readouterr().out)
    assert code == 0
    assert len(records) == 1
    (rec,) = records
    assert rec["partial"] is True
    assert rec["linkedid"] == CALL_ANSWERED[0]["linkedid"]
    assert rec["queue"] == "sanitation"
    assert rec["agent"] == "Ana Operator"
    assert rec["wait_seconds"] == 2.0  # AgentConnect HoldTime
    # Closed at the stream's last Timestamp (AgentConnect @1795406106.352446): no talk seen.
    assert rec["ended_at"] == "2026-11-23T03:55:06.352446+00:00"
    assert rec["talk_seconds"] in (None, 0.0)


def test_replay_refuses_a_file_without_events(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lf.raw"
    path.write_bytes(transcript("ami-call-answered.raw").replace(b"\r\n", b"\n"))
    assert cli.main(["replay-ami", str(path)]) == 2
    assert "no `Event:` blocks" in capsys.readouterr().err
    assert cli.main(["replay-ami", str(tmp_path / "missing.raw")]) == 2
    assert "cannot read" in capsys.readouterr().err
