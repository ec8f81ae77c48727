"""The interval summary's pure part: buckets and what a call adds (supervisor/intervals.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from contactcenter.supervisor.intervals import bucket_of, summarize
from contactcenter.supervisor.stats import CallFacts, LegFacts, Tally


def test_buckets_are_15_utc_minutes_and_fall_in_one_local_hour() -> None:
    t = datetime(2026, 3, 8, 6, 59, 59, 999, tzinfo=UTC)
    assert bucket_of(t) == datetime(2026, 3, 8, 6, 45, tzinfo=UTC)
    assert bucket_of(t.astimezone(ZoneInfo("Asia/Kathmandu"))) == bucket_of(t)
    # every real offset is a multiple of 15 minutes: a bucket's calls share its local hour
    for zone in ("America/New_York", "Asia/Kathmandu", "Australia/Adelaide", "Asia/Kolkata"):
        tz = ZoneInfo(zone)
        for minutes in range(0, 3 * 24 * 60, 7):
            call = datetime(2026, 10, 31, tzinfo=UTC) + timedelta(minutes=minutes, seconds=13)
            local, start = call.astimezone(tz), bucket_of(call).astimezone(tz)
            assert (local.date(), local.hour) == (start.date(), start.hour), (zone, call)


def test_a_call_counts_once_its_legs_each_in_their_queue() -> None:
    t = datetime(2026, 5, 4, 14, 7, tzinfo=UTC)
    two_legs = CallFacts("s:1", t, "answered", service="pothole", wrap_seconds=20, legs=(
        LegFacts("sanitation", "timed_out", wait_seconds=30),
        LegFacts("general-311", "answered", "Ana", wait_seconds=12, talk_seconds=60)))
    ivr_only = CallFacts("s:2", t + timedelta(minutes=10), "ivr_only")
    rows = summarize([two_legs, ivr_only], lambda q: 10.0 if q == "sanitation" else 15.0)
    b = datetime(2026, 5, 4, 14, 0, tzinfo=UTC)
    assert rows[(b, "sanitation", "pothole")].calls == 1
    assert rows[(b, "sanitation", "pothole")].tally == Tally(offered=1, timed_out=1,
                                                             longest_wait=30)
    answered = rows[(b, "general-311", "pothole")]
    assert answered.calls == 0 and answered.tally == Tally(
        offered=1, answered=1, answered_in_sl=1, wait_sum=12, wait_n=1, handle_sum=80,
        handle_n=1, longest_wait=12)
    ivr = rows[(b + timedelta(minutes=15), "", "")]
    assert ivr.calls == 1 and ivr.tally == Tally()
    assert len(rows) == 3
