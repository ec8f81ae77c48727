"""The citizen's clock and the agencies' figures: the pure definitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contactcenter.figures.measure import (
    AgencyMonth,
    contact_timeline,
    first_contact,
    fmt_duration,
    median,
    month_bounds,
    months_ending,
    percentile,
)

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


def test_percentiles_interpolate_like_numpy() -> None:
    assert percentile([], 80) is None
    assert percentile([5.0], 80) == 5.0
    assert median([1.0, 3.0, 2.0, 10.0]) == 2.5
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 80) == pytest.approx(42.0)
    assert percentile(list(map(float, range(101))), 90) == pytest.approx(90.0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_months_ending_crosses_the_year() -> None:
    assert months_ending(date(2026, 2, 14), 4) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


def test_month_bounds_are_local_midnights() -> None:
    ny = ZoneInfo("America/New_York")
    start, end = month_bounds(date(2026, 3, 1), ny)
    assert start.astimezone(UTC) == datetime(2026, 3, 1, 5, 0, tzinfo=UTC)  # EST
    assert end.astimezone(UTC) == datetime(2026, 4, 1, 4, 0, tzinfo=UTC)  # EDT after the change
    start, end = month_bounds(date(2026, 12, 1), ny)
    assert end.astimezone(UTC) == datetime(2027, 1, 1, 5, 0, tzinfo=UTC)


def test_first_contact_is_the_earliest_call_or_the_receipt() -> None:
    assert first_contact(T0, None) == T0
    assert first_contact(T0, T0 - timedelta(minutes=4)) == T0 - timedelta(minutes=4)
    assert first_contact(T0, T0 + timedelta(days=2)) == T0  # a later call is a chase, not first


def test_on_time_counts_only_decided_cases() -> None:
    now = T0 + timedelta(days=10)
    m = AgencyMonth("SAN", "Sanitation", date(2026, 3, 1))
    due = T0 + timedelta(hours=48)
    m.add_case(status="closed", contact=T0, closed_at=T0 + timedelta(hours=20), due=due, now=now)
    m.add_case(status="closed", contact=T0, closed_at=T0 + timedelta(hours=60), due=due, now=now)
    m.add_case(status="open", contact=T0, closed_at=None, due=due, now=now)  # open, past due
    # open and not yet due: neither on time nor late
    m.add_case(status="acknowledged", contact=T0, closed_at=None, due=now + timedelta(hours=1),
               now=now)
    assert (m.received, m.closed, m.closed_on_time, m.decided) == (4, 2, 1, 3)
    assert m.on_time_rate == pytest.approx(1 / 3)
    assert m.median_resolution == pytest.approx(40 * 3600)
    p90 = m.p90_resolution
    m.chase_calls = 2
    assert m.chase_per_100 == pytest.approx(50.0)
    m.settle()  # as the figures leave the report worker: the same figures, no durations
    assert m.resolution_seconds == []
    assert m.median_resolution == pytest.approx(40 * 3600) and m.p90_resolution == p90


def test_an_empty_month_has_no_rates() -> None:
    m = AgencyMonth("DPW", "Public Works", date(2026, 3, 1))
    assert m.on_time_rate is None and m.median_resolution is None and m.chase_per_100 is None


def test_the_citizens_clock_names_each_step_and_its_holder() -> None:
    answered = T0 + timedelta(seconds=40)
    ack = T0 + timedelta(hours=3)
    steps, total = contact_timeline(contact=T0, answered=answered, acknowledged=ack,
                                    resolved=None, now=T0 + timedelta(hours=5))
    assert [(s.name, s.seconds, s.held_by) for s in steps] == [
        ("contact", 0.0, "citizen"), ("answered", 40.0, "queue"),
        ("acknowledged", 3 * 3600 - 40.0, "center"), ("resolved", None, "agency")]
    assert total == 5 * 3600  # still open: the clock runs to now
    steps, total = contact_timeline(contact=T0, answered=None, acknowledged=None,
                                    resolved=T0 + timedelta(days=1), now=T0 + timedelta(days=9))
    assert steps[-1].seconds == 86400 and total == 86400


def test_durations_read_at_a_human_scale() -> None:
    assert [fmt_duration(s) for s in (None, 12, 300, 3.5 * 3600, 3 * 86400)] == [
        "—", "12 s", "5 min", "3.5 h", "3.0 d"]
