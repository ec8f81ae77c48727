"""app_queue semantics of the simulator: strategies, pause, wrap-up, ring timeout and retry,
join-empty / leave-when-empty, queue timeout, positions, and the dialplan's AGI fallback."""

from __future__ import annotations

import pytest

from contactcenter.events import CallEnded, CallRecord
from contactcenter.telephony.calls import CallTracker
from contactcenter.telephony.frames import AmiEvent, iter_frames
from contactcenter.telephony.simulator.clock import VirtualClock
from contactcenter.telephony.simulator.generator import wait_idle
from contactcenter.telephony.simulator.pbx import AgentBehaviour, SimMember, SimPbx, SimQueueConfig
from tests.conftest import until

pytestmark = pytest.mark.asyncio

SCALE = 50.0  # fast, yet a loaded machine's 10 ms hiccup is only 0.5 virtual seconds


class Recorder:
    def __init__(self, pbx: SimPbx) -> None:
        self.events: list[dict[str, str]] = []
        self.raw: list[bytes] = []
        pbx.listeners.append(self.feed)

    def records(self) -> dict[str, CallRecord]:
        """The stream through the real call tracker: caller name -> its record."""
        tracker = CallTracker()
        out = []
        for frame in iter_frames(b"".join(self.raw)):
            if isinstance(frame, AmiEvent):
                out.extend(e.record for e in tracker.feed(frame) if isinstance(e, CallEnded))
        return {r.caller_name or "": r for r in out}

    def feed(self, data: bytes) -> None:
        self.raw.append(data)
        ev: dict[str, str] = {}
        for line in data.decode().split("\r\n"):
            k, sep, v = line.partition(": ")
            if sep and k not in ev:
                ev[k] = v
        self.events.append(ev)

    def named(self, name: str) -> list[dict[str, str]]:
        return [e for e in self.events if e.get("Event") == name]


def make(
    strategy: str = "ringall", agents: dict[str, AgentBehaviour] | None = None, **cfg: object
) -> tuple[SimPbx, Recorder]:
    # AGI port 1: nobody listens, so the dialplan falls back to Queue(general-311)
    pbx = SimPbx(VirtualClock(SCALE), agi_port=1)
    pbx.add_queue(SimQueueConfig("general-311", strategy, **cfg))  # type: ignore[arg-type]
    table = agents or {}

    def behaviour(m: SimMember) -> AgentBehaviour | None:
        return table.get(m.interface)

    pbx.behaviour = behaviour
    return pbx, Recorder(pbx)


def add(pbx: SimPbx, *names: str) -> None:
    for n in names:
        pbx.queue_add("general-311", f"Local/{n}@agents/n", f"Op {n}", 0, f"Local/{n}@agents")


def called(rec: Recorder) -> list[str]:
    return [e["Interface"] for e in rec.named("AgentCalled")]


async def test_agi_unreachable_falls_back_to_general_queue() -> None:
    pbx, rec = make(agents={"Local/2001@agents/n": AgentBehaviour(1, 3)})
    add(pbx, "2001")
    pbx.originate_citizen("7875550101", "Maria Lopez", "1", 30)
    assert await wait_idle(pbx, 5)
    agi = [e for e in rec.named("VarSet") if e.get("Variable") == "AGISTATUS"]
    assert agi[0]["Value"] == "FAILURE"
    goto = [e for e in rec.named("Newexten") if e.get("Application") in ("GotoIf", "Queue")]
    assert [(e["Application"], e["AppData"], e["Priority"]) for e in goto] == [
        ("GotoIf", "1?fallback", "4"),
        ("Queue", "general-311,t,,,60", "7"),
    ]
    assert pbx.calls[0].outcome == "answered"
    done = rec.named("AgentComplete")[0]
    assert done["Reason"] == "agent" and done["Queue"] == "general-311"


async def test_ringall_rings_every_free_member_and_cancels_the_rest() -> None:
    pbx, rec = make(
        "ringall",
        {"Local/2001@agents/n": AgentBehaviour(3, 2), "Local/2002@agents/n": AgentBehaviour(1, 2)},
    )
    add(pbx, "2001", "2002")
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 30)
    assert await wait_idle(pbx, 5)
    assert sorted(called(rec)) == ["Local/2001@agents/n", "Local/2002@agents/n"]
    assert rec.named("AgentConnect")[0]["Interface"] == "Local/2002@agents/n"
    assert [e["DialStatus"] for e in rec.named("DialEnd") if "Channel" in e] == [
        "ANSWER",
        "CANCEL",
        "CANCEL",
    ]  # a cancelled dial reports CANCEL twice (burst capture)


async def test_linear_ring_timeout_then_retry_next_member() -> None:
    pbx, rec = make(
        "linear",
        {
            "Local/2005@agents/n": AgentBehaviour(None, 3),
            "Local/2003@agents/n": AgentBehaviour(1, 3),
        },
        timeout=4,
        retry=1,
    )
    add(pbx, "2003", "2005")  # container order puts 2005 first, as in the capture
    pbx.originate_citizen("7875550104", "Pedro Diaz", "", 30)
    assert await wait_idle(pbx, 5)
    assert called(rec) == ["Local/2005@agents/n", "Local/2003@agents/n"]
    rna = rec.named("AgentRingNoAnswer")[0]
    assert rna["Interface"] == "Local/2005@agents/n" and 3900 <= int(rna["RingTime"]) <= 4600
    assert 5 <= int(rec.named("AgentConnect")[0]["HoldTime"]) <= 8  # 4 ring + 1 retry + 1


