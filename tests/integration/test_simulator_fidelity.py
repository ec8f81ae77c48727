"""Each captured Asterisk scenario, played in the simulator over real sockets, compared with the
real capture: event types per channel topic in order, header names, and every value that is
not an id or a time. The differences are printed, and the test fails on any."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from tests.conftest import transcript, until

from .simfidelity import (
    AmiTestClient,
    Sim,
    agi_script,
    compare,
    events,
    frames,
    members,
    run_sim,
)

pytestmark = pytest.mark.asyncio


async def _capture_session(sim: Sim) -> tuple[AmiTestClient, AmiTestClient]:
    cap = await AmiTestClient.connect(sim.ami.port)
    await cap.send(Action="Login", ActionID="capture-login", Username="cc", Secret="ccsecret")
    await cap.wait_for(b"SuccessfulAuth")
    drv = await AmiTestClient.connect(sim.ami.port)
    await drv.send(Action="Login", ActionID="cc-1", Username="cc", Secret="ccsecret",
                   Events="off")
    await drv.wait_for(b"Authentication accepted")
    return cap, drv


async def _originate(drv: AmiTestClient, num: str, name: str, digits: str, patience: int,
                     exten: str = "s") -> None:
    await drv.send(Action="Originate", ActionID="cc-2", Channel="Local/311@from-citizen",
                   Context="citizen-dialer", Exten=exten, Priority="1",
                   CallerID=f'"{name}" <{num}>', Async="true",
                   Variable=f"PREWAIT=2,PATIENCE={patience},DIGITS={digits}")


async def _scenario(capture: str, agi: str | None, body, scale: float = 25.0) -> None:  # type: ignore[no-untyped-def]
    await _scenario_script(capture, agi_script(transcript(agi)) if agi else None, body, scale)


async def _scenario_script(capture: str, script: list[str] | None, body,  # type: ignore[no-untyped-def]
                           scale: float = 25.0) -> None:
    collected: dict[str, bytes] = {}

    async def run(sim: Sim) -> None:
        members(sim)
        cap, drv = await _capture_session(sim)
        await body(sim, drv)
        await until(lambda: all(c.where == "ended" for c in sim.pbx.calls) and sim.pbx.calls,
                    timeout=10)
        await asyncio.sleep(0.05)
        collected["stream"] = bytes(cap.data)
        await cap.close()
        await drv.close()

    await run_sim(script, run, scale)
    real = events(transcript(capture))
    sim_events = events(collected["stream"])
    rep = compare(real, sim_events)
    print(rep.text(capture))
    assert not rep.differences, rep.text(capture)


async def test_call_answered() -> None:
    async def body(sim: Sim, drv: AmiTestClient) -> None:
        await _originate(drv, "7875550101", "Maria Lopez", "1", 30)

    await _scenario("ami-call-answered.raw", "agi-call-answered.raw", body)


async def test_call_abandoned_members_paused() -> None:
    async def body(sim: Sim, drv: AmiTestClient) -> None:
        for i, iface in enumerate(("Local/2001@agents/n", "Local/2002@agents/n")):
            await drv.send(Action="QueuePause", ActionID=f"p{i}", Queue="sanitation",
                           Interface=iface, Paused="true", Reason="break")
        await drv.wait_for(b"ActionID: p1")
        await _originate(drv, "7875550103", "Luz Ortiz", "1", 8)

    await _scenario("ami-call-abandoned.raw", "agi-call-answered.raw", body)


async def test_agent_ring_no_answer() -> None:
    async def body(sim: Sim, drv: AmiTestClient) -> None:
        await drv.send(Action="Setvar", ActionID="v1", Variable="RING_2005", Value="99")
        await drv.send(Action="Setvar", ActionID="v2", Variable="RING_2003", Value="1")
        await drv.wait_for(b"ActionID: v2")
        await _originate(drv, "7875550104", "Pedro Diaz", "3", 30)

    script = [ln.replace('"sanitation"', '"general-311"').replace('"missed-pickup"', '"other"')
              for ln in agi_script(transcript("agi-call-answered.raw"))]
    await _scenario_script("ami-agent-ringnoanswer.raw", script, body)


async def test_ivr_hangup() -> None:
    async def body(sim: Sim, drv: AmiTestClient) -> None:
        await _originate(drv, "7875550105", "Ana Cruz", "", 30, exten="hangup")

    await _scenario("ami-ivr-hangup.raw", "agi-ivr-hangup.raw", body)
