"""Agent reports from the presence history: intervals clipped to the day, paused by reason,
AHT and occupancy (hand counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contactcenter.agents import presence as P
from contactcenter.agents.agent_report import Answered, Interval, summarize

DAY = datetime(2026, 11, 24, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)


def iv(state: str, start: datetime, end: datetime | None, reason: str | None = None,
       interface: str = "PJSIP/1001") -> Interval:
    return Interval(interface, state, reason, start, end)


def test_an_operators_day_by_hand() -> None:
    t8 = DAY + 8 * H
    intervals = [
        iv(P.AVAILABLE, DAY - H, DAY + H),  # from yesterday: only the hour after midnight
        iv(P.AVAILABLE, t8, t8 + 30 * M),
        iv(P.RINGING, t8 + 30 * M, t8 + 31 * M),
        iv(P.ON_CALL, t8 + 31 * M, t8 + 41 * M),
        iv(P.WRAPUP, t8 + 41 * M, t8 + 45 * M),
        iv(P.PAUSED, t8 + 45 * M, t8 + 75 * M, "lunch"),
        iv(P.PAUSED, t8 + 75 * M, t8 + 85 * M, "break"),
        iv(P.PAUSED, t8 + 85 * M, t8 + 95 * M, "lunch"),
        iv(P.AVAILABLE, t8 + 95 * M, None),  # still ready: counts until now
        iv(P.AVAILABLE, t8, t8 + H, interface="PJSIP/1002"),
    ]
    answered = [Answered("PJSIP/1001", 600.0, 240.0)]
    now = t8 + 125 * M
    ana, ben = summarize(intervals, answered, start=DAY, end=DAY + 24 * H, now=now,
                         names={"PJSIP/1001": "Ana", "PJSIP/1002": "Ben"})
    a = ana.to_dict()
    assert a["ready_seconds"] == (60 + 30 + 30) * 60
    assert (a["ringing_seconds"], a["on_call_seconds"], a["wrapup_seconds"]) == (60, 600, 240)
    assert a["paused_by_reason"] == {"break": 600, "lunch": 2400}
    assert a["logged_in_seconds"] == (120 + 1 + 10 + 4 + 50) * 60
    assert a["answered"] == 1 and a["aht_seconds"] == 840
    assert a["occupancy"] == round(15 / (15 + 120), 4)
    assert ben.to_dict()["occupancy"] == 0 and ben.to_dict()["aht_seconds"] is None
