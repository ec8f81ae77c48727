"""Replay of tests/data/asterisk/ami-queue-config.*: the bridge's own AMI session with a real
Asterisk 22.10.1 while an admin created, changed and deleted a queue, operators logged in with
their language bands and a Spanish caller was routed (README there). The bytes prove what the
bridge sends is what the shipped account allows and Asterisk accepted, and the simulator answers
QueueReload in Asterisk's words."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contactcenter.events import PbxError
from contactcenter.telephony.ami import AmiClient
from contactcenter.telephony.simulator.ami_server import AmiServer
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.pbx import SimPbx
from tests.conftest import ROOT
from tests.integration.test_asterisk_config import _manager

DATA = ROOT / "tests" / "data" / "asterisk"


def frames(name: str) -> list[dict[str, str]]:
    raw = (DATA / name).read_bytes().decode()
    out = []
    for block in raw.split("\r\n\r\n"):
        fields: dict[str, str] = {}
        for line in block.split("\r\n"):
            key, sep, value = line.partition(": ")
            if sep and key not in fields:
                fields[key] = value
        if fields:
            out.append(fields)
    return out


SENT = frames("ami-queue-config.sent.raw")
RECEIVED = frames("ami-queue-config.received.raw")
CLASS = {"QueueAdd": "agent", "QueueRemove": "agent", "QueuePause": "agent", "Hangup": "call",
         "Redirect": "call", "Originate": "originate", "CoreShowChannels": "reporting",
         "QueueReload": None, "QueueStatus": None, "Ping": None, "Challenge": None,
         "Login": None}


def replies() -> dict[str, dict[str, str]]:
    return {f["ActionID"]: f for f in RECEIVED if "Response" in f and "ActionID" in f}


def test_every_action_is_allowed_to_the_shipped_account_and_was_accepted() -> None:
    write = set(_manager()[0]["write"].split(","))
    answers = replies()
    reloads = []
    for action in SENT:
        name = action["Action"]
        assert name in CLASS, f"the bridge sent {name}: which class does it need?"
        assert CLASS[name] is None or CLASS[name] in write
        answer = answers[action["ActionID"]]
        if name == "QueueReload":
            reloads.append((answer["Response"], answer["Message"]))
        else:
            assert answer["Response"] == "Success", (name, answer)
    assert "Filter" not in {a["Action"] for a in SENT}
    # five saves and the start: all taken, but the one made while queues.conf was broken
    assert reloads.count(("Error", "Error encountered while reloading queue")) == 1
    assert reloads.count(("Success", "Queue reloaded successfully")) == len(reloads) - 1
    assert reloads[-1] == ("Success", "Queue reloaded successfully")  # the retry after repair


def test_members_carry_their_language_band_and_the_spanish_caller_rang_only_beto() -> None:
    added = {f["MemberName"]: f["Penalty"] for f in RECEIVED
             if f.get("Event") == "QueueMemberAdded"}
    assert added == {"Ana": "0", "Beto": "1"}
    sent_add = {a["MemberName"]: a["Penalty"] for a in SENT if a["Action"] == "QueueAdd"}
    assert sent_add == added
    called = [f["Interface"] for f in RECEIVED if f.get("Event") == "AgentCalled"]
    assert called == ["Local/2002@agents"]
    langs = [f["Value"] for f in RECEIVED
             if f.get("Event") == "VarSet" and f.get("Variable") == "LANG"]
    assert langs and langs[-1] == "es"
    pauses = [(f["MemberName"], f["Paused"], f.get("PausedReason", ""))
              for f in RECEIVED if f.get("Event") == "QueueMemberPause"]
    assert pauses == [("Beto", "1", "wrap-up"), ("Beto", "0", "")]  # the product's wrap-up


def test_the_account_filters_kept_the_noise_out() -> None:
    names = {f.get("Event") for f in RECEIVED}
    assert not names & {"CEL", "Cdr", "Newexten", "SuccessfulAuth", "RequestNotAllowed"}
    variables = {f["Variable"] for f in RECEIVED if f.get("Event") == "VarSet"}
    assert variables <= {"QUEUE", "SERVICE", "LANG", "CASE", "IVRPATH", "IVROUTCOME",
                         "TRANSFER"}


@pytest.mark.asyncio
async def test_the_simulator_answers_queue_reload_as_asterisk_did(tmp_path: Path) -> None:
    conf = tmp_path / "asterisk"
    shutil.copytree(ROOT / "asterisk-config", conf)
    pbx = SimPbx(VirtualClock(1.0), config_dir=conf)
    server = AmiServer(pbx, "cc", "x", port=0)
    await server.start()
    client = AmiClient("127.0.0.1", server.port, "cc", "x", events=False)
    await client.start()
    real = [replies()[a["ActionID"]] for a in SENT if a["Action"] == "QueueReload"]
    refused = next(r for r in real if r["Response"] == "Error")
    try:
        resp = await client.action("QueueReload")
        assert (resp.status, resp.message) == (real[0]["Response"], real[0]["Message"])
        (conf / "queues.conf").write_text("[general\n#tryinclude contactcenter-queues.conf\n")
        with pytest.raises(PbxError) as err:
            await client.action("QueueReload")
        assert str(err.value) == f"QueueReload: {refused['Message']}"
    finally:
        await client.close()
        await server.close()
        await pbx.close()


def test_a_queued_caller_hears_the_shipped_music_on_hold() -> None:
    """Issue 17: with the shipped musiconhold.conf (class default, Debian's opsound files) the
    Spanish caller routed by the IVR hears music while queued: Asterisk's own MusicOnHoldStart on
    the caller's channel, in the queue extension, class default, language es."""
    moh = [f for f in RECEIVED if f.get("Event") == "MusicOnHoldStart"]
    assert moh, "no music on hold in the capture"
    assert any(f.get("Class") == "default" and f.get("Language") == "es"
               and f.get("Exten") == "queue" and f.get("Context") == "from-citizen"
               for f in moh), moh
    conf = (ROOT / "asterisk-config" / "musiconhold.conf").read_text()
    assert "[default]" in conf and "mode=files" in conf