async def test_rrmemory_rotates_and_leastrecent_prefers_the_idlest() -> None:
    b = AgentBehaviour(0.5, 1)
    pbx, rec = make("rrmemory", {f"Local/{n}@agents/n": b for n in ("2001", "2002", "2003")})
    add(pbx, "2001", "2002", "2003")
    for _ in range(4):
        pbx.originate_citizen("7875550101", "Maria Lopez", "", 30)
        assert await wait_idle(pbx, 5)
    assert [i[6:10] for i in called(rec)] == ["2001", "2002", "2003", "2001"]

    pbx, rec = make("leastrecent", {f"Local/{n}@agents/n": b for n in ("2001", "2002")})
    add(pbx, "2001", "2002")
    pbx.queues["general-311"].members["Local/2001@agents/n"].last_call = int(pbx.clock.now())
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 30)
    assert await wait_idle(pbx, 5)
    assert called(rec) == ["Local/2002@agents/n"]


async def test_paused_member_is_skipped_and_wrapup_delays_next_call() -> None:
    b = AgentBehaviour(0.5, 1)
    pbx, rec = make("ringall", {"Local/2001@agents/n": b, "Local/2002@agents/n": b}, wrapuptime=5)
    add(pbx, "2001", "2002")
    pbx.queue_pause("general-311", "Local/2002@agents/n", True, "lunch")
    pause = rec.named("QueueMemberPause")[0]
    assert (pause["Paused"], pause["PausedReason"]) == ("1", "lunch")
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 30)
    await until(lambda: rec.named("AgentComplete"), 5)
    pbx.originate_citizen("7875550102", "Luz Ortiz", "", 30)  # arrives during wrap-up
    assert await wait_idle(pbx, 5)
    assert called(rec) == ["Local/2001@agents/n"] * 2
    ended = float(rec.named("AgentComplete")[0]["Timestamp"])
    rung_again = float(rec.named("AgentCalled")[1]["Timestamp"])
    assert rung_again - ended >= 5.0  # the 5 s of wrap-up
    assert pbx.queues["general-311"].members["Local/2001@agents/n"].calls_taken == 2


async def test_positions_abandon_and_queue_timeout() -> None:
    pbx, rec = make("ringall", {"Local/2001@agents/n": AgentBehaviour(0.5, 75)})
    add(pbx, "2001")
    pbx.originate_citizen("7875550101", "First", "", 90)  # takes the only operator
    await until(lambda: pbx.calls[0].where == "bridged", 5)
    pbx.originate_citizen("7875550102", "Second", "", 90)  # waits, then the queue times out
    await until(lambda: len(pbx.calls) > 1 and pbx.calls[1].where == "queue", 5)
    pbx.originate_citizen("7875550103", "Third", "", 6)  # gives up in position 2
    assert await wait_idle(pbx, 10)
    joins = [(e["CallerIDName"], e["Position"]) for e in rec.named("QueueCallerJoin")]
    assert joins == [("First", "1"), ("Second", "1"), ("Third", "2")]
    ab, timeout = rec.named("QueueCallerAbandon")
    assert (ab["CallerIDName"], ab["Position"], ab["OriginalPosition"]) == ("Third", "2", "2")
    # As Asterisk 22's app_queue.c: a timeout sends QueueCallerAbandon too, then
    # QueueCallerLeave, then QUEUESTATUS=TIMEOUT on the caller's channel
    assert (timeout["CallerIDName"], timeout["HoldTime"]) == ("Second", "60")
    second = [e.get("Event") + ":" + e.get("Variable", "") for e in rec.events
              if e.get("CallerIDName") == "Second" and e.get("Event") in (
                  "QueueCallerAbandon", "QueueCallerLeave", "VarSet")]
    assert [x for x in second if x in ("QueueCallerAbandon:", "QueueCallerLeave:",
                                       "VarSet:QUEUESTATUS")][-3:] == [
        "QueueCallerAbandon:", "QueueCallerLeave:", "VarSet:QUEUESTATUS"]
    assert [c.outcome for c in pbx.calls] == ["answered", "timed_out", "abandoned"]
    status = [e["Value"] for e in rec.named("VarSet") if e.get("Variable") == "QUEUESTATUS"]
    assert status == ["TIMEOUT"]
    # ...and the tracker tells the timeout from the hang-up
    records = rec.records()
    assert {name: [(leg.queue, leg.outcome, leg.wait_seconds) for leg in r.legs]
            for name, r in records.items() if name != "First"} == {
        "Second": [("general-311", "timed_out", 60.0)],
        "Third": [("general-311", "abandoned", float(ab["HoldTime"]))]}
    assert records["Second"].outcome == "timed_out"


