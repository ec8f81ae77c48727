"""Queue statistics (pure): fed the captured transcripts through the real trackers, and a
simulated day whose every figure is computed by hand below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contactcenter.events import (
    AgentCallCompleted,
    AgentRinging,
    AgentRingNoAnswer,
    AgentStateChanged,
    AmiLinkChanged,
    CallAnswered,
    CallEnded,
    CallRecord,
    QueueJoined,
    QueueMembersSynced,
)
from contactcenter.supervisor.stats import (
    CallFacts,
    Operator,
    QueueConfig,
    QueueStats,
    Tally,
    classify,
    clean_text,
)
from tests.unit.supervisor.transcripts import domain_events

NY = ZoneInfo("America/New_York")
QUEUES = [
    QueueConfig("sanitation", "Sanitation", service_level_seconds=15, wrapup_seconds=30),
    QueueConfig("potholes", "Potholes", group="streets", service_level_seconds=20),
    QueueConfig("general-311", "General"),
]


def figures(stats: QueueStats, queue: str, now: datetime, window: str = "today") -> dict:
    snap = stats.snapshot(now)
    (q,) = [q for q in snap["queues"] if q["name"] == queue]
    return q[window]


def test_classify_and_tally_denominators() -> None:
    assert classify("answered", None) == "answered"
    assert classify("transferred", "Ana") == "answered"  # answered, then transferred
    assert classify("transferred", None) == "other"  # transferred before any operator
    assert classify("ivr_hangup", None) == "other"
    empty = Tally()
    assert (empty.service_level, empty.asa, empty.aht, empty.abandon_rate) == (None,) * 4


# --- the captures, through the real call tracker --------------------------------------------


def test_single_call_transcripts() -> None:
    stats = QueueStats(QUEUES, tz=UTC)
    for name in ("ami-call-answered.raw", "ami-call-abandoned.raw",
                 "ami-agent-ringnoanswer.raw", "ami-ivr-hangup.raw"):
        for event in domain_events(name):
            stats.apply(event)
    now = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)  # the captures ran 03:55-03:59 UTC
    san = figures(stats, "sanitation", now)
    # answered: AgentConnect HoldTime 2, AgentComplete TalkTime 6; abandoned:
    # QueueCallerAbandon HoldTime 8 (>= 5 s, so not short)
    assert san["offered"] == 2 and san["answered"] == 1 and san["abandoned"] == 1
    assert san["short_abandoned"] == 0
    assert san["service_level"] == 0.5  # 1 within 15 s / (1 answered + 1 abandoned)
    assert san["asa_seconds"] == 2.0 and san["aht_seconds"] == 6.0
    assert san["abandon_rate"] == 0.5 and san["longest_wait_seconds"] == 8.0
    gen = figures(stats, "general-311", now)
    # Eve rings 4 s without answer, Carla answers: HoldTime 6, TalkTime 3
    assert (gen["offered"], gen["answered"], gen["service_level"]) == (1, 1, 1.0)
    assert (gen["asa_seconds"], gen["aht_seconds"]) == (6.0, 3.0)
    # the IVR hang-up never queued: in no queue's figures
    assert sum(q["today"]["offered"] for q in stats.snapshot(now)["queues"]) == 3
    assert stats.calls_counted == 4


def test_burst_of_40_calls() -> None:
    """README: 40 calls, 17 answered, 23 abandoned. Per queue, read off the raw events:

    sanitation  AgentConnect HoldTime 1,3,7,9,13,14,21,22 (TalkTime 1,2,4,4,4,5,7,7 = 34);
                QueueCallerAbandon HoldTime 5,5,5,5,6,6,10,10,11,11,20,21
    potholes    HoldTime 2,12,20,23,35 (TalkTime 0,5,5,5,6 = 21); abandons 5,5,5,11,21,40,40,40
    general-311 HoldTime 1,6,15,23 (TalkTime 3,3,3,4 = 13); abandons 5,5,6
    No abandon is under 5 s, so none is short. T = 15 s for every queue here.
    """
    stats = QueueStats([QueueConfig(q.name, q.display_name) for q in QUEUES], tz=UTC)
    for event in domain_events("ami-burst-40.raw"):
        stats.apply(event)
    now = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    expected = {
        # offered, answered, abandoned, SL, ASA, AHT, abandon rate, longest wait
        "sanitation": (20, 8, 12, 6 / 20, 90 / 8, 34 / 8, 12 / 20, 22.0),
        "potholes": (13, 5, 8, 2 / 13, 92 / 5, 21 / 5, 8 / 13, 40.0),
        "general-311": (7, 4, 3, 3 / 7, 45 / 4, 13 / 4, 3 / 7, 23.0),  # 15 s counts as within
    }
    for queue, (off, ans, ab, sl, asa, aht, rate, longest) in expected.items():
        f = figures(stats, queue, now)
        assert (f["offered"], f["answered"], f["abandoned"], f["short_abandoned"]) == (
            off, ans, ab, 0), queue
        assert f["service_level"] == round(sl, 4), queue
        assert f["asa_seconds"] == round(asa, 1) and f["aht_seconds"] == round(aht, 1), queue
        assert f["abandon_rate"] == round(rate, 4), queue
        assert f["longest_wait_seconds"] == longest, queue
    total = stats.snapshot(now)["queues"]
    assert sum(q["today"]["answered"] for q in total) == 17
    assert sum(q["today"]["abandoned"] for q in total) == 23
    # every caller left and every operator's call completed: nobody waits, nobody talks
    for q in total:
        assert q["now"]["waiting"] == 0
        assert q["now"]["agents"]["on_call"] == 0 and q["now"]["agents"]["ringing"] == 0


def test_live_states_while_the_answered_capture_plays() -> None:
    stats = QueueStats(QUEUES, tz=UTC)
    seen: dict[str, dict] = {}
    for event in domain_events("ami-call-answered.raw"):
        stats.apply(event)
        name = type(event).__name__
        if name in ("QueueJoined", "AgentRinging", "CallAnswered", "AgentCallCompleted"):
            at = event.at  # type: ignore[attr-defined]
            seen[name] = stats.queue_now("sanitation", at + timedelta(seconds=1))
    assert seen["QueueJoined"]["waiting"] == 1
    assert seen["QueueJoined"]["longest_wait_seconds"] == 1.0
    assert seen["AgentRinging"]["agents"]["ringing"] == 1
    assert seen["CallAnswered"]["waiting"] == 0
    assert seen["CallAnswered"]["agents"]["on_call"] == 1
    # the member's Wrapuptime is 0 (= the queue's): 30 s of wrap-up after AgentComplete
    assert seen["AgentCallCompleted"]["agents"]["wrap_up"] == 1


# --- a simulated day, computed by hand ------------------------------------------------------


def _at(hour: int, minute: int, day: int = 23) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NY).astimezone(UTC)


def _ended(lid: str, start: datetime, outcome: str, queue: str | None, *, wait: float | None = None,
           talk: float | None = None, agent: str | None = None, service: str | None = None,
           end_after: float = 60) -> CallEnded:
    return CallEnded(CallRecord(
        server="default", linkedid=lid, caller_number="5550100", caller_name="Citizen",
        started_at=start, ended_at=start + timedelta(seconds=end_after), outcome=outcome,
        queue=queue, service=service, agent=agent, wait_seconds=wait, talk_seconds=talk,
    ))


DAY = [
    _ended("a1", _at(9, 0), "answered", "sanitation", wait=10, talk=100, agent="Ana"),
    _ended("a2", _at(9, 30), "answered", "sanitation", wait=20, talk=200, agent="Ana"),
    _ended("a3", _at(10, 15), "answered", "sanitation", wait=15, talk=60, agent="Ben"),
    _ended("a4", _at(11, 0), "transferred", "sanitation", wait=5, talk=30, agent="Ben"),
    _ended("ab1", _at(11, 10), "abandoned", "sanitation", wait=30),
    _ended("sab1", _at(11, 20), "short_abandoned", "sanitation", wait=2),
    _ended("to1", _at(12, 0), "timed_out", "sanitation", wait=300, end_after=320),
    # started yesterday at 23:50 local, ended today: not today's
    _ended("y1", _at(23, 50, day=22), "answered", "sanitation", wait=1, talk=900, agent="Ana",
           end_after=1000),
    _ended("p1", _at(9, 5), "answered", "potholes", wait=18, talk=50, agent="Dan"),
    _ended("p2", _at(9, 6), "abandoned", "potholes", wait=7),
    _ended("i1", _at(9, 7), "ivr_hangup", None),
    _ended("i2", _at(9, 8), "transferred", None),
]


def test_simulated_day_figures() -> None:
    stats = QueueStats(QUEUES, tz=NY)
    for event in DAY:
        stats.apply(event)
    stats.apply(DAY[0])  # a duplicate CallEnded (Redis echo, replay) counts once
    assert stats.duplicates == 1
    now = _at(12, 30)
    san = figures(stats, "sanitation", now)
    # offered: a1 a2 a3 a4 ab1 sab1 to1 = 7 (y1 started yesterday)
    # answered: a1 a2 a3 a4 (a4 was answered, then transferred) = 4
    # within 15 s: a1 (10), a3 (15), a4 (5) = 3; SL = 3 / (4 answered + 1 abandoned) = 0.6
    # ASA = (10 + 20 + 15 + 5) / 4 = 12.5; AHT = (100 + 200 + 60 + 30) / 4 = 97.5
    # abandon rate = 1 / (4 + 1) = 0.2; longest wait: to1's 300 s
    assert san == {
        "offered": 7, "answered": 4, "answered_in_sl": 3, "abandoned": 1,
        "short_abandoned": 1, "timed_out": 1, "other": 0, "service_level": 0.6,
        "asa_seconds": 12.5, "aht_seconds": 97.5, "abandon_rate": 0.2,
        "longest_wait_seconds": 300.0,
    }
    pot = figures(stats, "potholes", now)
    # T = 20 s for potholes: p1 (18 s) is within; SL = 1 / (1 + 1)
    assert (pot["offered"], pot["service_level"], pot["asa_seconds"], pot["abandon_rate"]) == (
        2, 0.5, 18.0, 0.5)
    # the last hour at 12:30: only to1 (12:00) started after 11:30
    hour = figures(stats, "sanitation", now, "hour")
    assert (hour["offered"], hour["timed_out"], hour["service_level"]) == (1, 1, None)
    # an admin lowers T to 10 s: today's figures are recounted (a1 10 s and a4 5 s within)
    stats.set_queues([QueueConfig("sanitation", service_level_seconds=10), *QUEUES[1:]])
    assert figures(stats, "sanitation", now)["service_level"] == 0.4


def test_a_new_day_starts_at_local_midnight() -> None:
    stats = QueueStats(QUEUES, tz=NY)
    for event in DAY:
        stats.apply(event)
    late = _ended("late", _at(23, 30), "answered", "sanitation", wait=3, talk=10, agent="Ana")
    stats.apply(late)
    before = figures(stats, "sanitation", _at(23, 59))
    assert before["offered"] == 8
    after_midnight = datetime(2026, 11, 24, 0, 5, tzinfo=NY).astimezone(UTC)
    snap = stats.snapshot(after_midnight)
    (san,) = [q for q in snap["queues"] if q["name"] == "sanitation"]
    assert san["today"]["offered"] == 0  # a new day
    assert san["hour"]["offered"] == 1  # "late" started 35 minutes ago
    assert snap["day"] == "2026-11-24"
    stats.apply(late)  # still remembered for the hour: not counted again
    assert figures(stats, "sanitation", after_midnight, "hour")["offered"] == 1


# --- operators -------------------------------------------------------------------------------

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)


def _state(iface: str, at: datetime, *, device: str = "not_in_use", paused: bool = False,
           reason: str | None = None, queue: str = "sanitation") -> AgentStateChanged:
    return AgentStateChanged(
        server="default", queue=queue, interface=iface, member_name=iface[-4:],
        device_state=device, paused=paused, pause_reason=reason, at=at,
    )


def _op(stats: QueueStats, iface: str, now: datetime, queue: str = "sanitation") -> dict:
    ops = stats.queue_now(queue, now)["operators"]
    (op,) = [o for o in ops if o["interface"] == iface]
    return op


def test_operator_states_and_time_in_state() -> None:
    ana, ben = "PJSIP/2001", "PJSIP/2002"
    stats = QueueStats(QUEUES, tz=UTC, operators=[
        Operator(ana, "Ana", ("sanitation",)), Operator(ben, "Ben", ("sanitation",)),
        Operator("PJSIP/2009", "Zoe", ("sanitation",)),
    ])
    s = T0
    stats.apply(_state(ana, s))
    stats.apply(_state(ben, s, paused=True, reason="lunch"))
    now = stats.queue_now("sanitation", s + timedelta(seconds=90))
    assert now["agents"] == {"available": 1, "ringing": 0, "on_call": 0, "wrap_up": 0,
                             "paused": 1, "logged_out": 1}
    assert now["paused_by_reason"] == {"lunch": 1}
    assert _op(stats, ben, s + timedelta(seconds=90))["seconds_in_state"] == 90
    assert _op(stats, "PJSIP/2009", s)["name"] == "Zoe"

    stats.apply(QueueJoined(server="default", linkedid="c1", queue="sanitation", position=1,
                            caller_number="5550101", caller_name="Maria", at=s + timedelta(10)))
    rs = s + timedelta(seconds=100)
    stats.apply(AgentRinging(server="default", linkedid="c1", queue="sanitation", interface=ana,
                             member_name="Ana", caller_number=None, caller_name=None, at=rs))
    assert _op(stats, ana, rs + timedelta(seconds=2))["state"] == "ringing"
    stats.apply(AgentRingNoAnswer(server="default", linkedid="c1", queue="sanitation",
                                  interface=ana, ring_seconds=4, at=rs + timedelta(seconds=4)))
    assert _op(stats, ana, rs + timedelta(seconds=5))["state"] == "available"
    stats.apply(AgentRinging(server="default", linkedid="c1", queue="sanitation", interface=ana,
                             member_name="Ana", caller_number=None, caller_name=None,
                             at=rs + timedelta(seconds=5)))
    ans = rs + timedelta(seconds=7)
    stats.apply(CallAnswered(server="default", linkedid="c1", queue="sanitation", interface=ana,
                             member_name="Ana", wait_seconds=7, ring_seconds=2, at=ans))
    op = _op(stats, ana, ans + timedelta(seconds=40))
    assert (op["state"], op["seconds_in_state"]) == ("on_call", 40)
    done = ans + timedelta(seconds=60)
    stats.apply(AgentCallCompleted(server="default", linkedid="c1", queue="sanitation",
                                   interface=ana, talk_seconds=60, at=done))
    op = _op(stats, ana, done + timedelta(seconds=10))
    assert (op["state"], op["seconds_in_state"]) == ("wrap_up", 10)
    # the queue's wrap-up time (30 s) passes: available again, since the end of wrap-up
    op = _op(stats, ana, done + timedelta(seconds=45))
    assert (op["state"], op["seconds_in_state"]) == ("available", 15)
    # a pause with a wrap-up reason is shown as wrap-up; a pause ends an open wrap-up
    stats.apply(_state(ben, done, paused=True, reason="ACW"))
    assert _op(stats, ben, done)["state"] == "wrap_up"


def test_resync_logs_out_missing_members_and_link_state_marks_stale() -> None:
    ana, ben = "PJSIP/2001", "PJSIP/2002"
    stats = QueueStats(QUEUES, tz=UTC)
    stats.apply(_state(ana, T0))
    stats.apply(_state(ben, T0, device="in_use"))
    assert stats.member_queues(ben) == ["sanitation"]
    assert not stats.stale
    stats.apply(AmiLinkChanged(server="default", connected=False, at=T0))
    assert stats.stale and stats.snapshot(T0)["stale"] is True
    # Asterisk restarted: only Ana came back
    synced = QueueMembersSynced(server="default", members=(_state(ana, T0),), at=T0)
    stats.apply(synced)
    stats.apply(AmiLinkChanged(server="default", connected=True, at=T0))
    assert not stats.stale
    assert _op(stats, ben, T0)["state"] == "logged_out"
    assert _op(stats, ana, T0)["state"] == "available"
    assert stats.member_queues(ben) == []


def test_caller_id_is_bounded_and_one_line() -> None:
    stats = QueueStats(QUEUES, tz=UTC)
    nasty = '<script>alert("x")</script>\r\n\'"' + "A" * 10_000
    stats.apply(QueueJoined(server="default", linkedid="x", queue="sanitation", position=1,
                            caller_number="=1+2", caller_name=nasty, at=T0))
    (caller,) = stats.queue_now("sanitation", T0)["callers"]
    assert len(caller["caller"]) <= 40 and caller["caller"].endswith("…")
    assert "\n" not in caller["caller"] and "\r" not in caller["caller"]
    assert clean_text("a\x00b\nc") == "a b c"


@pytest.mark.parametrize("outcome", ["answered", "abandoned", "short_abandoned", "timed_out"])
def test_facts_from_record_keep_the_outcome(outcome: str) -> None:
    rec = _ended("z", T0, outcome, "sanitation", wait=1, talk=2, agent="A").record
    f = CallFacts.from_record(rec)
    assert f.kind == outcome and f.call_id == "default:z"


def test_wrap_up_completes_handle_time_live_as_after_a_rebuild() -> None:
    """AHT is talk + wrap: the live figure gets the wrap when the console reports it, and
    agrees with a rebuild from calls rows that carry wrap_seconds."""
    from contactcenter.events import WrapUpEnded

    t0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    rec = CallRecord(server="default", linkedid="w1", caller_number="1", caller_name=None,
                     started_at=t0, ended_at=t0 + timedelta(seconds=30), outcome="answered",
                     queue="sanitation", agent="Ana", wait_seconds=4.0, talk_seconds=20.0)
    live = QueueStats(QUEUES, tz=UTC)
    live.apply(CallEnded(record=rec))
    now = t0 + timedelta(minutes=2)
    assert figures(live, "sanitation", now)["aht_seconds"] == 20.0
    wrap = WrapUpEnded(server="default", linkedid="w1", interface="PJSIP/1001",
                       wrap_seconds=10.0, at=t0 + timedelta(seconds=40))
    live.apply(wrap)
    live.apply(wrap)  # every web process reports it: counted once
    assert figures(live, "sanitation", now)["aht_seconds"] == 30.0
    assert figures(live, "sanitation", now, "hour")["aht_seconds"] == 30.0

    rebuilt = QueueStats(QUEUES, tz=UTC)
    facts = CallFacts.from_record(rec)
    rebuilt.add_call(CallFacts(**{**{s: getattr(facts, s) for s in facts.__slots__},
                                  "wrap_seconds": 10.0}), ended_at=rec.ended_at)
    assert figures(rebuilt, "sanitation", now) == figures(live, "sanitation", now)


def test_each_queue_counts_its_own_legs_and_wrap_goes_to_the_last_answered_leg() -> None:
    """Issue 19: a timeout in sanitation then an answer in general-311 (Carla), and a transfer
    from general-311 (Eve) to sanitation (Ana); live events, then a rebuild from facts as the
    store gives them (legs plus the call's wrap), agree."""
    from contactcenter.events import QueueLeg, WrapUpEnded
    from contactcenter.supervisor.stats import LegFacts

    t0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    s = timedelta(seconds=1)

    def leg(queue: str, outcome: str, wait: float, talk: float | None = None,
            agent: str | None = None) -> QueueLeg:
        return QueueLeg(queue=queue, joined_at=t0, left_at=t0 + 30 * s, outcome=outcome,
                        wait_seconds=wait, talk_seconds=talk, agent=agent)

    def call(lid: str, *legs: QueueLeg) -> CallRecord:
        return CallRecord(server="default", linkedid=lid, caller_number="1", caller_name=None,
                          started_at=t0, ended_at=t0 + 60 * s, outcome=legs[-1].outcome,
                          queue=legs[0].queue, agent=next((x.agent for x in legs if x.agent),
                                                          None), legs=legs)

    calls = [
        call("m1", leg("sanitation", "timed_out", 8), leg("general-311", "answered", 2, 3,
                                                            "Carla")),
        call("m2", leg("general-311", "transferred", 1, 6, "Eve"),
             leg("sanitation", "answered", 2, 7, "Ana")),
    ]
    live = QueueStats(QUEUES, tz=UTC)
    for c in calls:
        live.apply(CallEnded(record=c))
    live.apply(WrapUpEnded(server="default", linkedid="m2", interface="PJSIP/1001",
                           wrap_seconds=10.0, at=t0 + 70 * s))
    now = t0 + 120 * s
    san, gen = figures(live, "sanitation", now), figures(live, "general-311", now)
    assert [san[k] for k in ("offered", "answered", "abandoned", "timed_out")] == [2, 1, 0, 1]
    assert (san["asa_seconds"], san["aht_seconds"], san["abandon_rate"]) == (2.0, 17.0, 0.0)
    assert [gen[k] for k in ("offered", "answered", "abandoned", "timed_out")] == [2, 2, 0, 0]
    assert (gen["asa_seconds"], gen["aht_seconds"]) == (1.5, 4.5)  # Eve's wrap is not Ana's
    assert figures(live, "sanitation", now, "hour")["aht_seconds"] == 17.0

    # Ana finishes her wrap-up after Eve's: the call's last wrap-up stays, as in the store
    live.apply(WrapUpEnded(server="default", linkedid="m2", interface="PJSIP/1002",
                           wrap_seconds=20.0, at=t0 + 80 * s))
    live.apply(WrapUpEnded(server="default", linkedid="m2", interface="PJSIP/1002",
                           wrap_seconds=20.0, at=t0 + 80 * s))  # another web process's copy
    assert figures(live, "sanitation", now)["aht_seconds"] == 27.0
    assert figures(live, "sanitation", now, "hour")["aht_seconds"] == 27.0

    rebuilt = QueueStats(QUEUES, tz=UTC)
    for c in calls:
        facts = CallFacts.from_record(c)
        wrap = 20.0 if c.linkedid == "m2" else None
        rebuilt.add_call(CallFacts(
            call_id=facts.call_id, started_at=facts.started_at, outcome=facts.outcome,
            queue=facts.queue, agent=facts.agent, wrap_seconds=wrap,
            legs=tuple(LegFacts(x.queue, x.outcome, x.agent, x.wait_seconds, x.talk_seconds)
                       for x in facts.legs)), ended_at=c.ended_at)
    for q in ("sanitation", "general-311"):
        assert figures(rebuilt, q, now) == figures(live, q, now), q
        assert figures(rebuilt, q, now, "hour") == figures(live, q, now, "hour"), q
def test_the_wallboard_shows_operators_languages() -> None:
    ana, ben = "PJSIP/2001", "PJSIP/2002"
    stats = QueueStats(QUEUES, tz=UTC, operators=[
        Operator(ana, "Ana", ("sanitation",), ("en", "es")), Operator(ben, "Ben", ("sanitation",)),
    ])
    stats.apply(_state(ana, T0))
    assert _op(stats, ana, T0)["languages"] == ["en", "es"]
    assert _op(stats, ben, T0)["languages"] == []
