"""The SLA clock (cases/sla.py): business hours across a weekend, a holiday and a DST change in
America/New_York, pauses, calendar mode, and the one definition of at risk / overdue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from contactcenter.cases import sla
from contactcenter.cases.sla import BusinessCalendar, SlaConfigError, SlaRule, rule_for

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


def business(hours: float, holidays: tuple[str, ...] = ()) -> SlaRule:
    return rule_for(hours, "business", {}, holidays, "America/New_York")  # Mon-Fri 08-17


def test_business_hours_skip_the_weekend() -> None:
    # Friday 2026-11-20 15:00: 2 h left that day, the other 7 on Monday 08:00-15:00
    assert business(9).due(ny(2026, 11, 20, 15, 0)) == ny(2026, 11, 23, 15, 0)


def test_opened_outside_hours_starts_at_the_next_opening() -> None:
    assert business(1).due(ny(2026, 11, 21, 10, 0)) == ny(2026, 11, 23, 9, 0)  # Saturday
    assert business(1).due(ny(2026, 11, 23, 6, 30)) == ny(2026, 11, 23, 9, 0)  # before 08:00
    # a 9-hour SLA opened at the opening is due at that day's closing, not the next morning
    assert business(9).due(ny(2026, 11, 23, 8, 0)) == ny(2026, 11, 23, 17, 0)


def test_a_holiday_is_not_worked() -> None:
    # Thanksgiving Thursday 2026-11-26: Wednesday 16:00 + 4 h = Friday 11:00
    rule = business(4, ("2026-11-26",))
    assert rule.due(ny(2026, 11, 25, 16, 0)) == ny(2026, 11, 27, 11, 0)
    assert business(4).due(ny(2026, 11, 25, 16, 0)) == ny(2026, 11, 26, 11, 0)


def test_across_the_fall_dst_change() -> None:
    # EDT until Sunday 2026-11-01 02:00, EST after: Friday 16:00 EDT + 8 h = Monday 15:00 EST,
    # which is 20:00 UTC (not the 19:00 a fixed UTC offset would give)
    due = business(8).due(ny(2026, 10, 30, 16, 0))
    assert due.astimezone(NY).replace(tzinfo=None) == datetime(2026, 11, 2, 15, 0)
    assert due == datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
    assert ny(2026, 10, 30, 16, 0) == datetime(2026, 10, 30, 20, 0, tzinfo=UTC)


def test_across_the_spring_dst_change_and_a_night_shift() -> None:
    # a 24/7 desk (every day 00:00-24:00) in business mode: the spring-forward night has 23 hours
    rule = rule_for(24, "business", {d: ["00:00", "24:00"] for d in sla.DAYS}, (),
                    "America/New_York")
    opened = ny(2026, 3, 7, 12, 0)  # Saturday noon EST
    assert rule.due(opened) == opened + timedelta(hours=24)  # real hours
    assert rule.due(opened).astimezone(NY).hour == 13  # the wall clock jumped


def test_calendar_mode_counts_every_hour() -> None:
    rule = rule_for(48, "calendar", None, None, "America/New_York")
    opened = ny(2026, 11, 20, 15, 0)
    assert rule.due(opened) == opened + timedelta(hours=48)
    assert rule.between(opened, opened + timedelta(hours=5)) == 5 * 3600


def test_a_pause_moves_the_due_time_by_paused_business_time() -> None:
    rule = business(9)
    opened = ny(2026, 11, 23, 8, 0)
    due = rule.due(opened)  # Monday 17:00
    # waiting on the citizen Monday 10:00 to Tuesday 12:00: 7 + 4 = 11 business hours
    resumed = rule.resume(due, ny(2026, 11, 23, 10, 0), ny(2026, 11, 24, 12, 0))
    assert resumed == ny(2026, 11, 25, 10, 0)  # Monday 17:00 + 11 h: Wed 10:00
    # a pause over a weekend costs no business time
    assert rule.resume(due, ny(2026, 11, 21, 9, 0), ny(2026, 11, 22, 20, 0)) == due
    cal = rule_for(10, "calendar", None, None, "UTC")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert cal.resume(start, start, start + timedelta(hours=3)) == start + timedelta(hours=3)


def test_bad_calendars_are_refused_with_a_reason() -> None:
    with pytest.raises(SlaConfigError, match="not a date"):
        BusinessCalendar.build({}, ["2026-13-01"], "UTC")
    with pytest.raises(SlaConfigError, match="time zone"):
        BusinessCalendar.build({}, [], "Mars/Olympus")
    with pytest.raises(SlaConfigError, match="not after"):
        BusinessCalendar.build({"mon": ["17:00", "08:00"]}, [], "UTC")
    with pytest.raises(SlaConfigError, match="unknown SLA mode"):
        SlaRule(8, "fortnightly")
    every_day_off = [(datetime(2026, 1, 5) + timedelta(days=i)).date().isoformat()
                     for i in range(4 * 366)]
    rule = rule_for(1, "business", {"mon": ["08:00", "09:00"]}, every_day_off, "UTC")
    with pytest.raises(SlaConfigError, match="within"):
        rule.due(datetime(2026, 1, 5, tzinfo=UTC))


def test_at_risk_is_less_than_a_fifth_of_the_allowance_in_the_services_clock() -> None:
    rule = business(10)  # 10 business hours; at risk under 2 h left
    opened = ny(2026, 11, 23, 8, 0)
    due = rule.due(opened)  # Tuesday 09:00
    assert due == ny(2026, 11, 24, 9, 0)
    assert sla.state("open", due, ny(2026, 11, 23, 14, 0), rule) == sla.OPEN  # 4 h left
    # Monday 16:30: 0.5 h left Monday + 1 h Tuesday = 1.5 h of business time -> at risk,
    # though 16.5 wall-clock hours remain
    assert sla.state("open", due, ny(2026, 11, 23, 16, 30), rule) == sla.AT_RISK
    assert sla.state("in_progress", due, due, rule) == sla.OVERDUE
    assert sla.state("closed", due, due + timedelta(days=3), rule) == sla.CLOSED
    assert sla.state("open", None, due, rule) == sla.NONE
    # waiting on the citizen: paused, unless it was already late when the pause began
    assert sla.state("waiting_citizen", due, due + timedelta(days=9), rule,
                     paused_since=ny(2026, 11, 23, 16, 30)) == sla.PAUSED
    assert sla.state("waiting_citizen", due, due + timedelta(days=9), rule,
                     paused_since=due + timedelta(hours=1)) == sla.OVERDUE


def test_report_buckets_count_on_time_only_when_closed_by_the_due_time() -> None:
    rule = rule_for(10, "calendar", None, None, "UTC")
    due = datetime(2026, 5, 1, 12, tzinfo=UTC)
    b = sla.report_bucket
    assert b("closed", due, due, due + timedelta(days=1), rule) == "on_time"
    assert b("closed", due, due + timedelta(seconds=1), due, rule) == "late"
    assert b("open", due, None, due - timedelta(hours=5), rule) == "open_not_due"
    assert b("open", due, None, due - timedelta(hours=1), rule) == "at_risk"
    assert b("acknowledged", due, None, due + timedelta(hours=1), rule) == "overdue"
    assert b("open", None, None, due, rule) == "no_sla"