async def test_joinempty_no_and_leavewhenempty() -> None:
    pbx, rec = make("ringall", joinempty=False)
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 30)
    assert await wait_idle(pbx, 5)
    assert not rec.named("QueueCallerJoin")
    assert [e["Value"] for e in rec.named("VarSet") if e.get("Variable") == "QUEUESTATUS"] == [
        "JOINEMPTY"
    ]

    pbx, rec = make("ringall", {"Local/2001@agents/n": AgentBehaviour(1, 2)}, leavewhenempty=True)
    add(pbx, "2001")
    pbx.queue_pause("general-311", "Local/2001@agents/n", True, "break")
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 30)
    assert await wait_idle(pbx, 5)
    assert rec.named("QueueCallerJoin") and rec.named("QueueCallerLeave")
    assert [e["Value"] for e in rec.named("VarSet") if e.get("Variable") == "QUEUESTATUS"] == [
        "LEAVEEMPTY"
    ]


async def test_blind_transfer_and_redirect_move_the_caller_to_another_queue() -> None:
    pbx, rec = make(
        "ringall",
        {
            "Local/2001@agents/n": AgentBehaviour(0.5, 60),
            "Local/2002@agents/n": AgentBehaviour(0.5, 2),
        },
    )
    pbx.add_queue(SimQueueConfig("sanitation", "ringall"))
    add(pbx, "2001")
    pbx.queue_add("sanitation", "Local/2002@agents/n", "Op 2002", 0, "Local/2002@agents")
    call = pbx.originate_citizen("7875550101", "Maria Lopez", "", 120)
    await until(lambda: call.where == "bridged", 5)
    agent_chan = call.legs[0].out.name
    assert pbx.transfer(agent_chan, "transfers", "sanitation", blind=True)
    assert await wait_idle(pbx, 5)
    done = rec.named("AgentComplete")
    assert [(e["Queue"], e["Reason"]) for e in done] == [
        ("general-311", "transfer"),
        ("sanitation", "agent"),
    ]
    blind = rec.named("BlindTransfer")[0]
    assert (blind["TransfererChannel"], blind["Extension"]) == (agent_chan, "sanitation")
    joins = [e["Queue"] for e in rec.named("QueueCallerJoin")]
    assert joins == ["general-311", "sanitation"]
    moved = [e for e in rec.named("Newexten") if e.get("Context") == "transfers"]
    assert moved[0]["AppData"] == "sanitation,t,,,60"
    (record,) = rec.records().values()
    assert [(leg.queue, leg.outcome, leg.agent) for leg in record.legs] == [
        ("general-311", "transferred", "Op 2001"), ("sanitation", "answered", "Op 2002")]
    assert record.outcome == "answered"

    # Redirect of a waiting caller: it leaves the queue and joins the target queue
    pbx, rec = make("ringall")
    pbx.add_queue(SimQueueConfig("sanitation", "ringall"))
    call = pbx.originate_citizen("7875550102", "Luz Ortiz", "", 10)
    await until(lambda: call.where == "queue", 5)
    assert pbx.transfer(call.ch2.name, "transfers", "sanitation")
    assert await wait_idle(pbx, 5)
    assert [e["Queue"] for e in rec.named("QueueCallerLeave")] == ["general-311", "sanitation"]
    assert rec.named("QueueCallerAbandon")[0]["Queue"] == "sanitation"
    assert not pbx.transfer("Local/nobody-00000000;2", "transfers", "sanitation")
    # moved, not abandoned nor timed out, in general-311; the caller gave up in sanitation
    (moved,) = rec.records().values()
    assert [(x.queue, x.outcome, x.agent, x.target) for x in moved.legs] == [
        ("general-311", "transferred", None, "sanitation"),
        ("sanitation", "abandoned", None, None)]


async def test_a_timeout_then_the_shipped_dialplan_s_fallback_queue() -> None:
    """With the shipped dialplan's fallback (asterisk-config/extensions.conf), a caller whose
    queue times out is queued again: two legs, timed out then answered."""
    pbx, rec = make("ringall", {"Local/2001@agents/n": AgentBehaviour(0.5, 2)})
    pbx.fallback_queue = "potholes"
    pbx.add_queue(SimQueueConfig("potholes", "ringall"))
    pbx.queue_add("potholes", "Local/2001@agents/n", "Op 2001", 0, "Local/2001@agents")
    pbx.originate_citizen("7875550101", "Maria Lopez", "", 120)  # no IVR: general-311, empty
    assert await wait_idle(pbx, 10)
    assert [e["Queue"] for e in rec.named("QueueCallerJoin")] == ["general-311", "potholes"]
    (record,) = rec.records().values()
    assert [(x.queue, x.outcome, x.agent, x.wait_seconds) for x in record.legs] == [
        ("general-311", "timed_out", None, 60.0),
        ("potholes", "answered", "Op 2001", record.legs[1].wait_seconds)]
    assert record.outcome == "answered" and record.final_queue == "potholes"
    assert record.wait_seconds == 60.0 + (record.legs[1].wait_seconds or 0.0)
