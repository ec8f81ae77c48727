"""AMI actions of the simulator beyond the captured session: Originate, Hangup, Redirect,
BlindTransfer, Filter, Events, QueueRemove and their errors."""

from __future__ import annotations

import pytest

from tests.conftest import until

from .simfidelity import AmiTestClient, Sim, events, frames, members, run_sim

pytestmark = pytest.mark.asyncio


def _reply(c: AmiTestClient, action_id: str) -> dict[str, str]:
    for f in frames(bytes(c.data)):
        d = dict(f)
        if d.get("ActionID") == action_id and "Response" in d:
            return d
    raise AssertionError(f"no reply to {action_id}")


async def test_actions_and_their_errors() -> None:
    async def body(sim: Sim) -> None:
        members(sim)
        c = await AmiTestClient.connect(sim.ami.port)
        await c.send(Action="Login", ActionID="l", Username="cc", Secret="ccsecret")
        await c.send(
            Action="Filter", ActionID="f", Operation="Add", Filter="!Event: (CEL|VarSet|Newexten)"
        )
        await c.send(
            Action="Originate",
            ActionID="o",
            Channel="Local/311@from-citizen",
            Context="citizen-dialer",
            Exten="s",
            Priority="1",
            CallerID='"Maria Lopez" <7875550101>',
            Async="true",
            Variable="PREWAIT=1,PATIENCE=60,DIGITS=3",
        )
        await c.wait_for(b"Event: AgentConnect", 10)
        call = sim.pbx.calls[0]
        await c.send(
            Action="BlindTransfer",
            ActionID="bt",
            Channel=call.legs[0].out.name,
            Context="transfers",
            Exten="sanitation",
        )
        await c.wait_for(b"Reason: transfer", 5)
        await until(lambda: call.where in ("queue", "bridged"), 5)
        await c.send(Action="Hangup", ActionID="h", Channel=call.ch2.name)
        await until(lambda: call.where == "ended", 5)
        for aid, action in (("h2", "Hangup"), ("r", "Redirect"), ("b2", "BlindTransfer")):
            await c.send(
                Action=action,
                ActionID=aid,
                Channel="Local/none-00000000;1",
                Context="transfers",
                Exten="sanitation",
            )
        await c.send(
            Action="QueueRemove", ActionID="qr", Queue="sanitation", Interface="Local/2001@agents/n"
        )
        await c.send(
            Action="QueueRemove",
            ActionID="qr2",
            Queue="sanitation",
            Interface="Local/2001@agents/n",
        )
        await c.send(Action="QueueAdd", ActionID="qa", Queue="nosuch", Interface="PJSIP/1")
        await c.send(Action="QueuePause", ActionID="qp", Interface="PJSIP/9", Paused="true")
        await c.send(Action="Events", ActionID="e", EventMask="off")
        await c.wait_for(b"ActionID: e\r\n", 5)
        expect = {
            "o": ("Success", "Originate successfully queued"),
            "bt": ("Success", "Transfer succeeded"),
            "h": ("Success", "Channel Hungup"),
            "h2": ("Error", "No such channel"),
            "r": ("Error", "Channel specified does not exist"),
            "b2": ("Error", "No such channel"),
            "f": ("Success", "Filter Added Successfully"),
            "qr": ("Success", "Removed interface from queue"),
            "qr2": ("Error", "Unable to remove interface: Not there"),
            "qa": ("Error", "Unable to add interface to queue: No such queue"),
            "qp": ("Error", "Interface not found"),
        }
        for aid, (resp, msg) in expect.items():
            r = _reply(c, aid)
            assert (r["Response"], r.get("Message")) == (resp, msg), (aid, r)
        assert _reply(c, "e")["Events"] == "Off"
        names = {dict(e)["Event"] for e in events(bytes(c.data))}
        assert not names & {"CEL", "VarSet", "Newexten"}  # the filter held
        assert {"OriginateResponse", "BlindTransfer", "QueueMemberRemoved"} <= names
        await c.close()

    await run_sim(None, body)
