"""Issue 19, unchecked numbers: the strict parser, the trackers' derived figures and counters,
a reused Linkedid, the bridge's rate-limited log, and the store's and wallboard's own checks."""

from __future__ import annotations

import json
import logging
import math
from datetime import UTC, datetime

import pytest

from contactcenter.cases.writer import record_row
from contactcenter.config import Settings
from contactcenter.events import (
    AgentCallCompleted,
    AgentRingNoAnswer,
    CallAbandoned,
    CallAnswered,
    CallRecord,
    QueueJoined,
)
from contactcenter.supervisor.stats import CallFacts, to_json
from contactcenter.telephony import bridge as bridge_mod
from contactcenter.telephony.calls import CallTracker
from contactcenter.telephony.frames import AmiEvent
from contactcenter.telephony.members import MemberTracker
from contactcenter.telephony.numbers import BadField, count, duration
from tests.unit.test_calls import (
    CIT,
    LID,
    T0,
    agent,
    complete,
    connect,
    ev,
    hangup,
    ivr,
    member,
    records,
    ring,
    run,
)

BAD = ["inf", "-inf", "nan", "NaN", "-5", "1e308", "x", "0x10", ""]


@pytest.mark.parametrize("raw", BAD)
def test_duration_refuses_what_is_not_a_sane_number(raw: str) -> None:
    bad: list[BadField] = []
    assert duration(AmiEvent("AgentComplete", {"TalkTime": raw}), "TalkTime", bad) is None
    assert bad == ([] if raw == "" else [BadField("AgentComplete", "TalkTime", raw)])


def test_duration_and_count_take_what_asterisk_sends() -> None:
    bad: list[BadField] = []
    e = AmiEvent("AgentRingNoAnswer", {"RingTime": "4000", "Position": "3", "Hold": "0"})
    assert duration(e, "RingTime", bad, scale=1000.0) == 4.0
    assert duration(e, "Hold", bad) == 0.0
    assert duration(e, "Missing", bad) is None
    assert count(e, "Position", bad) == 3
    assert bad == []
    assert duration(AmiEvent("X", {"T": "604801"}), "T", bad) is None  # over a week
    for raw in ("1.5", "1e3", "-1", "inf", "99999999"):
        assert count(AmiEvent("X", {"P": raw}), "P", bad) is None
    assert len(bad) == 6


@pytest.mark.parametrize("raw", ["nan", "inf", "-1", "1e308", "soon"])
def test_a_bad_timestamp_falls_back_to_receipt_time(raw: str) -> None:
    assert AmiEvent("Hangup", {"Timestamp": raw}, received_at=T0).timestamp == T0


def _bad_call(hold: str, ring_s: str, talk: str) -> list[AmiEvent]:
    c, f = connect(T0 + 7, 1, hold=3, ring_s=3), complete(T0 + 19, 1, 3, 12)
    c[1] = AmiEvent(c[1].name, {**c[1].headers, "HoldTime": hold, "RingTime": ring_s}, T0 + 7)
    f = AmiEvent(f.name, {**f.headers, "TalkTime": talk}, T0 + 19)
    return [*ivr(), *ring(T0 + 4, 1), *c, f, hangup(T0 + 19.1, agent(1)), hangup(T0 + 19.2, CIT)]


def test_refused_figures_are_derived_from_the_stamps() -> None:
    tracker = CallTracker()
    out = run(tracker, _bad_call("nan", "1e308", "inf"))
    (rec,) = records(out)
    # ring at +4 (join and AgentCalled), connect at +7, complete at +19: as Asterisk would say
    assert (rec.wait_seconds, rec.ring_seconds, rec.talk_seconds) == (3.0, 3.0, 12.0)
    (answered,) = [e for e in out if isinstance(e, CallAnswered)]
    assert (answered.wait_seconds, answered.ring_seconds) == (3.0, 3.0)
    (done,) = [e for e in out if isinstance(e, AgentCallCompleted)]
    assert done.talk_seconds == 12.0
    assert tracker.bad_fields == 3
    assert tracker.warnings == [
        f"AgentConnect HoldTime='nan', RingTime='1e308' (Linkedid {LID})",
        f"AgentComplete TalkTime='inf' (Linkedid {LID})",
    ]


def test_good_figures_are_asterisks_own() -> None:
    tracker = CallTracker()
    (rec,) = records(run(tracker, _bad_call("2", "1", "10")))
    assert (rec.wait_seconds, rec.ring_seconds, rec.talk_seconds) == (2.0, 1.0, 10.0)
    assert tracker.bad_fields == 0 and tracker.warnings == []


def test_abandon_ring_no_answer_position_and_timestamp() -> None:
    tracker = CallTracker()
    events = [*ivr(), *ring(T0 + 4, 1),
              ev("AgentRingNoAnswer", T0 + 8, **CIT, **member(1), RingTime="inf"),
              ev("QueueCallerAbandon", T0 + 10, **CIT, Queue="sanitation", HoldTime="-5",
                 Position="nan", OriginalPosition="1"),
              hangup(T0 + 10.5, agent(1)),
              AmiEvent("Hangup", {**CIT, "Timestamp": "nan"}, received_at=T0 + 11)]
    events[3] = AmiEvent(events[3].name, {**events[3].headers, "Position": "1e308"}, T0 + 4)
    out = run(tracker, events)
    (noanswer,) = [e for e in out if isinstance(e, AgentRingNoAnswer)]
    assert noanswer.ring_seconds == 4.0  # AgentCalled at +4, given up at +8
    (gone,) = [e for e in out if isinstance(e, CallAbandoned)]
    assert (gone.wait_seconds, gone.position, gone.original_position) == (6.0, None, 1)
    (joined,) = [e for e in out if isinstance(e, QueueJoined)]
    assert joined.position == 0
    (rec,) = records(out)
    assert rec.wait_seconds == 6.0
    assert rec.ended_at == datetime.fromtimestamp(T0 + 11, UTC)  # the receipt time
    assert tracker.bad_fields == 5
    assert [w.split(" ")[0] for w in tracker.warnings] == [
        "QueueCallerJoin", "AgentRingNoAnswer", "QueueCallerAbandon", "Hangup"]


