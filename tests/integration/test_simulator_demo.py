"""The simulator as the demo and `contactcenter simulate` use it: seeded history, the demo's
cleanup context with a human operator's phone, and the command line."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from sqlalchemy import func, select

from contactcenter.agents.keys import SIM_PHONES
from contactcenter.cases.models import Call, CallLeg, Case, CaseSequence
from contactcenter.cli import main
from contactcenter.config import Settings
from contactcenter.keys import SETTINGS
from contactcenter.seed import seed_history, seed_reference
from contactcenter.supervisor.models import CallInterval
from contactcenter.telephony.simulator.demo import simulator_ctx
from contactcenter.telephony.simulator.generator import parse_rate
from tests.conftest import until

from .simfidelity import AmiTestClient, events


@pytest.mark.store
@pytest.mark.asyncio
async def test_seed_history_once_with_cases(sessions) -> None:  # type: ignore[no-untyped-def]
    await seed_reference(sessions)
    n = await seed_history(sessions, days=2, per_day=50)
    assert n == 100
    assert await seed_history(sessions, days=2, per_day=50) == 0  # idempotent
    async with sessions() as s:
        calls = (await s.execute(select(Call))).scalars().all()
        outcomes = {c.outcome for c in calls}
        assert {"answered", "abandoned"} <= outcomes
        answered = [c for c in calls if c.outcome == "answered"]
        assert all(c.wait_seconds is not None and c.talk_seconds for c in answered)
        cases = (await s.execute(select(func.count()).select_from(Case))).scalar_one()
        assert cases > 0
        seq = (await s.execute(select(CaseSequence))).scalars().one()
        assert seq.last == cases  # new cases continue after the seeded numbers
        # each queued call has its one leg (issue 19), with the call's figures
        legs = {leg.call_id: leg for leg in (await s.execute(select(CallLeg))).scalars()}
        queued = [c for c in calls if c.queue]
        assert len(legs) == len(queued) > 0
        for c in queued:
            leg = legs[c.id]
            assert (leg.queue, leg.outcome, leg.wait_seconds, leg.agent) == (
                c.queue, c.outcome, c.wait_seconds, c.agent)
            assert (c.first_queue, c.final_queue, c.final_agent) == (c.queue, c.queue, c.agent)
        # the reports' interval summary holds them (issue 24)
        summed = (await s.execute(select(func.sum(CallInterval.calls),
                                         func.sum(CallInterval.offered)))).one()
        assert tuple(summed) == (len(calls), len(queued))


@pytest.mark.asyncio
async def test_demo_context_rings_the_human_operator() -> None:
    app = web.Application()
    app[SETTINGS] = Settings(
        ami_port=0, ami_username="cc", ami_secret="ccsecret", agi_port=1
    )  # no IVR here: the dialplan falls back to general-311
    app.cleanup_ctx.append(simulator_ctx)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        phones = app[SIM_PHONES]
        pbx = phones.pbx
        c = await AmiTestClient.connect(pbx.ami_port)
        await c.send(Action="Login", Username="cc", Secret="ccsecret")
        await c.wait_for(b"Authentication accepted")
        await c.send(
            Action="QueuePause",
            ActionID="p",
            Queue="general-311",
            Interface="Local/2003@agents/n",
            Paused="true",
            Reason="break",
        )
        await c.send(
            Action="QueueAdd",
            ActionID="a",
            Queue="general-311",
            Interface="PJSIP/1001",
            MemberName="Ana Operator",
        )
        await c.wait_for(b"Added interface to queue")
        pbx.originate_citizen("7875550101", "Maria Lopez", "3", 120)
        await until(lambda: phones.ringing("PJSIP/1001"), 10)
        assert phones.answer("PJSIP/1001")
        await c.wait_for(b"Event: AgentConnect", 5)
        assert phones.hangup("PJSIP/1001")
        await c.wait_for(b"Event: AgentComplete", 5)
        evs = [dict(e) for e in events(bytes(c.data))]
        called = next(e for e in evs if e["Event"] == "AgentCalled")
        assert called["Interface"] == "PJSIP/1001"
        assert called["DestChannel"].startswith("PJSIP/1001-")
        assert not phones.ringing("PJSIP/1001") and not phones.answer("PJSIP/1001")
        await c.close()
    finally:
        await runner.cleanup()


def test_parse_rate() -> None:
    assert parse_rate("2/s") == 2
    assert parse_rate("30/m") == 0.5
    assert parse_rate("0.25") == 0.25
    for bad in ("fast", "-1/s", "2/week"):
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_simulate_command_runs_calls(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(
        [
            "simulate",
            "--ami-port",
            "0",
            "--rate",
            "40/s",
            "--agents",
            "6",
            "--calls",
            "30",
            "--scale",
            "200",
            "--agi",
            "127.0.0.1:1",
            "--seed",
            "7",
            "--talk",
            "20",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out.strip().splitlines()
    stats = json.loads(out[-1])
    assert stats["calls"] == 30 and stats["events"] > 30 * 50
    assert sum(stats["outcomes"].values()) == 30 and "unfinished" not in stats["outcomes"]
    assert main(["simulate", "--rate", "soon"]) == 2
    asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.mark.asyncio
async def test_generated_callers_answer_each_menu_prompt() -> None:
    """The generator's callers key one answer per GET DATA (language, then the menu choice),
    as people do with the product's IVR, instead of the captures' blind DTMF."""
    from contactcenter.telephony.simulator.clock import VirtualClock
    from contactcenter.telephony.simulator.generator import CallGenerator, Mix, wait_idle
    from contactcenter.telephony.simulator.pbx import SimPbx, SimQueueConfig

    got: list[list[str]] = []

    async def ivr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\n\n")
        replies = []
        for cmd in (
            "ANSWER",
            "GET DATA 311/choose-language 4000 1",
            "GET DATA 311/en/main-menu 5000 1",
            'SET VARIABLE QUEUE "potholes"',
        ):
            writer.write(cmd.encode() + b"\n")
            replies.append((await reader.readline()).decode().strip())
        got.append(replies)
        writer.close()

    server = await asyncio.start_server(ivr, "127.0.0.1", 0)
    pbx = SimPbx(VirtualClock(40), agi_port=server.sockets[0].getsockname()[1], seed=3)
    pbx.add_queue(SimQueueConfig("potholes"))
    gen = CallGenerator(pbx, 1.0, Mix(digits={"2": 1.0}, spanish=0.0), calls=3, seed=3)
    await gen.run()
    assert await wait_idle(pbx, 10)
    await pbx.close()
    server.close()
    await server.wait_closed()
    assert got == [["200 result=0", "200 result=1", "200 result=2", "200 result=1"]] * 3
    assert [c.queue for c in pbx.calls] == ["potholes"] * 3
