"""CallTracker: the captures give the hand-read records; hand-built SIP-style streams cover each
outcome, transfers, hold, late events and resync."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from contactcenter.events import (
    AgentCallCompleted,
    AgentRinging,
    AgentRingNoAnswer,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallHeld,
    CallRecord,
    CallStarted,
    CallTransferred,
    Event,
    QueueJoined,
    QueueLeft,
)
from contactcenter.telephony.calls import CallTracker, record_to_json
from contactcenter.telephony.frames import AmiEvent, FrameReader, iter_frames
from tests.conftest import transcript
from tests.expected_records import (
    BURST_CALLERS,
    BURST_CHECKED,
    BURST_TOTALS,
    EXPECTED,
)

# --- helpers -------------------------------------------------------------------------------


def events_of(data: bytes, *, keep_noise: bool = False) -> list[AmiEvent]:
    return [f for f in iter_frames(data, keep_noise=keep_noise) if isinstance(f, AmiEvent)]


def chunked_events(data: bytes, seed: int) -> list[AmiEvent]:
    """The capture cut at random chunk boundaries, as a socket may deliver it."""
    rng = random.Random(seed)
    reader = FrameReader()
    out: list[AmiEvent] = []
    i = 0
    while i < len(data):
        n = rng.randint(1, 700)
        out.extend(f for f in reader.feed(data[i : i + n]) if isinstance(f, AmiEvent))
        i += n
    assert reader.errors == 0
    return out


def run(tracker: CallTracker, events: Iterable[AmiEvent]) -> list[Event]:
    out: list[Event] = []
    for ev in events:
        out.extend(tracker.feed(ev))
    return out


def records(out: Iterable[Event]) -> list[CallRecord]:
    return [e.record for e in out if isinstance(e, CallEnded)]


def capture_records(names: tuple[str, ...], *, seed: int | None = None) -> list[dict[str, Any]]:
    tracker = CallTracker()
    out: list[Event] = []
    for name in names:
        data = transcript(name)
        evs = events_of(data) if seed is None else chunked_events(data, seed)
        out.extend(run(tracker, evs))
    assert tracker.idle and tracker.open_calls() == 0
    return [record_to_json(r) for r in records(out)]


# --- the captures ----------------------------------------------------------------------------


@pytest.mark.parametrize("names", list(EXPECTED), ids=lambda n: "+".join(n))
def test_capture_gives_hand_read_records(names: tuple[str, ...]) -> None:
    assert capture_records(names) == EXPECTED[names]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("names", list(EXPECTED), ids=lambda n: "+".join(n))
def test_capture_cut_at_random_boundaries(names: tuple[str, ...], seed: int) -> None:
    assert capture_records(names, seed=seed) == EXPECTED[names]


def test_noise_events_change_nothing() -> None:
    """Fed every event (CEL, Newexten, all VarSets...), the tracker gives the same records."""
    for names, expected in EXPECTED.items():
        tracker = CallTracker()
        out = run(tracker, (e for n in names for e in events_of(transcript(n), keep_noise=True)))
        assert [record_to_json(r) for r in records(out)] == expected


def test_answered_capture_live_events() -> None:
    out = run(CallTracker("pbx1"), events_of(transcript("ami-call-answered.raw")))
    assert [type(e) for e in out] == [
        CallStarted, QueueJoined, AgentRinging, QueueLeft, CallAnswered, AgentCallCompleted,
        CallEnded,
    ]
    started, joined, ringing = out[0], out[1], out[2]
    assert isinstance(started, CallStarted)
    # Newchannel said <unknown>: the start waits for NewCallerid, but keeps Newchannel's time.
    assert started.caller_number == "7875550101" and started.caller_name == "Maria Lopez"
    assert started.at == datetime(2026, 11, 23, 3, 55, 2, 144794, tzinfo=UTC)
    assert isinstance(joined, QueueJoined) and joined.position == 1
    assert joined.service == "missed-pickup" and joined.language == "en"
    assert isinstance(ringing, AgentRinging)
    assert ringing.server == "pbx1"
    assert ringing.interface == "Local/2001@agents/n" and ringing.member_name == "Ana Operator"
    assert ringing.caller_number == "7875550101" and ringing.service == "missed-pickup"
    rec = records(out)[0]
    assert rec.agent_interface == "Local/2001@agents/n"
    assert rec.hold_seconds == 0.0 and rec.partial is False and rec.call_id == "pbx1:1795406102.0"


def test_ringnoanswer_capture_ring_time_is_milliseconds() -> None:
    out = run(CallTracker(), events_of(transcript("ami-agent-ringnoanswer.raw")))
    rna = [e for e in out if isinstance(e, AgentRingNoAnswer)]
    assert len(rna) == 1
    assert rna[0].interface == "Local/2005@agents/n" and rna[0].ring_seconds == 4.0
    ringing = [e.member_name for e in out if isinstance(e, AgentRinging)]
    assert ringing == ["Eve Operator", "Carla Operator"]


def test_abandoned_capture_event() -> None:
    out = run(CallTracker(), events_of(transcript("ami-call-abandoned.raw")))
    (ab,) = [e for e in out if isinstance(e, CallAbandoned)]
    assert (ab.queue, ab.position, ab.original_position, ab.wait_seconds) == (
        "sanitation", 1, 1, 8.0,
    )
    assert records(out)[0].abandon_position == 1


def _oracle(events: list[AmiEvent]) -> dict[str, dict[str, Any]]:
    """An independent, naive reading of the raw events per linkedid (no tracker code)."""
    per: dict[str, dict[str, Any]] = defaultdict(dict)
    for e in events:
        lid = e.get("Linkedid")
        if not lid:
            continue
        d = per[lid]
        ts = float(e.headers["Timestamp"])
        if e.name == "Newchannel":
            d.setdefault("start", ts)
        elif e.name == "Hangup":
            d["end"] = ts
        elif e.name == "QueueCallerJoin":
            d.setdefault("join", ts)
            d.setdefault("queue", e.get("Queue"))
        elif e.name == "AgentConnect":
            d["wait"], d["ring"] = float(e.get("HoldTime") or 0), float(e.get("RingTime") or 0)
            d["agent"] = e.get("MemberName")
        elif e.name == "AgentComplete":
            d["talk"] = float(e.get("TalkTime") or 0)
        elif e.name == "QueueCallerAbandon":
            d["wait"] = float(e.get("HoldTime") or 0)
    return per


@pytest.mark.parametrize("seed", [None, 7])
def test_burst_40(seed: int | None) -> None:
    data = transcript("ami-burst-40.raw")
    evs = events_of(data) if seed is None else chunked_events(data, seed)
    tracker = CallTracker()
    out = run(tracker, evs)
    recs = [record_to_json(r) for r in records(out)]
    # none lost, none duplicated, none left open
    assert len(recs) == BURST_TOTALS["calls"]
    assert len({r["linkedid"] for r in recs}) == BURST_TOTALS["calls"]
    assert {r["caller_number"] for r in recs} == BURST_CALLERS
    assert tracker.idle
    outcomes = Counter(r["outcome"] for r in recs)
    assert outcomes == {"answered": BURST_TOTALS["answered"],
                        "abandoned": BURST_TOTALS["abandoned"]}
    by_lid = {r["linkedid"]: r for r in recs}
    for expected in BURST_CHECKED:
        assert by_lid[expected["linkedid"]] == expected
    # every other call against a naive reading of its raw events
    for lid, o in _oracle(evs).items():
        r = by_lid[lid]
        assert r["started_at"] == datetime.fromtimestamp(o["start"], UTC).isoformat()
        assert r["ended_at"] == datetime.fromtimestamp(o["end"], UTC).isoformat()
        assert r["queue"] == o["queue"]
        assert r["ivr_seconds"] == round(o["join"] - o["start"], 3)
        assert r["wait_seconds"] == o["wait"]
        assert r["agent"] == o.get("agent")
        assert r["ring_seconds"] == o.get("ring")
        assert r["talk_seconds"] == o.get("talk")
        assert r["outcome"] == ("answered" if "agent" in o else "abandoned")
    # each call's live story is told once
    assert Counter(type(e).__name__ for e in out)["CallStarted"] == 40
    assert sum(isinstance(e, CallAnswered) for e in out) == 17
    assert sum(isinstance(e, CallAbandoned) for e in out) == 23


def test_memory_is_bounded_after_burst() -> None:
    tracker = CallTracker(recently_closed=10)
    run(tracker, events_of(transcript("ami-burst-40.raw")))
    assert tracker.idle
    assert not tracker._uid and not tracker._calls
    assert len(tracker._closed) == 10 and len(tracker._dead) <= 20


def test_same_capture_twice_is_recorded_once() -> None:
    tracker = CallTracker()
    evs = events_of(transcript("ami-call-answered.raw"))
    first = run(tracker, evs)
    again = run(tracker, evs)
    assert len(records(first)) == 1
    assert again == [] and tracker.idle


def test_joined_mid_call_is_followed_and_flagged_partial() -> None:
    evs = events_of(transcript("ami-call-answered.raw"))
    cut = next(i for i, e in enumerate(evs) if e.name == "AgentConnect")
    out = run(CallTracker(), evs[cut:])
    (rec,) = records(out)
    assert rec.partial and rec.outcome == "answered" and rec.agent == "Ana Operator"
    assert rec.talk_seconds == 6.0 and rec.wait_seconds == 2.0


# --- hand-built SIP streams ------------------------------------------------------------------
# A real deployment: the citizen on a trunk channel, operators on PJSIP endpoints, no Local
# channels. Nothing in the tracker may depend on the capture's channel names.

T0 = 1_800_000_000.0
LID = "1800000000.1"


def ev(name: str, ts: float, **headers: str) -> AmiEvent:
    return AmiEvent(name, {"Event": name, "Timestamp": f"{ts:.6f}", **headers}, ts)


def chan(channel: str, uid: str, lid: str = LID, num: str = "3125550100",
         name: str = "Jo Citizen") -> dict[str, str]:
    return {"Channel": channel, "Uniqueid": uid, "Linkedid": lid,
            "CallerIDNum": num, "CallerIDName": name}


CIT = chan("PJSIP/trunk-00000001", LID)


def agent(n: int) -> dict[str, str]:
    return chan(f"PJSIP/100{n}-0000000{n + 1}", f"1800000000.{n + 1}")


def member(n: int, queue: str = "sanitation") -> dict[str, str]:
    return {"Queue": queue, "Interface": f"PJSIP/100{n}", "MemberName": f"Agent {n}"}


def ivr(t: float = T0, queue: str = "sanitation", **vars_: str) -> list[AmiEvent]:
    out = [ev("Newchannel", t, **CIT)]
    for var, value in {"SERVICE": "missed-pickup", "LANG": "es", **vars_}.items():
        out.append(ev("VarSet", t + 3, **CIT, Variable=var, Value=value))
    out.append(ev("QueueCallerJoin", t + 4, **CIT, Queue=queue, Position="1", Count="1"))
    return out


def ring(t: float, n: int, queue: str = "sanitation") -> list[AmiEvent]:
    a = agent(n)
    return [ev("Newchannel", t, **a),
            ev("AgentCalled", t, **CIT, **member(n, queue), DestUniqueid=a["Uniqueid"])]


def connect(t: float, n: int, hold: int, ring_s: int, queue: str = "sanitation") -> list[AmiEvent]:
    return [ev("QueueCallerLeave", t, **CIT, Queue=queue, Position="1", Count="0"),
            ev("AgentConnect", t, **CIT, **member(n, queue), HoldTime=str(hold),
               RingTime=str(ring_s))]


def complete(t: float, n: int, hold: int, talk: int, queue: str = "sanitation") -> AmiEvent:
    return ev("AgentComplete", t, **CIT, **member(n, queue), HoldTime=str(hold),
              TalkTime=str(talk), Reason="agent")


def hangup(t: float, c: dict[str, str]) -> AmiEvent:
    return ev("Hangup", t, **c, Cause="16")


def one(out: list[Event]) -> CallRecord:
    recs = records(out)
    assert len(recs) == 1, recs
    return recs[0]


def answered_call() -> list[AmiEvent]:
    return [*ivr(), *ring(T0 + 4, 1), *connect(T0 + 7, 1, hold=3, ring_s=3)]


def test_answered() -> None:
    tracker = CallTracker("pbx1")
    out = run(tracker, [*answered_call(), complete(T0 + 19, 1, 3, 12),
                        hangup(T0 + 19.1, agent(1)), hangup(T0 + 19.2, CIT)])
    assert tracker.idle
    rec = one(out)
    assert (rec.outcome, rec.queue, rec.service, rec.language) == (
        "answered", "sanitation", "missed-pickup", "es")
    assert (rec.caller_number, rec.caller_name) == ("3125550100", "Jo Citizen")
    assert (rec.agent, rec.agent_interface) == ("Agent 1", "PJSIP/1001")
    assert (rec.ivr_seconds, rec.wait_seconds, rec.ring_seconds, rec.talk_seconds) == (
        4.0, 3.0, 3.0, 12.0)
    assert rec.hold_seconds == 0.0 and not rec.partial
    assert rec.started_at == datetime.fromtimestamp(T0, UTC)
    assert rec.ended_at == datetime.fromtimestamp(T0 + 19.2, UTC)
    # the caller's number is on the trunk's Newchannel: the call is announced at once
    assert isinstance(out[0], CallStarted) and out[0].caller_number == "3125550100"


def test_agent_ringing_carries_ivr_context() -> None:
    out = run(CallTracker(), [*ivr(CASE="204518", IVRPATH="lang:es,1,9"), *ring(T0 + 4, 1)])
    (ringing,) = [e for e in out if isinstance(e, AgentRinging)]
    assert ringing.queue == "sanitation" and ringing.interface == "PJSIP/1001"
    assert (ringing.service, ringing.language, ringing.case_number) == (
        "missed-pickup", "es", "204518")
    assert ringing.ivr_path == ("lang:es", "1", "9")
    assert ringing.caller_number == "3125550100"


def test_a_caller_gone_mid_menu_keeps_the_ivr_trace() -> None:
    # the IVR sets LANG and IVRPATH as the caller goes (issue 17): no queue, yet a record
    # with the language and the keys pressed
    out = run(CallTracker(), [
        ev("Newchannel", T0, **CIT),
        ev("VarSet", T0 + 2, **CIT, Variable="LANG", Value="es"),
        ev("VarSet", T0 + 3, **CIT, Variable="IVRPATH", Value="lang:2"),
        ev("VarSet", T0 + 6, **CIT, Variable="IVRPATH", Value="lang:2,main:-"),
        hangup(T0 + 8, CIT),
    ])
    rec = one(out)
    assert rec.queue is None and rec.language == "es"
    assert rec.ivr_path == ("lang:2", "main:-")


@pytest.mark.parametrize(
    ("hold", "queue", "expected"),
    [(30, "sanitation", "abandoned"), (2, "sanitation", "short_abandoned"),
     (2, "potholes", "abandoned"), (5, "sanitation", "abandoned")],
)
def test_abandoned_and_short_abandoned(hold: int, queue: str, expected: str) -> None:
    tracker = CallTracker(short_abandon_seconds=lambda q: 1.0 if q == "potholes" else 5.0)
    out = run(tracker, [
        *ivr(queue=queue),
        ev("QueueCallerAbandon", T0 + 4 + hold, **CIT, Queue=queue, Position="2",
           OriginalPosition="3", HoldTime=str(hold)),
        ev("QueueCallerLeave", T0 + 4 + hold, **CIT, Queue=queue, Position="2", Count="0"),
        hangup(T0 + 4 + hold, CIT),
    ])
    rec = one(out)
    assert rec.outcome == expected
    assert rec.wait_seconds == float(hold) and rec.abandon_position == 2
    assert rec.agent is None and rec.talk_seconds is None and rec.hold_seconds is None
    (ab,) = [e for e in out if isinstance(e, CallAbandoned)]
    assert (ab.position, ab.original_position, ab.wait_seconds) == (2, 3, float(hold))


def test_ring_no_answer_then_next_agent_answers() -> None:
    out = run(CallTracker(), [
        *ivr(), *ring(T0 + 4, 1),
        ev("AgentRingNoAnswer", T0 + 19, **CIT, **member(1), RingTime="15000"),
        hangup(T0 + 19, agent(1)),
        *ring(T0 + 20, 2), *connect(T0 + 22, 2, hold=18, ring_s=2),
        complete(T0 + 30, 2, 18, 8), hangup(T0 + 30, agent(2)), hangup(T0 + 30.5, CIT),
    ])
    (rna,) = [e for e in out if isinstance(e, AgentRingNoAnswer)]
    assert rna.interface == "PJSIP/1001" and rna.ring_seconds == 15.0
    rec = one(out)
    assert (rec.outcome, rec.agent, rec.wait_seconds, rec.ring_seconds, rec.talk_seconds) == (
        "answered", "Agent 2", 18.0, 2.0, 8.0)


def test_caller_hangs_up_in_ivr() -> None:
    out = run(CallTracker(), [ev("Newchannel", T0, **CIT),
                              ev("VarSet", T0 + 2, **CIT, Variable="LANG", Value="es"),
                              hangup(T0 + 6.5, CIT)])
    rec = one(out)
    assert rec.outcome == "ivr_hangup" and rec.queue is None and rec.language == "es"
    assert rec.ivr_seconds == 6.5 and rec.wait_seconds is None


def test_ivr_self_served() -> None:
    out = run(CallTracker(), [ev("Newchannel", T0, **CIT),
                              ev("VarSet", T0 + 9, **CIT, Variable="CASE", Value="204518"),
                              ev("VarSet", T0 + 12, **CIT, Variable="IVROUTCOME",
                                 Value="self_served"),
                              hangup(T0 + 14, CIT)])
    rec = one(out)
    assert rec.outcome == "ivr_self_served" and rec.case_number == "204518"
    assert rec.ivr_seconds == 14.0 and rec.queue is None


def test_timeout_out_of_the_queue() -> None:
    out = run(CallTracker(), [
        *ivr(), *ring(T0 + 4, 1),
        ev("AgentRingNoAnswer", T0 + 19, **CIT, **member(1), RingTime="15000"),
        hangup(T0 + 19, agent(1)),
        ev("QueueCallerLeave", T0 + 64, **CIT, Queue="sanitation", Position="1", Count="0"),
        hangup(T0 + 70, CIT),  # the dialplan played a goodbye after Queue() gave up
    ])
    rec = one(out)
    assert rec.outcome == "timed_out" and rec.wait_seconds == 60.0 and rec.agent is None
    assert rec.ended_at == datetime.fromtimestamp(T0 + 70, UTC)


def test_blind_transfer() -> None:
    out = run(CallTracker(), [
        *answered_call(),
        ev("BlindTransfer", T0 + 12, Result="Success",
           TransfererChannel=agent(1)["Channel"], TransfererUniqueid=agent(1)["Uniqueid"],
           TransfererLinkedid=LID, TransfereeChannel=CIT["Channel"],
           TransfereeUniqueid=LID, TransfereeLinkedid=LID, IsExternal="No",
           Context="transfers", Extension="potholes"),
        complete(T0 + 12, 1, 3, 5), hangup(T0 + 12, agent(1)),
        ev("QueueCallerJoin", T0 + 12.1, **CIT, Queue="potholes", Position="1", Count="1"),
        ev("QueueCallerAbandon", T0 + 20, **CIT, Queue="potholes", Position="1",
           OriginalPosition="1", HoldTime="8"),
        hangup(T0 + 20, CIT),
    ])
    (tr,) = [e for e in out if isinstance(e, CallTransferred)]
    assert tr.kind == "blind" and tr.target == "potholes@transfers"
    rec = one(out)
    # Two legs: answered in sanitation then transferred; the caller gave up in potholes.
    assert [(leg.queue, leg.outcome, leg.agent, leg.wait_seconds, leg.talk_seconds)
            for leg in rec.legs] == [("sanitation", "transferred", "Agent 1", 3.0, 5.0),
                                     ("potholes", "abandoned", None, 8.0, None)]
    assert rec.legs[0].target == "potholes@transfers"
    assert rec.outcome == "abandoned"  # how the call ended: its last leg
    assert (rec.queue, rec.first_queue, rec.final_queue) == ("sanitation", "sanitation",
                                                             "potholes")
    # the first answering operator; wait and talk are the sums over the legs
    assert (rec.agent, rec.final_agent, rec.wait_seconds, rec.talk_seconds) == (
        "Agent 1", "Agent 1", 11.0, 5.0)
    assert [e.queue for e in out if isinstance(e, QueueJoined)] == ["sanitation", "potholes"]


def test_attended_transfer() -> None:
    consult_lid = "1800000010.7"
    a1_consult = chan("PJSIP/1001-00000007", consult_lid, consult_lid, "1001", "Agent 1")
    a2 = chan("PJSIP/1002-00000008", "1800000010.8", consult_lid, "1001", "Agent 1")
    tracker = CallTracker()
    out = run(tracker, [
        *answered_call(),
        ev("Hold", T0 + 10, **CIT, MusicClass="default"),
        ev("Newchannel", T0 + 10, **a1_consult), ev("Newchannel", T0 + 10.1, **a2),
        ev("AttendedTransfer", T0 + 15, Result="Success",
           OrigTransfererChannel=agent(1)["Channel"],
           OrigTransfererUniqueid=agent(1)["Uniqueid"], OrigTransfererLinkedid=LID,
           SecondTransfererChannel=a1_consult["Channel"],
           SecondTransfererUniqueid=a1_consult["Uniqueid"],
           SecondTransfererLinkedid=consult_lid,
           TransfereeChannel=CIT["Channel"], TransfereeUniqueid=LID, TransfereeLinkedid=LID,
           TransferTargetChannel=a2["Channel"], TransferTargetUniqueid=a2["Uniqueid"],
           TransferTargetLinkedid=consult_lid, IsExternal="No", DestType="Bridge"),
        ev("Unhold", T0 + 15, **CIT),
        complete(T0 + 15, 1, 3, 8),
        hangup(T0 + 15, agent(1)), hangup(T0 + 15, a1_consult),
        hangup(T0 + 40, a2), hangup(T0 + 40, CIT),
    ])
    assert tracker.idle
    (tr,) = [e for e in out if isinstance(e, CallTransferred)]
    assert tr.kind == "attended" and tr.target == "PJSIP/1002-00000008" and tr.linkedid == LID
    recs = {r.linkedid: r for r in records(out)}
    assert set(recs) == {LID, consult_lid}
    assert recs[LID].outcome == "transferred" and recs[LID].hold_seconds == 5.0
    assert recs[LID].ended_at == datetime.fromtimestamp(T0 + 40, UTC)


def test_hold_during_the_call() -> None:
    out = run(CallTracker(), [
        *answered_call(),
        ev("Hold", T0 + 10, **CIT, MusicClass="default"),
        ev("Hold", T0 + 11, **CIT, MusicClass="default"),  # repeated: no change
        ev("Unhold", T0 + 15, **CIT),
        ev("Unhold", T0 + 15.5, **CIT),  # not on hold: ignored
        ev("Hold", T0 + 17, **CIT, MusicClass="default"),
        complete(T0 + 19, 1, 3, 12), hangup(T0 + 19, agent(1)), hangup(T0 + 19, CIT),
    ])
    held = [e.held for e in out if isinstance(e, CallHeld)]
    assert held == [True, False, True]
    rec = one(out)
    assert rec.outcome == "answered" and rec.hold_seconds == 7.0  # 5 s, then 2 s till hangup


def test_duplicate_and_late_hangup_emit_nothing() -> None:
    tracker = CallTracker()
    out = run(tracker, [*answered_call(), complete(T0 + 19, 1, 3, 12),
                        hangup(T0 + 19, agent(1)), hangup(T0 + 19, CIT)])
    assert len(records(out)) == 1
    late = run(tracker, [hangup(T0 + 19, CIT), hangup(T0 + 20, agent(1)),
                         complete(T0 + 21, 1, 3, 12),
                         ev("VarSet", T0 + 21, **CIT, Variable="LANG", Value="en")])
    assert late == [] and tracker.idle and tracker.ignored >= 3


def test_hangup_of_one_channel_does_not_end_the_call() -> None:
    tracker = CallTracker()
    out = run(tracker, [*answered_call(), hangup(T0 + 10, agent(1))])
    assert records(out) == [] and tracker.open_calls() == 1
    out = run(tracker, [hangup(T0 + 10, agent(1)), hangup(T0 + 11, CIT)])  # one duplicate
    assert one(out).ended_at == datetime.fromtimestamp(T0 + 11, UTC)


def test_bad_events_are_ignored() -> None:
    tracker = CallTracker()
    out = run(tracker, [
        ev("Hangup", T0), ev("Newchannel", T0), ev("AgentConnect", T0, Queue="q"),
        ev("AgentConnect", T0, **CIT, Queue="q", HoldTime="x", RingTime=""),
        ev("QueueCallerAbandon", T0, **CIT, Queue="q", Position="?", HoldTime="soon"),
        hangup(T0 + 1, CIT),
    ])
    rec = one(out)  # adopted from the AgentConnect, closed by its channel's Hangup
    assert rec.partial and rec.outcome == "answered"
    assert rec.wait_seconds is None and rec.ring_seconds is None and rec.abandon_position is None
    assert tracker.idle


def test_resync_closes_a_call_that_ended_while_away() -> None:
    tracker = CallTracker()
    run(tracker, ivr())
    tracker.on_disconnect(T0 + 10)
    out = tracker.resync([], at=T0 + 30)
    rec = one(out)
    assert rec.partial and rec.outcome == "abandoned"  # it was waiting in the queue
    assert rec.ended_at == datetime.fromtimestamp(T0 + 30, UTC)
    assert rec.wait_seconds == 26.0 and rec.queue == "sanitation"
    assert tracker.idle
    # Late events of that call and a second resync record nothing more.
    assert run(tracker, [hangup(T0 + 31, CIT)]) == []
    assert tracker.resync([], at=T0 + 40) == []


def test_resync_of_an_answered_call_keeps_what_is_known() -> None:
    tracker = CallTracker()
    run(tracker, answered_call())
    tracker.on_disconnect(T0 + 10)
    rec = one(tracker.resync([], at=T0 + 20))
    assert rec.partial and rec.outcome == "answered" and rec.agent == "Agent 1"
    assert rec.talk_seconds == 13.0  # AgentConnect at T0+7 to the resync: no AgentComplete


def core_show_channel(c: dict[str, str], *, app: str, data: str = "", bridge: str = "",
                      duration: str = "00:00:42") -> AmiEvent:
    return AmiEvent("CoreShowChannel", {"Event": "CoreShowChannel", "ActionID": "r-2", **c,
                                        "Application": app, "ApplicationData": data,
                                        "BridgeId": bridge, "Duration": duration}, 0.0)


def test_resync_adopts_an_unknown_live_call() -> None:
    tracker = CallTracker()
    out = tracker.resync(
        [core_show_channel(CIT, app="Queue", data="potholes,t,,,60", duration="00:01:02")],
        at=T0,
    )
    assert [type(e) for e in out] == [CallStarted]
    assert out[0].caller_number == "3125550100"  # type: ignore[attr-defined]
    assert tracker.open_calls() == 1
    out = run(tracker, [*ring(T0 + 1, 1, "potholes"),
                        *connect(T0 + 3, 1, hold=64, ring_s=2, queue="potholes"),
                        complete(T0 + 9, 1, 64, 6, "potholes"),
                        hangup(T0 + 9, agent(1)), hangup(T0 + 9, CIT)])
    rec = one(out)
    assert rec.partial and rec.outcome == "answered" and rec.queue == "potholes"
    assert rec.started_at == datetime.fromtimestamp(T0 - 62, UTC)
    assert (rec.wait_seconds, rec.talk_seconds) == (64.0, 6.0)


def test_resync_forgets_channels_gone_and_keeps_live_calls() -> None:
    tracker = CallTracker()
    run(tracker, answered_call())
    tracker.on_disconnect(T0 + 8)
    # Only the citizen's channel is still up: the operator hung up while we were away.
    out = tracker.resync([core_show_channel(CIT, app="Queue", data="sanitation", bridge="b1")],
                         at=T0 + 20)
    assert out == [] and tracker.open_calls() == 1
    rec = one(run(tracker, [hangup(T0 + 25, CIT)]))
    assert rec.partial and rec.outcome == "answered"
    assert rec.ended_at == datetime.fromtimestamp(T0 + 25, UTC)


def test_resync_spares_a_call_active_since_the_snapshot() -> None:
    tracker = CallTracker()
    tracker.on_disconnect(T0 - 5)
    mark = tracker.seq  # read before sending CoreShowChannels
    run(tracker, ivr())  # a call that started while the reply was being collected
    assert tracker.resync([], at=T0 + 5, since=mark) == []
    assert tracker.open_calls() == 1
    # ...and by default the disconnect mark protects it the same way
    tracker2 = CallTracker()
    tracker2.on_disconnect(T0 - 5)
    run(tracker2, ivr())
    assert tracker2.resync([], at=T0 + 5) == [] and tracker2.open_calls() == 1


def test_resync_ignores_channels_of_a_recently_closed_call() -> None:
    tracker = CallTracker()
    run(tracker, [*answered_call(), hangup(T0 + 9, agent(1)), hangup(T0 + 9, CIT)])
    assert tracker.resync([core_show_channel(CIT, app="Queue")], at=T0 + 10) == []
    assert tracker.idle


def test_record_to_json_rounds_and_formats() -> None:
    rec = CallRecord(
        server="s", linkedid="1.2", caller_number=None, caller_name=None,
        started_at=datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
        ended_at=datetime(2026, 1, 2, 3, 4, 9, tzinfo=UTC), outcome="ivr_hangup",
        ivr_seconds=3.8765432,
    )
    j = record_to_json(rec)
    assert j["started_at"] == "2026-01-02T03:04:05.123456+00:00"
    assert j["ivr_seconds"] == 3.877 and j["wait_seconds"] is None
    assert list(j) == ["linkedid", "caller_number", "caller_name", "started_at", "ended_at",
                       "queue", "service", "language", "agent", "ivr_seconds", "wait_seconds",
                       "ring_seconds", "talk_seconds", "outcome", "final_queue", "final_agent",
                       "legs"]


def test_first_connect_resync_spares_calls_seen_after_the_request() -> None:
    """Events stream while CoreShowChannels is answered: a call that began after the request
    is live whatever the (earlier) snapshot says, and it is not partial."""
    tracker = CallTracker()
    mark = tracker.seq
    run(tracker, ivr())
    assert tracker.resync([], at=T0 + 5, since=mark) == [] and tracker.open_calls() == 1
    rec = one(run(tracker, [hangup(T0 + 9, CIT)]))
    assert not rec.partial and rec.outcome == "abandoned"


def test_reconnect_closes_old_calls_and_spares_new_ones() -> None:
    other = chan("PJSIP/trunk-00000009", "1800000050.9", "1800000050.9", "3125550199")
    tracker = CallTracker()
    run(tracker, ivr())  # old link: a call in the queue
    tracker.on_disconnect(T0 + 19)
    run(tracker, [ev("FullyBooted", T0 + 20), ev("Newchannel", T0 + 21, **other)])
    rec = one(tracker.resync([], at=T0 + 22))
    assert rec.linkedid == LID and rec.partial
    assert tracker.open_calls() == 1
    assert one(run(tracker, [hangup(T0 + 23, other)])).linkedid == "1800000050.9"


def test_close_all_closes_every_open_call_once() -> None:
    tracker = CallTracker()
    run(tracker, answered_call())
    tracker.on_disconnect(T0 + 8)
    run(tracker, [ev("VarSet", T0 + 9, **CIT, Variable="CASE", Value="1")])
    rec = one(tracker.close_all(T0 + 30))
    assert rec.partial and rec.outcome == "answered"
    assert rec.ended_at == datetime.fromtimestamp(T0 + 30, UTC)
    assert tracker.idle and tracker.close_all(T0 + 31) == []
    assert run(tracker, [hangup(T0 + 32, CIT)]) == []


def test_link_mark_protects_only_the_first_resync() -> None:
    tracker = CallTracker()
    run(tracker, ivr())
    tracker.on_disconnect(T0 + 4.5)
    run(tracker, [ev("VarSet", T0 + 4.6, **CIT, Variable="CASE", Value="1")])  # new link
    assert tracker.resync([], at=T0 + 5) == []  # the reconnect snapshot: spared
    rec = one(tracker.resync([], at=T0 + 50))  # later: nothing is up any more
    assert rec.partial and rec.ended_at == datetime.fromtimestamp(T0 + 50, UTC)


# --- any order, any garbage: no crash, no call recorded twice, nothing left behind ----------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NAMES = ["Newchannel", "NewCallerid", "VarSet", "QueueCallerJoin", "QueueCallerLeave",
          "QueueCallerAbandon", "AgentCalled", "AgentRingNoAnswer", "AgentConnect",
          "AgentComplete", "Hold", "Unhold", "BlindTransfer", "AttendedTransfer", "Hangup",
          "FullyBooted", "QueueMemberStatus"]
_VALUES = st.sampled_from(["", "1", "x", "-3", "4000", "<unknown>", "sanitation", "1.5"])


@st.composite
def _events(draw: st.DrawFn) -> AmiEvent:
    name = draw(st.sampled_from(_NAMES))
    lid = f"9.{draw(st.integers(0, 3))}"
    uid = f"9.{draw(st.integers(0, 6))}"
    headers = {"Event": name, "Uniqueid": uid, "Linkedid": lid,
               "Timestamp": f"{draw(st.floats(0, 1e6, allow_nan=False)):.6f}"}
    for key in draw(st.lists(st.sampled_from(
            ["HoldTime", "RingTime", "TalkTime", "Position", "Queue", "Variable", "Value",
             "Interface", "MemberName", "CallerIDNum", "Duration", "Result",
             "TransfereeUniqueid", "TransfereeLinkedid"]), max_size=6)):
        headers[key] = draw(_VALUES)
    if draw(st.booleans()):
        headers.pop(draw(st.sampled_from(["Uniqueid", "Linkedid", "Timestamp"])))
    return AmiEvent(name, headers, 1.0)


@settings(max_examples=150, deadline=None)
@given(st.lists(_events(), max_size=60), st.lists(_events(), max_size=4))
def test_random_streams_never_crash_nor_record_twice(
    stream: list[AmiEvent], snapshot: list[AmiEvent]
) -> None:
    tracker = CallTracker()
    out = run(tracker, stream)
    tracker.on_disconnect(2.0)
    out += tracker.resync(snapshot, at=3.0)
    # hang up whatever is still live: every call must then be closed
    for uid, lid in list(tracker._uid.items()):
        out += tracker.feed(AmiEvent("Hangup", {"Uniqueid": uid, "Linkedid": lid}, 4.0))
    assert tracker.idle
    ended = [r.linkedid for r in records(out)]
    assert len(ended) == len(set(ended))
    for rec in records(out):
        assert rec.outcome in ("answered", "abandoned", "short_abandoned", "ivr_self_served",
                               "ivr_hangup", "timed_out", "transferred")
        record_to_json(rec)


def test_adopted_call_has_no_ivr_figure() -> None:
    tracker = CallTracker()
    tracker.resync([core_show_channel(CIT, app="Queue", data="potholes")], at=T0)
    rec = one(run(tracker, [hangup(T0 + 3, CIT)]))
    assert rec.partial and rec.ivr_seconds is None and rec.outcome == "abandoned"


def test_withheld_number_is_not_taken_from_an_operator_channel() -> None:
    anon = {**CIT, "CallerIDNum": "<unknown>", "CallerIDName": "<unknown>"}
    a1 = {**agent(1), "CallerIDNum": "1001", "CallerIDName": "Agent 1"}
    tracker = CallTracker()
    out = run(tracker, [
        ev("Newchannel", T0, **anon),
        ev("QueueCallerJoin", T0 + 4, **anon, Queue="sanitation", Position="1", Count="1"),
        ev("Newchannel", T0 + 4, **a1), ev("NewCallerid", T0 + 4, **a1),
        ev("AgentCalled", T0 + 4, **anon, **member(1), DestUniqueid=a1["Uniqueid"]),
        hangup(T0 + 5, a1), hangup(T0 + 6, anon),
    ])
    rec = one(out)
    assert rec.caller_number is None and rec.caller_name is None
    (ringing,) = [e for e in out if isinstance(e, AgentRinging)]
    assert ringing.caller_number is None
