"""Operator presence: what Asterisk reports, plus our wrap-up (time only from events/tick)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contactcenter.agents import presence as P
from contactcenter.events import AgentCallCompleted, AgentStateChanged, QueueMembersSynced

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
IF = "PJSIP/1001"


def member(queue: str, state: str = "not_in_use", *, at: datetime = T0, paused: bool = False,
           reason: str | None = None, in_call: bool = False, interface: str = IF,
           wrapup: int | None = None) -> AgentStateChanged:
    return AgentStateChanged("default", queue, interface, "Ana", state, paused, reason, at,
                             in_call=in_call, wrapup_seconds=wrapup)


def completed(at: datetime, queue: str = "sanitation", linkedid: str = "1.1") -> AgentCallCompleted:
    return AgentCallCompleted("default", linkedid, queue, IF, 6.0, at)


def test_unknown_interface_is_logged_out() -> None:
    assert P.Presence().view(IF).state == P.LOGGED_OUT


def test_added_member_is_available_and_removal_logs_out() -> None:
    p = P.Presence()
    assert p.apply(member("sanitation")) == {IF}
    p.apply(member("potholes"))
    v = p.view(IF)
    assert v.state == P.AVAILABLE and [m.queue for m in v.queues] == ["potholes", "sanitation"]
    p.apply(member("sanitation", "logged_out"))
    assert p.view(IF).state == P.AVAILABLE
    p.apply(member("potholes", "logged_out", at=T0 + timedelta(seconds=5)))
    v = p.view(IF)
    assert v.state == P.LOGGED_OUT and v.since == T0 + timedelta(seconds=5)


def test_paused_with_reason_only_when_every_queue_is_paused() -> None:
    p = P.Presence()
    p.apply(member("sanitation", paused=True, reason="lunch"))
    p.apply(member("potholes"))
    assert p.view(IF).state == P.AVAILABLE  # still takes calls from potholes
    p.apply(member("potholes", paused=True, reason="lunch"))
    v = p.view(IF)
    assert (v.state, v.reason) == (P.PAUSED, "lunch")


def test_device_states_ringing_on_call_unavailable() -> None:
    p = P.Presence()
    p.apply(member("sanitation", "ringing"))
    assert p.view(IF).state == P.RINGING
    p.apply(member("sanitation", "in_use"))
    assert p.view(IF).state == P.ON_CALL
    p.apply(member("sanitation", "not_in_use", in_call=True))
    assert p.view(IF).state == P.ON_CALL
    p.apply(member("sanitation", "unavailable"))
    assert p.view(IF).state == P.UNAVAILABLE


def test_wrapup_starts_at_completion_and_expires_with_the_queue_time() -> None:
    p = P.Presence({"sanitation": 30})
    p.apply(member("sanitation", "in_use"))
    t1 = T0 + timedelta(seconds=60)
    p.apply(completed(t1))
    p.apply(member("sanitation", "not_in_use", at=t1))
    v = p.view(IF)
    assert v.state == P.WRAPUP and v.wrapup_until == t1 + timedelta(seconds=30)
    assert v.wrapup_call == "default:1.1"
    assert p.tick(t1 + timedelta(seconds=29)) == set()
    assert p.view(IF).state == P.WRAPUP
    assert p.tick(t1 + timedelta(seconds=30)) == {IF}
    assert p.view(IF).state == P.AVAILABLE
    [ended] = p.take_ended()
    assert ended.expired and ended.seconds == 30 and ended.call_id == "default:1.1"
    assert p.take_ended() == []


def test_ready_ends_wrapup_early_and_records_its_length() -> None:
    p = P.Presence({"sanitation": 30})
    p.apply(member("sanitation"))
    p.apply(completed(T0))
    assert p.ready(IF, T0 + timedelta(seconds=12)) == {IF}
    assert p.view(IF).state == P.AVAILABLE
    [ended] = p.take_ended()
    assert not ended.expired and ended.seconds == 12
    assert p.ready(IF, T0 + timedelta(seconds=13)) == set()  # nothing to end


def test_our_wrapup_pause_shows_as_wrapup_but_a_chosen_pause_wins() -> None:
    p = P.Presence({"sanitation": 30})
    p.apply(completed(T0))
    p.apply(member("sanitation", paused=True, reason=P.WRAPUP_REASON))
    assert p.view(IF).state == P.WRAPUP
    p.apply(member("sanitation", paused=True, reason="lunch"))
    assert (p.view(IF).state, p.view(IF).reason) == (P.PAUSED, "lunch")
    # wrap-up over but Asterisk still reports our pause (the unpause failed): say so
    p.tick(T0 + timedelta(seconds=31))
    p.apply(member("sanitation", paused=True, reason=P.WRAPUP_REASON))
    assert (p.view(IF).state, p.view(IF).reason) == (P.PAUSED, P.WRAPUP_REASON)


def test_zero_wrapup_and_wrapup_seconds_from_events() -> None:
    p = P.Presence({"sanitation": 0})  # our setting: no wrap-up
    p.apply(member("sanitation"))
    p.apply(completed(T0))
    assert p.view(IF).state == P.AVAILABLE
    p.apply(member("potholes", wrapup=5))
    p.apply(completed(T0, queue="potholes", linkedid="2.2"))
    assert p.view(IF).wrapup_until == T0 + timedelta(seconds=5)


def test_asterisks_wrapuptime_does_not_override_our_setting() -> None:
    p = P.Presence({"sanitation": 30})
    p.apply(member("sanitation", wrapup=0))  # Asterisk runs none: the console's 30 s hold
    p.apply(member("sanitation", wrapup=10))
    p.apply(completed(T0))
    assert p.view(IF).wrapup_until == T0 + timedelta(seconds=30)


def test_default_wrapup_for_an_unknown_queue() -> None:
    p = P.Presence()
    p.apply(completed(T0, queue="nowhere"))
    assert p.view(IF).wrapup_until == T0 + timedelta(seconds=P.DEFAULT_WRAPUP_SECONDS)


def test_sync_replaces_memberships_and_drops_the_missing() -> None:
    p = P.Presence()
    p.apply(member("sanitation"))
    p.apply(member("potholes", interface="PJSIP/1002"))
    changed = p.apply(QueueMembersSynced("default", (member("general-311"),), T0))
    assert changed == {IF, "PJSIP/1002"}
    assert [m.queue for m in p.view(IF).queues] == ["general-311"]
    assert p.view("PJSIP/1002").state == P.LOGGED_OUT
    # an Asterisk restart: nobody is a member any more; a wrap-up in progress ends
    p.apply(completed(T0))
    p.apply(QueueMembersSynced("default", (), T0 + timedelta(seconds=3)))
    assert p.view(IF).state == P.LOGGED_OUT and p.view(IF).wrapup_until is None


def test_view_serializes() -> None:
    p = P.Presence()
    p.apply(member("sanitation", paused=True, reason="break"))
    d = p.view(IF).to_dict()
    assert d["state"] == "paused" and d["reason"] == "break"
    assert d["queues"] == [{"queue": "sanitation", "device_state": "not_in_use", "paused": True,
                            "reason": "break"}]
