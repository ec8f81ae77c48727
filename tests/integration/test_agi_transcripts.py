"""The three FastAGI captures replayed over TCP, byte for byte: our server must send exactly
the commands the capture's IVR sent, driven by an equivalent menu stored in the database."""

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
        sent = await replay(server.port, rec, chunks=chunks)
    assert sent[0] == "ANSWER" and len(sent) == 6
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
        await replay(server.port, rec)
    (result,) = recorder.results
    assert (result.outcome, result.queue, result.service) == ("queued", "general-311", None)
    assert result.case_number is None  # 311423 is no case in this store


async def test_hangup_during_first_prompt_ends_cleanly(capture_store: IvrServices) -> None:
    rec = parse_capture(transcript("agi-ivr-hangup.raw"))
    recorder = Recorder()
    async with running_ivr(capture_store, recorder) as server:
        sent = await replay(server.port, rec)
        assert server.stats.hangups == 1 and server.stats.errors == 0
        assert server.stats.sessions_active == 0
    assert sent[-1] == 'SET VARIABLE QUEUE "general-311"'
    assert recorder.results[0].outcome == "hangup"
