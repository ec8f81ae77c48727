"""Issue 15: one clock for business time. The package reads the wall clock only in
`contactcenter/clock.py`; the clocks tests hand in behave; and the date-sensitive figures hold at
awkward dates (month and year ends, Feb 29, DST changes in New York, Panama without DST)."""

from __future__ import annotations

import ast
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from contactcenter.cases import open311
from contactcenter.cases.sla import SlaRule, state
from contactcenter.clock import SYSTEM, FixedClock, ShiftedClock
from contactcenter.events import CallEnded, CallRecord
from contactcenter.ivr.services import is_open
from contactcenter.supervisor.reports import DateRange, parse_range
from contactcenter.supervisor.stats import QueueConfig, QueueStats

PACKAGE = Path(__file__).resolve().parents[2] / "contactcenter"
NY = ZoneInfo("America/New_York")
PANAMA = ZoneInfo("America/Panama")

# Where reading the machine's clock is the point: the clock itself, and the Asterisk stand-ins,
# which keep Asterisk's clock (a real Asterisk stamps events with its own time, not ours).
ALLOWED = {
    "clock.py",
    "telephony/replay.py",
}
ALLOWED_DIRS = ("telephony/simulator/",)
# datetime.now / utcnow / today, date.today, time.time / time_ns, also as default arguments
FORBIDDEN = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
    ("date", "today"), ("time", "time"), ("time", "time_ns"),
}


