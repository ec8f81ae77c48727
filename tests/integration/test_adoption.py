"""Adoption after a product restart (issue 19): the bridge starts while a call is already
talking. It learns what Asterisk can still tell — the channels (CoreShowChannels), the IVR's
variables on the caller's channel (Getvar), the members (QueueStatus) — and the figures of the
AgentComplete that comes later (MemberName, HoldTime, TalkTime); the operator's console gets the
call back (a CallAnswered for their interface).

The stream is the shared capture `ami-call-answered.raw` from just after its AgentConnect (the
product was down until then); the live state Asterisk reports at that moment is written below
from the same capture's events."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contactcenter.app import create_app
from contactcenter.bus import LocalBus
from contactcenter.clock import FixedClock
from contactcenter.config import Settings
from contactcenter.events import AgentRinging, CallAnswered, CallEnded, Event
from contactcenter.telephony.bridge import Bridge
from contactcenter.telephony.replay import ReplayServer, event_blocks
from tests.conftest import app_settings, login, transcript, until
from tests.expected_records import CALL_ANSWERED

AT = 1795406107.0  # the bridge (re)starts 0.65 s after Ana's AgentConnect (1795406106.352446)
CALLER = [("CallerIDNum", "7875550101"), ("CallerIDName", "Maria Lopez")]
BRIDGE_ID = "11cb19c5-21f1-40e5-9c06-8859c48d9423"  # BridgeEnter's BridgeUniqueid


def channel(name: str, uid: str, app: str, data: str, bridge: str, duration: str
            ) -> list[tuple[str, str]]:
    return [("Event", "CoreShowChannel"), ("Channel", name), ("Uniqueid", uid),
            ("Linkedid", "1795406102.0"), *CALLER, ("Application", app),
            ("ApplicationData", data), ("BridgeId", bridge), ("Duration", duration)]


LIVE = {
    "CoreShowChannels": [
        channel("Local/311@from-citizen-00000000;1", "1795406102.0", "Wait", "30", "",
                "00:00:04"),
        channel("Local/311@from-citizen-00000000;2", "1795406102.1", "Queue",
                "sanitation,t,,,60", BRIDGE_ID, "00:00:04"),
        channel("Local/2001@agents-00000001;1", "1795406104.2", "AppQueue", "(Outgoing Line)",
                BRIDGE_ID, "00:00:02"),
        channel("Local/2001@agents-00000001;2", "1795406104.3", "Wait", "6", "", "00:00:02"),
    ],
    "QueueStatus": [
        [("Event", "QueueMember"), ("Queue", "sanitation"), ("Name", "Ana Operator"),
         ("Location", "Local/2001@agents/n"), ("StateInterface", "Local/2001@agents"),
         ("Membership", "dynamic"), ("InCall", "1"), ("Status", "2"), ("Paused", "0"),
         ("PausedReason", ""), ("Wrapuptime", "0")],
        [("Event", "QueueMember"), ("Queue", "sanitation"), ("Name", "Ben Operator"),
         ("Location", "Local/2002@agents/n"), ("StateInterface", "Local/2002@agents"),
         ("Membership", "dynamic"), ("InCall", "0"), ("Status", "1"), ("Paused", "0"),
         ("PausedReason", ""), ("Wrapuptime", "0")],
    ],
}
# the IVR's VarSets on the ;2 channel in the capture
VARIABLES = {("Local/311@from-citizen-00000000;2", "QUEUE"): "sanitation",
             ("Local/311@from-citizen-00000000;2", "SERVICE"): "missed-pickup",
             ("Local/311@from-citizen-00000000;2", "LANG"): "en"}


async def _adopt(variables: dict[tuple[str, str], str]) -> tuple[list[Event], list[str]]:
    blocks = event_blocks(transcript("ami-call-answered.raw"))
    cut = max(i for i, b in enumerate(blocks) if b.startswith(b"Event: BridgeEnter"))
    # the stream resumes a moment after the resync's answers, as Asterisk's events would
    server = ReplayServer([b"".join(blocks[cut + 1:])], items=LIVE, variables=variables,
                          start_after=5.0, stream_delay=0.3)
    port = await server.start()
    bus = LocalBus()
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    sub = bus.subscribe(collect, types=(CallEnded, CallAnswered, AgentRinging))
    bridge = Bridge(Settings(ami_port=port, ami_username="replay", ami_secret="replay"), bus,
                    clock=FixedClock(datetime.fromtimestamp(AT, UTC)))
    await bridge.start()
    try:
        await asyncio.wait_for(server.streamed.wait(), 10)
        link = bridge.links["default"]
        await link.client.action("Ping")
        await until(lambda: bridge.idle(), 10)
        await bridge.flushed()
        await bus.drain()
        return seen, [a.get("action", "") for a in server.actions]
    finally:
        await bridge.close()
        await sub.close()
        await server.close()


async def test_a_call_adopted_mid_talk_gets_back_what_asterisk_knows() -> None:
    seen, actions = await _adopt(VARIABLES)
    assert actions[:3] == ["Challenge", "Login", "CoreShowChannels"]
    assert sorted(actions[3:8]) == ["Getvar"] * 5 and actions[8] == "QueueStatus"

    # the console of the operator on the call gets it back at once: the screen pop (with what
    # Getvar told) and the answer
    (pop,) = [e for e in seen if isinstance(e, AgentRinging)]
    assert (pop.interface, pop.caller_number, pop.caller_name, pop.service, pop.language) == (
        "Local/2001@agents/n", "7875550101", "Maria Lopez", "missed-pickup", "en")
    (answered,) = [e for e in seen if isinstance(e, CallAnswered)]
    assert (answered.linkedid, answered.interface, answered.member_name, answered.queue) == (
        "1795406102.0", "Local/2001@agents/n", "Ana Operator", "sanitation")
    assert seen.index(pop) < seen.index(answered)

    (rec,) = [e.record for e in seen if isinstance(e, CallEnded)]
    truth = CALL_ANSWERED[0]
    assert rec.partial
    assert (rec.linkedid, rec.caller_number, rec.queue, rec.service, rec.language) == (
        truth["linkedid"], truth["caller_number"], "sanitation", "missed-pickup", "en")
    assert (rec.agent, rec.final_agent) == ("Ana Operator", "Ana Operator")
    # Asterisk's own figures from the AgentComplete (HoldTime 2, TalkTime 6), not the 5.9 s
    # seen since the restart
    assert (rec.wait_seconds, rec.talk_seconds, rec.outcome) == (2.0, 6.0, "answered")
    (leg,) = rec.legs
    assert (leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.talk_seconds) == (
        "sanitation", "answered", "Ana Operator", 2.0, 6.0)
    # start (now - Duration) and join (AgentComplete - TalkTime - HoldTime) are whole seconds
    # from Asterisk: the IVR time is known to within a second (truly 2.204 s)
    assert rec.ivr_seconds is not None and abs(rec.ivr_seconds - truth["ivr_seconds"]) < 1.0
    assert rec.ended_at == datetime.fromisoformat(truth["ended_at"])


async def test_without_answers_to_getvar_the_call_still_comes_back() -> None:
    """An Asterisk whose channel is gone by the time Getvar asks (Error replies)."""
    seen, _ = await _adopt({("elsewhere", "QUEUE"): "x"})
    (rec,) = [e.record for e in seen if isinstance(e, CallEnded)]
    assert (rec.service, rec.language, rec.agent, rec.talk_seconds) == (
        None, None, "Ana Operator", 6.0)


@pytest.mark.parametrize(("channel_name", "interface", "same"), [
    ("PJSIP/1001-0000000a", "PJSIP/1001", True),
    ("PJSIP/1001-0000000a", "PJSIP/10011", False),
    ("Local/2001@agents-00000005;1", "Local/2001@agents/n", True),
    ("Local/2001@agents-00000005;2", "Local/2001@agents", True),
    ("Local/2001@agents-00000005;1", "Local/2002@agents/n", False),
])
def test_a_channel_belongs_to_its_member_interface(channel_name: str, interface: str,
                                                   same: bool) -> None:
    from contactcenter.telephony.calls import _interface_base

    assert (_interface_base(channel_name) == _interface_base(interface)) is same


@pytest.mark.store
async def test_the_operator_s_console_gets_the_call_back_after_a_restart(
    aiohttp_client: Any, migrated_url: str, seeded: Any, tmp_path: Path
) -> None:
    """The whole product starts while the seeded operator (PJSIP/1001) talks to a caller:
    their console shows the call, connected, with the caller and the IVR's service, so a
    disposition or a case can be attached."""
    caller = [("CallerIDNum", "7875550101"), ("CallerIDName", "Maria Lopez")]
    live = {
        "CoreShowChannels": [
            [("Event", "CoreShowChannel"), ("Channel", "PJSIP/trunk-00000007"),
             ("Uniqueid", "1795500000.7"), ("Linkedid", "1795500000.7"), *caller,
             ("Application", "Queue"), ("ApplicationData", "potholes,t,,,300"),
             ("BridgeId", "b-7"), ("Duration", "00:01:10")],
            [("Event", "CoreShowChannel"), ("Channel", "PJSIP/1001-00000008"),
             ("Uniqueid", "1795500040.8"), ("Linkedid", "1795500000.7"), *caller,
             ("Application", "AppQueue"), ("ApplicationData", "(Outgoing Line)"),
             ("BridgeId", "b-7"), ("Duration", "00:00:30")],
        ],
        "QueueStatus": [
            [("Event", "QueueMember"), ("Queue", "potholes"), ("Name", "Operator"),
             ("Location", "PJSIP/1001"), ("StateInterface", "PJSIP/1001"),
             ("Membership", "dynamic"), ("InCall", "1"), ("Status", "2"), ("Paused", "0"),
             ("PausedReason", ""), ("Wrapuptime", "0")],
        ],
    }
    variables = {("PJSIP/trunk-00000007", "SERVICE"): "pothole",
                 ("PJSIP/trunk-00000007", "LANG"): "es"}
    server = ReplayServer([], username="cc", secret="s3", items=live, variables=variables)
    port = await server.start()
    settings = app_settings(migrated_url, ami_enabled="true", ami_port=str(port),
                            ami_username="cc", ami_secret="s3",
                            spool_dir=str(tmp_path / "spool"))
    try:
        client = await aiohttp_client(create_app(settings))
        await login(client, "operator")
        ws = await client.ws_connect("/console/ws", headers={
            "Origin": f"http://{client.host}:{client.port}"})
        try:
            async def the_call() -> dict[str, Any] | None:
                msg = await ws.receive(timeout=5)
                data = json.loads(msg.data)
                return data if data.get("type") == "call" and \
                    data.get("status") == "connected" else None

            view = await until(the_call, 10)
            assert (view["call_id"], view["queue"], view["caller_number"], view["service"],
                    view["language"]) == ("default:1795500000.7", "potholes", "7875550101",
                                          "pothole", "es")
        finally:
            await ws.close()
    finally:
        await server.close()
