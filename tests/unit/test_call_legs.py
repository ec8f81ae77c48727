"""Legs (issue 19): a call is one record plus its queue visits, each with its own figures.

The event sequences follow app_queue.c of Asterisk 22 (apps/app_queue.c, branch 22):
- a queue timeout runs record_abandoned() (``VarSet ABANDONED=TRUE``, ``QueueCallerAbandon``
  with HoldTime), then leave_queue() (``QueueCallerLeave``), then set_queue_result()
  (``VarSet QUEUESTATUS=TIMEOUT``) on the caller's channel, and Queue() returns to the dialplan;
- a caller who hangs up gets the same abandon and leave, but QUEUESTATUS is not set (the reason
  stays QUEUE_UNKNOWN, which set_queue_result skips);
- leavewhenempty: record_abandoned(), then ``QUEUESTATUS=LEAVEEMPTY``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contactcenter.events import CallEnded, CallRecord, QueueLeg, event_from_json
from contactcenter.telephony.calls import CallTracker
from contactcenter.telephony.frames import AmiEvent
from tests.unit.test_calls import (
    CIT,
    T0,
    agent,
    complete,
    connect,
    ev,
    hangup,
    ivr,
    one,
    ring,
    run,
)


def abandon(t: float, hold: int, queue: str = "sanitation") -> list[AmiEvent]:
    return [ev("VarSet", t, **CIT, Variable="ABANDONED", Value="TRUE"),
            ev("QueueCallerAbandon", t, **CIT, Queue=queue, Position="1",
               OriginalPosition="1", HoldTime=str(hold)),
            ev("QueueCallerLeave", t, **CIT, Queue=queue, Position="1", Count="0")]


def status(t: float, value: str) -> AmiEvent:
    return ev("VarSet", t, **CIT, Variable="QUEUESTATUS", Value=value)


def join(t: float, queue: str) -> AmiEvent:
    return ev("QueueCallerJoin", t, **CIT, Queue=queue, Position="1", Count="1")


def summary(rec: CallRecord) -> list[tuple[object, ...]]:
    return [(leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.ring_seconds,
             leg.talk_seconds) for leg in rec.legs]


def timeout_then_fallback() -> list[AmiEvent]:
    """sanitation times out after 8 s; the dialplan's fallback queues the caller in
    general-311, where Carla (agent 3) answers after 2 s and talks 3 s."""
    return [
        *ivr(),  # joins sanitation at T0 + 4
        *abandon(T0 + 12, 8), status(T0 + 12, "TIMEOUT"),
        join(T0 + 12.01, "general-311"),
        *ring(T0 + 13, 3, "general-311"),
        *connect(T0 + 14, 3, 2, 1, "general-311"),
        complete(T0 + 17, 3, 2, 3, "general-311"),
        hangup(T0 + 17, agent(3)), hangup(T0 + 17.1, CIT),
    ]


def test_a_timeout_then_the_fallback_queue_is_two_legs() -> None:
    rec = one(run(CallTracker(), timeout_then_fallback()))
    assert summary(rec) == [
        ("sanitation", "timed_out", None, 8.0, None, None),
        ("general-311", "answered", "Agent 3", 2.0, 1.0, 3.0),
    ]
    assert rec.legs[0].joined_at == datetime.fromtimestamp(T0 + 4, UTC)
    assert rec.legs[0].left_at == datetime.fromtimestamp(T0 + 12, UTC)
    assert rec.legs[1].left_at == datetime.fromtimestamp(T0 + 17, UTC)
    assert rec.outcome == "answered"
    assert (rec.first_queue, rec.final_queue, rec.final_agent) == (
        "sanitation", "general-311", "Agent 3")
    assert (rec.wait_seconds, rec.talk_seconds) == (10.0, 3.0)  # 10 s in queues
    assert rec.abandon_position is None  # the call was answered in the end


def test_a_timeout_without_a_fallback_is_timed_out_not_abandoned() -> None:
    rec = one(run(CallTracker(), [
        *ivr(), *abandon(T0 + 64, 60), status(T0 + 64, "TIMEOUT"), hangup(T0 + 65, CIT),
    ]))
    assert summary(rec) == [("sanitation", "timed_out", None, 60.0, None, None)]
    assert rec.outcome == "timed_out" and rec.wait_seconds == 60.0


def test_a_hang_up_in_the_queue_stays_abandoned() -> None:
    """The same abandon event without QUEUESTATUS (the real ami-call-abandoned capture's
    order): the caller hung up."""
    rec = one(run(CallTracker(), [*ivr(), *abandon(T0 + 12, 8), hangup(T0 + 12, CIT)]))
    assert summary(rec) == [("sanitation", "abandoned", None, 8.0, None, None)]
    assert rec.outcome == "abandoned" and rec.abandon_position == 1


@pytest.mark.parametrize(("value", "leg_outcome", "call_outcome"), [
    ("LEAVEEMPTY", "left_empty", "timed_out"),
    ("LEAVEUNAVAIL", "left_empty", "timed_out"),
    ("CONTINUE", "abandoned", "abandoned"),  # not a way out of a waiting caller: ignored
])
def test_other_queue_statuses(value: str, leg_outcome: str, call_outcome: str) -> None:
    rec = one(run(CallTracker(), [
        *ivr(), *abandon(T0 + 12, 8), status(T0 + 12, value), hangup(T0 + 13, CIT),
    ]))
    assert [leg.outcome for leg in rec.legs] == [leg_outcome]
    assert rec.outcome == call_outcome


def test_queuestatus_never_rewrites_an_answered_leg() -> None:
    rec = one(run(CallTracker(), [
        *ivr(), *ring(T0 + 5, 1), *connect(T0 + 6, 1, 2, 1), complete(T0 + 10, 1, 2, 4),
        status(T0 + 10, "TIMEOUT"), hangup(T0 + 10, agent(1)), hangup(T0 + 10, CIT),
    ]))
    assert summary(rec) == [("sanitation", "answered", "Agent 1", 2.0, 1.0, 4.0)]


def blind_transfer(t: float, n: int, exten: str, context: str = "transfers") -> AmiEvent:
    a = agent(n)
    return ev("BlindTransfer", t, Result="Success", TransfererChannel=a["Channel"],
              TransfererUniqueid=a["Uniqueid"], TransfererLinkedid=a["Linkedid"],
              TransfereeChannel=CIT["Channel"], TransfereeUniqueid=CIT["Uniqueid"],
              TransfereeLinkedid=CIT["Linkedid"], IsExternal="No", Context=context,
              Extension=exten)


def eve_to_ana(transfer_first: bool) -> list[AmiEvent]:
    """general-311: Eve (agent 5) answers after 1 s, talks 6 s and blind-transfers to
    sanitation, where Ana (agent 1) answers after 2 s and talks 7 s."""
    handover = [blind_transfer(T0 + 11, 5, "sanitation"),
                complete(T0 + 11, 5, 1, 6, "general-311"), hangup(T0 + 11, agent(5))]
    rejoin = [join(T0 + 11.01, "sanitation")]
    return [
        *ivr(queue="general-311"), *ring(T0 + 4.5, 5, "general-311"),
        *connect(T0 + 5, 5, 1, 1, "general-311"),
        *(handover + rejoin if transfer_first else rejoin + handover),
        *ring(T0 + 12, 1), *connect(T0 + 13, 1, 2, 2), complete(T0 + 20, 1, 2, 7),
        hangup(T0 + 20, agent(1)), hangup(T0 + 20, CIT),
    ]


@pytest.mark.parametrize("transfer_first", [True, False],
                         ids=["transfer-then-join", "join-then-transfer"])
def test_a_blind_transfer_to_another_queue_is_two_legs(transfer_first: bool) -> None:
    rec = one(run(CallTracker(), eve_to_ana(transfer_first)))
    assert summary(rec) == [
        ("general-311", "transferred", "Agent 5", 1.0, 1.0, 6.0),
        ("sanitation", "answered", "Agent 1", 2.0, 2.0, 7.0),
    ]
    assert rec.legs[0].target == "sanitation@transfers"
    assert rec.outcome == "answered"
    assert (rec.queue, rec.agent) == ("general-311", "Agent 5")  # the old columns: first ones
    assert (rec.final_queue, rec.final_agent) == ("sanitation", "Agent 1")
    assert (rec.wait_seconds, rec.talk_seconds) == (3.0, 13.0)


def test_a_transfer_to_an_outside_line_is_its_own_leg() -> None:
    rec = one(run(CallTracker(), [
        *ivr(), *ring(T0 + 5, 1), *connect(T0 + 6, 1, 2, 1),
        blind_transfer(T0 + 20, 1, "5550199", "agency-lines"),
        complete(T0 + 20, 1, 2, 14), hangup(T0 + 20, agent(1)), hangup(T0 + 80, CIT),
    ]))
    assert [(leg.kind, leg.queue, leg.outcome, leg.target) for leg in rec.legs] == [
        ("queue", "sanitation", "transferred", "5550199@agency-lines"),
        ("transfer", None, "transferred", "5550199@agency-lines"),
    ]
    out = rec.legs[1]
    assert out.joined_at == datetime.fromtimestamp(T0 + 20, UTC)
    assert out.left_at == datetime.fromtimestamp(T0 + 80, UTC)
    assert rec.outcome == "transferred" and rec.final_queue == "sanitation"
    assert (rec.wait_seconds, rec.talk_seconds) == (2.0, 14.0)  # queue legs only


def test_legs_survive_the_bus_and_the_spool_as_json() -> None:
    rec = one(run(CallTracker(), timeout_then_fallback()))
    back = event_from_json(CallEnded(record=rec).to_json())
    assert isinstance(back, CallEnded) and back.record == rec
    assert all(isinstance(leg, QueueLeg) for leg in back.record.legs)


def test_a_record_without_legs_has_the_one_its_columns_describe() -> None:
    t = datetime.fromtimestamp(T0, UTC)
    rec = CallRecord(server="s", linkedid="1", caller_number=None, caller_name=None,
                     started_at=t, ended_at=datetime.fromtimestamp(T0 + 30, UTC),
                     outcome="answered", queue="potholes", agent="Dan", ivr_seconds=4.0,
                     wait_seconds=2.0, talk_seconds=20.0)
    (leg,) = rec.queue_legs
    assert (leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.talk_seconds) == (
        "potholes", "answered", "Dan", 2.0, 20.0)
    assert leg.joined_at == datetime.fromtimestamp(T0 + 4, UTC)
    assert (rec.first_queue, rec.final_queue, rec.final_agent) == ("potholes",) * 2 + ("Dan",)
    ivr_only = CallRecord(server="s", linkedid="2", caller_number=None, caller_name=None,
                          started_at=t, ended_at=t, outcome="ivr_hangup")
    assert ivr_only.queue_legs == () and ivr_only.final_queue is None


# --- adoption (a product restart mid-call) ---------------------------------------------------


def test_an_adopted_call_takes_asterisk_s_talk_time_not_the_time_since_the_restart() -> None:
    """Issue 19: adopted 13 s into a 31 s conversation, the record said talk 18 s. The
    AgentComplete that comes later carries MemberName, HoldTime and TalkTime."""
    from tests.unit.test_calls import core_show_channel, member

    tracker = CallTracker()
    tracker.resync([core_show_channel(CIT, app="Queue", data="sanitation,t,,,60",
                                      bridge="b-1", duration="00:00:20")], at=T0 + 20)
    (adoption,) = tracker.adoptions
    assert (adoption.key, adoption.channel) == (CIT["Linkedid"], CIT["Channel"])
    tracker.adopt_variables(adoption.key, {"SERVICE": "missed-pickup", "LANG": "es",
                                           "IVRPATH": "main,1", "CASE": "", "QUEUE": "x"})
    rec = one(run(tracker, [
        ev("AgentComplete", T0 + 38, **CIT, **member(1), HoldTime="3", TalkTime="31",
           Reason="caller"),
        hangup(T0 + 38, CIT),
    ]))
    assert rec.partial and (rec.agent, rec.agent_interface) == ("Agent 1", "PJSIP/1001")
    assert (rec.wait_seconds, rec.talk_seconds) == (3.0, 31.0)
    assert (rec.service, rec.language, rec.ivr_path, rec.case_number) == (
        "missed-pickup", "es", ("main", "1"), None)
    assert rec.queue == "sanitation"  # the queue it was in, not the IVR's variable
    # joined = complete - talk - hold = T0 + 4; started = now - Duration = T0
    assert rec.legs[0].joined_at == datetime.fromtimestamp(T0 + 4, UTC)
    assert rec.ivr_seconds == 4.0


def test_an_adopted_waiting_caller_gets_its_wait_from_queuestatus() -> None:
    from tests.unit.test_calls import core_show_channel

    tracker = CallTracker()
    tracker.resync([core_show_channel(CIT, app="Queue", data="sanitation,t,,,60",
                                      duration="00:00:30")], at=T0 + 30)
    tracker.adopt_queue_entries([
        ev("QueueEntry", T0 + 30, Queue="sanitation", Position="1", Wait="26", **CIT),
        ev("QueueEntry", T0 + 30, Queue="sanitation", Position="2", Wait="5",
           Channel="PJSIP/other", Uniqueid="9.9"),  # not ours
    ], T0 + 30)
    rec = one(run(tracker, [*abandon(T0 + 40, 36), hangup(T0 + 40, CIT)]))
    assert rec.legs[0].joined_at == datetime.fromtimestamp(T0 + 4, UTC)
    assert (rec.outcome, rec.wait_seconds, rec.ivr_seconds) == ("abandoned", 36.0, 4.0)


def test_a_call_first_seen_at_its_agent_complete() -> None:
    """No resync at all (the stream starts mid-call): the AgentComplete alone gives the leg."""
    from tests.unit.test_calls import member

    rec = one(run(CallTracker(), [
        ev("AgentComplete", T0 + 38, **CIT, **member(1), HoldTime="3", TalkTime="31",
           Reason="agent"),
        hangup(T0 + 38, CIT),
    ]))
    assert [(x.queue, x.outcome, x.agent, x.wait_seconds, x.talk_seconds) for x in rec.legs] == [
        ("sanitation", "answered", "Agent 1", 3.0, 31.0)]
    assert rec.ivr_seconds is None  # its start is unknown


def test_an_answered_caller_redirected_to_another_queue_was_transferred() -> None:
    """An AMI Redirect of the caller's channel sends no transfer event: the next queue's join
    says the answered visit was transferred there."""
    rec = one(run(CallTracker(), [
        *ivr(), *ring(T0 + 5, 1), *connect(T0 + 6, 1, 2, 1),
        complete(T0 + 16, 1, 2, 10), hangup(T0 + 16, agent(1)),
        join(T0 + 16.1, "potholes"), *ring(T0 + 17, 2, "potholes"),
        *connect(T0 + 18, 2, 2, 1, "potholes"), complete(T0 + 28, 2, 2, 10, "potholes"),
        hangup(T0 + 28, agent(2)), hangup(T0 + 28, CIT),
    ]))
    assert [(x.queue, x.outcome, x.agent, x.target) for x in rec.legs] == [
        ("sanitation", "transferred", "Agent 1", "potholes"),
        ("potholes", "answered", "Agent 2", None)]
