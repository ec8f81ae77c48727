"""The durable case writer (issue 19): a writer process killed with SIGKILL at any moment, the
database up or down, loses no call it accepted. A child process submits calls and prints the
number of each once `submit` has had its event-loop turn (the journal's fsync); the test kills
it after a random number of them, then a new writer on the same spool directory and a working
database must store every printed call, each once."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import select

from contactcenter import db
from contactcenter.cases.models import Call, CallLeg
from contactcenter.cases.writer import CallWriter
from tests.conftest import ROOT

pytestmark = pytest.mark.store

DOWN_URL = "postgresql+asyncpg://postgres@127.0.0.1:1/none"  # nothing listens on port 1
TOTAL = 400

CHILD = textwrap.dedent("""
    import asyncio, sys
    from contactcenter import db
    from contactcenter.cases.writer import CallWriter
    from tests.integration.test_call_writer import rec

    async def main(url: str, spool: str) -> None:
        sessions = db.make_sessionmaker(db.make_engine(url))
        writer = CallWriter(sessions, spool, retry_initial=0.05, retry_max=0.2,
                            write_timeout=2.0, batch_size=20)
        await writer.start()
        for n in range(int(sys.argv[3])):
            writer.submit(rec(n))
            await asyncio.sleep(0)  # the journal's turn: from here the call is durable
            print(n, flush=True)
            if n % 7 == 0:
                await asyncio.sleep(0.001)
        print("done", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


def _run_and_kill(url: str, spool: Path, kill_after: int) -> int:
    """The child's accepted calls when it was killed (it is killed after `kill_after`)."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(spool), str(TOTAL)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    accepted = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "done":
                break
            accepted = int(line) + 1
            if accepted >= kill_after:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert accepted >= kill_after, proc.stderr.read() if proc.stderr else ""
    return accepted


async def _stored(url: str, spool: Path) -> tuple[list[str], int]:
    engine = db.make_engine(url)
    try:
        sessions = db.make_sessionmaker(engine)
        writer = CallWriter(sessions, spool)
        await writer.start()
        await writer.flushed()
        await writer.close()
        async with sessions() as session:
            ids = list((await session.execute(select(Call.linkedid))).scalars())
            legs = len(list((await session.execute(select(CallLeg.id))).scalars()))
        return ids, legs
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", ["up", "down", "hanging"])
@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_loses_no_accepted_call(
    migrated_url: str, tmp_path: Path, database: str, seed: int
) -> None:
    """up: killed mid-write; down: connections refused; hanging: a database that accepts the
    connection and never answers (records wait for the write timeout)."""
    kill_after = random.Random(seed).randint(20, TOTAL - 20)
    spool = tmp_path / "spool"
    with socket.socket() as black_hole:
        black_hole.bind(("127.0.0.1", 0))
        black_hole.listen(64)  # the kernel completes handshakes; nobody ever answers
        url = {"up": migrated_url, "down": DOWN_URL,
               "hanging": f"postgresql+asyncpg://postgres@127.0.0.1:"
                          f"{black_hole.getsockname()[1]}/none"}[database]
        accepted = _run_and_kill(url, spool, kill_after)
    ids, legs = asyncio.run(_stored(migrated_url, spool))
    assert len(ids) == len(set(ids)) == legs  # each call once, with its one leg
    assert {f"1795406102.{n}" for n in range(accepted)} <= set(ids)
    assert not (spool / "journal.jsonl").exists()  # everything in it is in the store now
