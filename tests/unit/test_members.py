"""MemberTracker: queue members' presence from live events and QueueStatus replies."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from contactcenter.events import AgentStateChanged, Event, QueueMembersSynced
from contactcenter.telephony.frames import AmiEvent, iter_frames
from contactcenter.telephony.members import LOGGED_OUT, MemberTracker
from tests.conftest import transcript

T = 1_800_000_000.0


def events_of(name: str) -> list[AmiEvent]:
    return [f for f in iter_frames(transcript(name), keep_noise=False) if isinstance(f, AmiEvent)]


def feed_all(tracker: MemberTracker, events: Iterable[AmiEvent]) -> list[Event]:
    out: list[Event] = []
    for e in events:
        out.extend(tracker.feed(e))
    return out


def queue_status_reply(name: str, action_id: str) -> list[AmiEvent]:
    return [e for e in events_of(name) if e.get("ActionID") == action_id]


def states(out: Iterable[Event]) -> list[AgentStateChanged]:
    return [e for e in out if isinstance(e, AgentStateChanged)]


def test_pause_with_reason_from_capture() -> None:
    out = states(feed_all(MemberTracker("pbx1"), events_of("ami-call-abandoned.raw")))
    assert [(s.queue, s.member_name, s.interface, s.paused, s.pause_reason, s.device_state)
            for s in out] == [
        ("sanitation", "Ana Operator", "Local/2001@agents/n", True, "break", "not_in_use"),
        ("sanitation", "Ben Operator", "Local/2002@agents/n", True, "break", "not_in_use"),
    ]
    assert out[0].server == "pbx1"
    assert out[0].at == datetime.fromtimestamp(1795406136.510956, UTC)  # its Timestamp


def test_member_status_in_use_then_free() -> None:
    out = states(feed_all(MemberTracker(), events_of("ami-call-answered.raw")))
    assert [(s.member_name, s.device_state, s.paused, s.pause_reason) for s in out] == [
        ("Ana Operator", "in_use", False, None),
        ("Ana Operator", "not_in_use", False, None),
    ]
    assert out[0].wrapup_seconds == 0 and out[0].in_call is False


def test_queue_status_reply_lists_every_member() -> None:
    tracker = MemberTracker()
    out = tracker.from_queue_status(queue_status_reply("ami-actions.received.raw", "cc-12"), T)
    assert len(out) == 1 and isinstance(out[0], QueueMembersSynced)
    synced = out[0]
    assert synced.at == datetime.fromtimestamp(T, UTC)
    assert {(m.queue, m.member_name, m.interface) for m in synced.members} == {
        ("general-311", "Eve Operator", "Local/2005@agents/n"),
        ("general-311", "Carla Operator", "Local/2003@agents/n"),
        ("potholes", "Carla Operator", "Local/2003@agents/n"),
        ("potholes", "Dan Operator", "Local/2004@agents/n"),
        ("sanitation", "Ana Operator", "Local/2001@agents/n"),
        ("sanitation", "Ben Operator", "Local/2002@agents/n"),
    }
    assert all(m.device_state == "not_in_use" and not m.paused for m in synced.members)
    assert len(tracker.members()) == 6


def test_members_gone_after_asterisk_restart_are_logged_out() -> None:
    tracker = MemberTracker()
    tracker.from_queue_status(queue_status_reply("ami-actions.received.raw", "cc-12"), T)
    # ami-restart-after.raw: the queues are back (QueueParams) but hold no member.
    out = tracker.from_queue_status(queue_status_reply("ami-restart-after.raw", "re-3"), T + 60)
    assert isinstance(out[0], QueueMembersSynced) and out[0].members == ()
    gone = states(out[1:])
    assert len(gone) == 6
    assert all(s.device_state == LOGGED_OUT and not s.paused for s in gone)
    assert {(s.queue, s.member_name) for s in gone} >= {("sanitation", "Ana Operator"),
                                                         ("general-311", "Eve Operator")}
    assert tracker.members() == []
    # A second identical reply changes nothing more.
    again = tracker.from_queue_status(queue_status_reply("ami-restart-after.raw", "re-3"), T + 90)
    assert len(again) == 1


def test_queue_status_of_one_queue_leaves_others_alone() -> None:
    tracker = MemberTracker()
    tracker.from_queue_status(queue_status_reply("ami-actions.received.raw", "cc-12"), T)
    # cc-15: QueueStatus of an unknown queue, an empty list: nothing is covered.
    out = tracker.from_queue_status(queue_status_reply("ami-actions.received.raw", "cc-15"), T)
    assert len(out) == 1 and len(tracker.members()) == 6
    # A reply that covers only sanitation logs out sanitation's missing members only.
    only = [AmiEvent("QueueParams", {"Event": "QueueParams", "Queue": "sanitation"}),
            AmiEvent("QueueMember", {"Event": "QueueMember", "Queue": "sanitation",
                                     "Name": "Ana Operator", "Location": "Local/2001@agents/n",
                                     "Status": "2", "Paused": "1", "PausedReason": "lunch",
                                     "InCall": "1"})]
    out = tracker.from_queue_status(only, T + 5)
    synced = out[0]
    assert isinstance(synced, QueueMembersSynced)
    (ana,) = synced.members
    assert (ana.device_state, ana.paused, ana.pause_reason, ana.in_call) == (
        "in_use", True, "lunch", True)
    assert [(s.queue, s.member_name, s.device_state) for s in states(out[1:])] == [
        ("sanitation", "Ben Operator", LOGGED_OUT)]
    assert len(tracker.members()) == 5


def _live(name: str, **h: str) -> AmiEvent:
    return AmiEvent(name, {"Event": name, "Timestamp": f"{T:.6f}", **h}, T)


def test_added_and_removed() -> None:
    tracker = MemberTracker()
    member = {"Queue": "potholes", "MemberName": "Dan", "Interface": "PJSIP/1004"}
    (added,) = tracker.feed(_live("QueueMemberAdded", **member, Status="1", Paused="0"))
    assert isinstance(added, AgentStateChanged) and added.device_state == "not_in_use"
    (removed,) = tracker.feed(_live("QueueMemberRemoved", **member))
    assert isinstance(removed, AgentStateChanged)
    assert removed.device_state == LOGGED_OUT and removed.member_name == "Dan"
    assert tracker.members() == []


def test_bad_member_events_are_ignored_or_defaulted() -> None:
    tracker = MemberTracker()
    assert tracker.feed(_live("QueueMemberStatus", Queue="q")) == []  # no interface
    assert tracker.feed(_live("QueueMemberRemoved", Interface="PJSIP/1")) == []  # no queue
    assert tracker.feed(_live("Hangup", Queue="q", Interface="PJSIP/1")) == []
    (odd,) = tracker.feed(_live("QueueMemberStatus", Queue="q", Interface="PJSIP/1",
                                Status="banana", Wrapuptime="x", Paused="0",
                                PausedReason="stale"))
    assert isinstance(odd, AgentStateChanged)
    assert odd.device_state == "unknown" and odd.wrapup_seconds is None
    assert odd.pause_reason is None  # a reason only means something while paused
