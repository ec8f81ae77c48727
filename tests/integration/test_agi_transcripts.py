"""The three FastAGI captures replayed over TCP, byte for byte: our server must send exactly
the commands the capture's IVR sent, driven by an equivalent menu stored in the database, plus
what the capture's IVR did not do: the trace (`SET VARIABLE LANG` / `IVRPATH`, answered as the
capture answers every SET VARIABLE) and, after a -1, `CHANNEL STATUS`."""

from __future__ import annotations

import random

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.events import IvrChoice
from contactcenter.ivr.services import IvrServices
from contactcenter.seed import seed_reference
from tests.agi_fake import parse_capture, replay
from tests.conftest import transcript
from tests.ivr_support import CAPTURE_MENU, Recorder, activate, running_ivr

pytestmark = pytest.mark.store

SET_OK = b"200 result=1\n"  # the captures' reply to every SET VARIABLE on a live channel
# res_agi.c: after a hang-up, "HANGUP" before the next reply; CHANNEL STATUS needs a live channel
DEAD_STATUS = b"HANGUP\n511 Command Not Permitted on a dead channel or intercept routine\n"


def trace(command: str) -> bytes | None:
    return SET_OK if command.startswith(("SET VARIABLE LANG ", "SET VARIABLE IVRPATH ")) \
        else None


def ours(sent: list[str]) -> list[str]:
    return [c for c in sent if c.startswith(("SET VARIABLE LANG ", "SET VARIABLE IVRPATH "))]


@pytest.fixture
async def capture_store(sessions: async_sessionmaker[AsyncSession]) -> IvrServices:
    await seed_reference(sessions)
    await activate(sessions, CAPTURE_MENU, version=2)
    return IvrServices(sessions)


@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
async def test_call_answered_digit_1_goes_to_sanitation(
    capture_store: IvrServices, cut: bool
) -> None:
    rec = parse_capture(transcript("agi-call-answered.raw"))
    recorder = Recorder()
    chunks = None
    if cut:
        rng = random.Random(1)
        chunks = [rng.randint(1, 40) for _ in range(20)]
    async with running_ivr(capture_store, recorder) as server:
        sent = await replay(server.port, rec, chunks=chunks, extra=trace)
    assert sent[0] == "ANSWER" and len(sent) == 6 + 3
    # LANG as soon as it is known, IVRPATH at each step, then the capture's own LANG
    assert ours(sent) == ['SET VARIABLE LANG "en"', 'SET VARIABLE IVRPATH "main:1"',
                          'SET VARIABLE IVRPATH "main:1,sanitation"', 'SET VARIABLE LANG "en"']
    assert sent.index('SET VARIABLE LANG "en"') < sent.index("GET DATA hello-world 4000 1")
    (result,) = recorder.results
    assert (result.outcome, result.queue, result.service, result.language) == (
        "queued", "sanitation", "missed-pickup", "en")
    choices = [e for e in recorder.events if isinstance(e, IvrChoice)]
    assert [(c.node, c.digit, c.action) for c in choices] == [
        ("main", "1", "queue:sanitation/missed-pickup")]
    assert choices[0].uniqueid == "1795406102.1" and choices[0].menu_version == 2


async def test_case_status_reads_the_number_back_then_general(capture_store: IvrServices) -> None:
    rec = parse_capture(transcript("agi-case-status.raw"))
    recorder = Recorder()
    async with running_ivr(capture_store, recorder) as server:
        sent = await replay(server.port, rec, extra=trace)
    assert 'SET VARIABLE IVRPATH "main:9,main:case,general-311"' in sent
    (result,) = recorder.results
    assert (result.outcome, result.queue, result.service) == ("queued", "general-311", None)
    assert result.case_number is None  # 311423 is no case in this store


async def test_hangup_during_first_prompt_ends_cleanly(capture_store: IvrServices) -> None:
    rec = parse_capture(transcript("agi-ivr-hangup.raw"))
    recorder = Recorder()
    async with running_ivr(capture_store, recorder) as server:
        # the capture's IVR went on to SET VARIABLE QUEUE; ours asks CHANNEL STATUS first, is
        # told HANGUP, and stops: only the capture's first two steps are sent
        sent = await replay(server.port, rec, steps=2, extra=lambda c: trace(c) or (
            DEAD_STATUS if c == "CHANNEL STATUS" else None))
        assert server.stats.hangups == 1 and server.stats.errors == 0
        assert server.stats.sessions_active == 0
    assert sent == ["ANSWER", 'SET VARIABLE LANG "en"', "GET DATA hello-world 4000 1",
                    "CHANNEL STATUS"]
    assert recorder.results[0].outcome == "hangup"