def _short_call(t: float) -> list[AmiEvent]:
    return [ev("Newchannel", t, **CIT), hangup(t + 5, CIT)]


def test_a_reused_linkedid_after_the_call_ended_is_a_new_call() -> None:
    tracker = CallTracker()
    first = run(tracker, _short_call(T0))
    # a repeated Newchannel of the ended call (its old stamp) is not a new call
    assert run(tracker, [ev("Newchannel", T0, **CIT)]) == []
    assert tracker.idle and tracker.ignored == 1
    second = run(tracker, _short_call(T0 + 60))
    third = run(tracker, _short_call(T0 + 120))
    ids = [r.linkedid for r in records([*first, *second, *third])]
    assert ids == [LID, f"{LID}#2", f"{LID}#3"]
    assert [r.started_at for r in records(third)] == [datetime.fromtimestamp(T0 + 120, UTC)]
    # every domain event of the second call carries its own id
    assert {getattr(e, "linkedid", None) or e.record.linkedid for e in second} == {f"{LID}#2"}


def test_a_channel_joining_an_ended_call_is_still_ignored() -> None:
    tracker = CallTracker()
    run(tracker, _short_call(T0))
    assert run(tracker, [ev("Newchannel", T0 + 60, **agent(1))]) == []
    assert tracker.idle


def test_member_numbers_are_strict() -> None:
    tracker = MemberTracker()
    (state,) = tracker.feed(ev("QueueMemberStatus", T0, **member(1), Status="inf",
                               Wrapuptime="nan", Paused="0"))
    assert (state.device_state, state.wrapup_seconds) == ("unknown", None)
    assert tracker.bad_fields == 2
    assert tracker.warnings == ["QueueMemberStatus Status='inf', Wrapuptime='nan' "
                                "(sanitation PJSIP/1001)"]


def test_the_bridge_logs_one_line_per_event_and_no_flood(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    bridge = bridge_mod.Bridge(Settings().replace(ami_servers=""), bus=None)  # type: ignore[arg-type]
    link = next(iter(bridge.links.values()))
    now = [1000.0]
    monkeypatch.setattr(bridge_mod.time, "monotonic", lambda: now[0])
    caplog.set_level(logging.WARNING, logger="contactcenter.telephony.bridge")
    bad = [ev("AgentComplete", T0 + i, **CIT, **member(1), TalkTime="inf")
           for i in range(bridge_mod.BAD_LOG_BURST + 5)]
    for e in bad:
        link.on_event(e)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == bridge_mod.BAD_LOG_BURST
    assert "AgentComplete TalkTime='inf'" in lines[0]
    assert link.calls.warnings == []  # handed over, not kept
    caplog.clear()
    now[0] += bridge_mod.BAD_LOG_WINDOW
    link.on_event(bad[0])
    lines = [r.getMessage() for r in caplog.records]
    assert "5 more events" in lines[0] and "TalkTime='inf'" in lines[1]
    assert bridge.bad_fields() == bridge_mod.BAD_LOG_BURST + 6
    assert bridge.health()["bad_fields"] == bridge_mod.BAD_LOG_BURST + 6


def _record(**figures: float | None) -> CallRecord:
    at = datetime.fromtimestamp(T0, UTC)
    return CallRecord(server="s", linkedid="1", caller_number=None, caller_name=None,
                      started_at=at, ended_at=at, outcome="answered", queue="q",
                      **figures)  # type: ignore[arg-type]


def test_the_case_writer_stores_no_bad_duration(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="contactcenter.cases.writer")
    row = record_row(_record(wait_seconds=math.nan, talk_seconds=math.inf, ring_seconds=-5.0,
                             ivr_seconds=2.0))
    assert (row["wait_seconds"], row["talk_seconds"], row["ring_seconds"]) == (None,) * 3
    assert row["handle_seconds"] is None and row["ivr_seconds"] == 2.0
    assert len(caplog.records) == 3
    assert "call s:1 has talk_seconds=inf; stored as NULL" in caplog.text


def test_wallboard_facts_and_json_never_carry_nan(caplog: pytest.LogCaptureFixture) -> None:
    facts = CallFacts(call_id="s:1", started_at=datetime.fromtimestamp(T0, UTC),
                      outcome="answered", wait_seconds=math.nan, talk_seconds=-1.0,
                      wrap_seconds=5.0)
    assert (facts.wait_seconds, facts.talk_seconds, facts.wrap_seconds) == (None, None, 5.0)
    text = to_json({"a": [1.5, math.inf], "b": {"c": math.nan}})
    assert json.loads(text) == {"a": [1.5, None], "b": {"c": None}}
    assert "non-finite" in caplog.text