def wall_clock_reads(source: str) -> list[int]:
    """Lines of `source` that read the wall clock directly (attribute access or import)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else (
                base.attr if isinstance(base, ast.Attribute) else None)
            if (name, node.attr) in FORBIDDEN:
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            if any(alias.name in ("time", "time_ns") for alias in node.names):
                lines.append(node.lineno)
    return lines


def test_the_checker_finds_every_spelling() -> None:
    source = (
        "import time, datetime as dt\nfrom datetime import date, datetime\n"
        "a = datetime.now()\nb = dt.datetime.utcnow()\nc = date.today()\n"
        "def f(clock=time.time): ...\nfrom time import time\nok = time.monotonic()\n"
    )
    assert sorted(wall_clock_reads(source)) == [3, 4, 5, 6, 7]


def test_business_time_comes_only_from_the_clock() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in ALLOWED or rel.startswith(ALLOWED_DIRS):
            continue
        offenders += [f"{rel}:{n}" for n in wall_clock_reads(path.read_text(encoding="utf-8"))]
    assert not offenders, (
        "read time from the application's clock (contactcenter/clock.py, app[CLOCK]) instead "
        f"of the wall clock; time.monotonic() is fine for timeouts: {offenders}")


# --- the clocks -----------------------------------------------------------------------------


def test_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock(datetime(2026, 12, 31, 23, 59, tzinfo=NY))
    assert clock.now() == datetime(2027, 1, 1, 4, 59, tzinfo=UTC)
    assert clock.now().tzinfo == UTC
    assert clock.today(NY) == date(2026, 12, 31)
    assert clock.today(UTC) == date(2027, 1, 1)
    clock.advance(90)
    assert clock.today(NY) == date(2027, 1, 1)
    assert clock.timestamp() == clock.now().timestamp()
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 1, 1))


def test_shifted_clock_moves_with_real_time_from_its_start() -> None:
    start = datetime(2028, 2, 29, 12, tzinfo=UTC)
    clock = ShiftedClock(start)
    first = clock.now()
    time.sleep(0.01)
    second = clock.now()
    assert start <= first < second < start + timedelta(seconds=60)


def test_system_clock_is_aware_utc() -> None:
    assert SYSTEM.now().tzinfo == UTC
    assert abs(SYSTEM.timestamp() - SYSTEM.now().timestamp()) < 5


# --- the wallboard's "today" at awkward instants ----------------------------------------------


def _call(lid: str, start: datetime) -> CallEnded:
    return CallEnded(CallRecord(
        server="default", linkedid=lid, caller_number="5550100", caller_name=None,
        started_at=start, ended_at=start + timedelta(seconds=25), outcome="answered",
        queue="sanitation", wait_seconds=3.0, talk_seconds=20.0, agent="Ana",
    ))


def _offered_today(stats: QueueStats, now: datetime) -> int:
    (q,) = [q for q in stats.snapshot(now)["queues"] if q["name"] == "sanitation"]
    return int(q["today"]["offered"])


@pytest.mark.parametrize(("zone", "last_minute"), [
    (NY, datetime(2026, 11, 30, 23, 59, 30)),  # the last minute of a month
    (NY, datetime(2026, 12, 31, 23, 59, 30)),  # the last minute of a year
    (NY, datetime(2028, 2, 29, 23, 59, 30)),  # the end of a leap day
    (PANAMA, datetime(2026, 12, 31, 23, 59, 30)),
    (NY, datetime(2026, 3, 8, 23, 59, 30)),  # the day clocks sprang forward (23 hours)
    (NY, datetime(2026, 11, 1, 23, 59, 30)),  # the day clocks fell back (25 hours)
])
def test_today_ends_at_local_midnight(zone: ZoneInfo, last_minute: datetime) -> None:
    stats = QueueStats([QueueConfig("sanitation")], tz=zone)
    end = last_minute.replace(tzinfo=zone)
    day_start = datetime(end.year, end.month, end.day, tzinfo=zone)
    clock = FixedClock(day_start + timedelta(minutes=1))
    stats.apply(_call("first", clock.now()))  # the day's first minute
    clock.set(end)
    stats.apply(_call("last", clock.now()))
    assert _offered_today(stats, clock.now()) == 2
    assert stats.snapshot(clock.now())["day"] == end.date().isoformat()
    clock.advance(60)  # 00:00:30 of the next local day
    assert _offered_today(stats, clock.now()) == 0
    assert stats.snapshot(clock.now())["day"] == (end.date() + timedelta(days=1)).isoformat()


def test_report_days_have_their_true_length_across_dst() -> None:
    def hours(day: date, tz: ZoneInfo) -> float:
        lo, hi = DateRange(day, day).bounds(tz)
        # in UTC: Python subtracts two datetimes of one zone as wall times
        return (hi.astimezone(UTC) - lo.astimezone(UTC)).total_seconds() / 3600

    assert hours(date(2026, 3, 8), NY) == 23
    assert hours(date(2026, 11, 1), NY) == 25
    assert hours(date(2026, 3, 8), PANAMA) == hours(date(2026, 11, 1), PANAMA) == 24
    assert hours(date(2028, 2, 29), NY) == 24


def test_default_report_range_is_the_last_seven_days_up_to_the_clocks_today() -> None:
    clock = FixedClock(datetime(2028, 3, 1, 0, 30, tzinfo=NY))  # just after a leap day
    rng = parse_range({}, clock.today(NY))
    assert (rng.first, rng.last) == (date(2028, 2, 24), date(2028, 3, 1))
    assert date(2028, 2, 29) in rng.days()
    # the same instant is still Feb 29 in Panama's time (UTC-5 all year, NY is UTC-5 in winter)
    assert clock.today(PANAMA) == date(2028, 3, 1)
    new_year = FixedClock(datetime(2027, 1, 1, 4, 59, tzinfo=UTC))  # 23:59 on Dec 31 in NY
    assert parse_range({}, new_year.today(NY)).last == date(2026, 12, 31)
    assert parse_range({}, new_year.today(UTC)).last == date(2027, 1, 1)


# --- IVR office hours and the announcement window -----------------------------------------------


HOURS = {"mon": ["08:00", "17:00"], "tue": ["08:00", "17:00"]}


@pytest.mark.parametrize(("at", "zone", "open_"), [
    # 12:30 UTC is 08:30 in New York in summer time (open), 07:30 in winter (closed)
    (datetime(2026, 3, 9, 12, 30, tzinfo=UTC), "America/New_York", True),  # Monday after spring
    (datetime(2026, 11, 2, 12, 30, tzinfo=UTC), "America/New_York", False),  # Monday after fall
    # Panama keeps UTC-5 all year: 07:30 on both Mondays
    (datetime(2026, 3, 9, 12, 30, tzinfo=UTC), "America/Panama", False),
    (datetime(2026, 11, 2, 13, 30, tzinfo=UTC), "America/Panama", True),
    # 16:59 local on the last day of a month is open; 17:00 is closed
    (datetime(2026, 11, 30, 16, 59, tzinfo=NY), "America/New_York", True),
    (datetime(2026, 11, 30, 17, 0, tzinfo=NY), "America/New_York", False),
    # Feb 29 2028 is a Tuesday
    (datetime(2028, 2, 29, 9, 0, tzinfo=NY), "America/New_York", True),
])
def test_office_hours_follow_the_queues_local_time(at: datetime, zone: str, open_: bool) -> None:
    assert is_open(HOURS, [], zone, at) is open_


def test_a_holiday_is_a_local_date() -> None:
    # 03:00 UTC on Jan 1 is still Dec 31 in New York: the Jan 1 holiday has not started
    at = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)
    hours = {d: ["00:00", "23:59"] for d in ("thu", "fri")}
    assert is_open(hours, ["2027-01-01"], "America/New_York", at) is True
    assert is_open(hours, ["2027-01-01"], "UTC", at) is False


# --- SLA due dates, Open311 windows, retention -------------------------------------------------


def test_sla_due_counts_elapsed_hours_across_dst_and_leap_day() -> None:
    # calendar hours (elapsed time): 48 h from Saturday 12:00 EST is Monday 13:00 EDT
    opened = datetime(2026, 3, 7, 12, 0, tzinfo=NY)
    due = SlaRule(48).due(opened.astimezone(UTC))
    assert due.astimezone(NY) == datetime(2026, 3, 9, 13, 0, tzinfo=NY)
    leap = SlaRule(24).due(datetime(2028, 2, 28, 12, tzinfo=UTC))
    assert leap == datetime(2028, 2, 29, 12, tzinfo=UTC)
    clock = FixedClock(due - timedelta(seconds=1))
    assert state("open", due, clock.now(), SlaRule(48)) == "at_risk"
    clock.advance(1)
    assert state("open", due, clock.now(), SlaRule(48)) == "overdue"


def test_open311_default_window_ends_at_the_clocks_now() -> None:
    clock = FixedClock(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    query = open311.parse_request_query({}, clock.now())
    assert query.end == clock.now()
    assert query.start == clock.now() - timedelta(days=90)
