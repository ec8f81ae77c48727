"""SLA clocks a city can defend (pure: no I/O, no clock of its own).

A service type's SLA is `hours` of either clock:

- `calendar`: wall-clock hours, every hour counts (nights, weekends, holidays);
- `business`: the owning agency's working hours (a weekly timetable plus holidays, read in the
  center's time zone `CC_TIMEZONE`); an agency with no timetable works Monday to Friday 08:00 to
  17:00. Hours are real elapsed time, so a DST change never adds or drops an hour of work.

The due time is the opening plus `hours` of the service's clock. While a case waits on the
citizen its clock is stopped: on resume the due time moves out by the paused time measured in
the same clock (a pause over a weekend moves a business-hours due time by nothing).

One definition of "at risk", used by the console, the agency queue, the reports, the digest and
the store's `sla_watch` (`state`): an open case is *overdue* once its due time has passed, *at
risk* while less than `AT_RISK_FRACTION` of its allowance is left, measured in the service's own
clock, and *paused* while it waits on the citizen (an overdue case stays overdue).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MODES = ("calendar", "business")
AT_RISK_FRACTION = 0.2
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS: dict[str, list[str]] = {d: ["08:00", "17:00"] for d in DAYS[:5]}
# no due time further than this many days of calendar from its start: a calendar with (almost)
# no working time is a configuration error, not an endless loop
MAX_SEARCH_DAYS = 3 * 366

OPEN = "ok"
AT_RISK = "at_risk"
OVERDUE = "overdue"
PAUSED = "paused"
CLOSED = "closed"
NONE = "none"
STATES = (OPEN, AT_RISK, OVERDUE, PAUSED, CLOSED, NONE)


class SlaConfigError(ValueError):
    """A timetable, holiday list, zone or mode that cannot be used (the message says which)."""


def _minutes(hhmm: str) -> int:
    hours, _, minutes = str(hhmm).strip().partition(":")
    if not hours.isdigit() or (minutes and not minutes.isdigit()):
        raise SlaConfigError(f"{hhmm!r} is not a time of day (HH:MM)")
    value = int(hours) * 60 + int(minutes or 0)
    if not 0 <= value <= 24 * 60 or int(minutes or 0) >= 60:
        raise SlaConfigError(f"{hhmm!r} is not a time of day (HH:MM)")
    return value


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Working spans per weekday (minutes from local midnight) and holidays, in one zone."""

    week: tuple[tuple[tuple[int, int], ...], ...]  # index 0 = Monday
    holidays: frozenset[date]
    zone: ZoneInfo

    @classmethod
    def build(
        cls, office_hours: Mapping[str, Any] | None, holidays: Iterable[Any] | None,
        timezone: str,
    ) -> BusinessCalendar:
        """From the stored form: {"mon": ["08:00", "17:00"], ...} (or a list of pairs per day;
        a day not listed is closed; nothing at all: DEFAULT_HOURS) and ["2026-12-25", ...]."""
        try:
            zone = ZoneInfo(timezone or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise SlaConfigError(f"unknown time zone {timezone!r}") from None
        hours = office_hours or DEFAULT_HOURS
        unknown = set(hours) - set(DAYS)
        if unknown:
            raise SlaConfigError(f"unknown weekday {sorted(unknown)[0]!r} (use {', '.join(DAYS)})")
        week: list[tuple[tuple[int, int], ...]] = []
        for day in DAYS:
            raw = hours.get(day) or []
            pairs = [raw] if raw and isinstance(raw[0], str) else list(raw)
            spans: list[tuple[int, int]] = []
            for pair in pairs:
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise SlaConfigError(f"{day}: {pair!r} is not an [opening, closing] pair")
                start, end = _minutes(pair[0]), _minutes(pair[1])
                if start >= end:
                    raise SlaConfigError(f"{day}: closing {pair[1]} is not after opening {pair[0]}")
                spans.append((start, end))
            week.append(tuple(sorted(spans)))
        if not any(week):
            raise SlaConfigError("the timetable has no working hours at all")
        days: set[date] = set()
        for value in holidays or ():
            try:
                days.add(value if isinstance(value, date) else date.fromisoformat(str(value)))
            except ValueError:
                raise SlaConfigError(f"holiday {value!r} is not a date (YYYY-MM-DD)") from None
        return cls(tuple(week), frozenset(days), zone)

    def _local(self, day: date, minute: int) -> datetime:
        # 24:00 is the next midnight; wall times are read in the zone, then made UTC, so spans
        # are real elapsed time across a DST change
        at = datetime.combine(day, time(0)) + timedelta(minutes=minute)
        return at.replace(tzinfo=self.zone).astimezone(UTC)

    def spans(self, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
        """Working spans (UTC) of the local days first..last, in order."""
        day = first
        while day <= last:
            if day not in self.holidays:
                for start, end in self.week[day.weekday()]:
                    yield self._local(day, start), self._local(day, end)
            day += timedelta(days=1)

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working time in [start, end); negative when end is before start."""
        if end < start:
            return -self.working_seconds(end, start)
        first = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        total = 0.0
        for a, b in self.spans(first, last):
            lo, hi = max(a, start), min(b, end)
            if hi > lo:
                total += (hi - lo).total_seconds()
        return total

    def add_working(self, start: datetime, seconds: float) -> datetime:
        """The instant `seconds` of working time after `start` (a span's end when it runs out
        exactly there: a 9-hour SLA opened at 08:00 is due 17:00 the same day)."""
        if seconds <= 0:
            return start
        left = seconds
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(MAX_SEARCH_DAYS):
            for a, b in self.spans(day, day):
                lo = max(a, start)
                if b <= lo:
                    continue
                span = (b - lo).total_seconds()
                if left <= span:
                    return lo + timedelta(seconds=left)
                left -= span
            day += timedelta(days=1)
        raise SlaConfigError(f"no {seconds / 3600:g} working hours within {MAX_SEARCH_DAYS} days")


@dataclass(frozen=True, slots=True)
class SlaRule:
    """`hours` of the service's clock; `calendar` is the agency's, used in business mode."""

    hours: float
    mode: str = "calendar"
    calendar: BusinessCalendar | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise SlaConfigError(f"unknown SLA mode {self.mode!r} (one of {', '.join(MODES)})")
        if self.mode == "business" and self.calendar is None:
            raise SlaConfigError("business hours need a calendar")

    @property
    def allowance(self) -> float:
        """The SLA in seconds of the service's clock."""
        return self.hours * 3600.0

    def between(self, start: datetime, end: datetime) -> float:
        """Seconds of this clock from start to end (negative when end is before start)."""
        if self.mode == "business":
            assert self.calendar is not None
            return self.calendar.working_seconds(start, end)
        return (end - start).total_seconds()

    def add(self, start: datetime, seconds: float) -> datetime:
        if self.mode == "business":
            assert self.calendar is not None
            return self.calendar.add_working(start, seconds)
        return start + timedelta(seconds=seconds)

    def due(self, opened: datetime) -> datetime:
        return self.add(opened, self.allowance)

    def resume(self, due: datetime, paused_at: datetime, resumed_at: datetime) -> datetime:
        """The due time after a pause: moved out by the paused time of this clock."""
        paused = self.between(paused_at, resumed_at)
        return self.add(due, paused) if paused > 0 else due


def rule_for(
    hours: float, mode: str | None, office_hours: Mapping[str, Any] | None,
    holidays: Iterable[Any] | None, timezone: str,
) -> SlaRule:
    mode = mode or "calendar"
    calendar = BusinessCalendar.build(office_hours, holidays, timezone) \
        if mode == "business" else None
    return SlaRule(float(hours), mode, calendar)


def state(
    status: str, due: datetime | None, now: datetime, rule: SlaRule | None,
    paused_since: datetime | None = None,
) -> str:
    """The one definition: closed, none (no due time), overdue, paused, at_risk or ok.

    Waiting on the citizen (`paused_since`), the clock stands still at the pause's start: such a
    case is overdue only if it already was then, and otherwise "paused" (not at risk: it is not
    the agency's move)."""
    if status == "closed":
        return CLOSED
    if due is None:
        return NONE
    at = paused_since if paused_since is not None else now
    if at >= due:
        return OVERDUE
    if paused_since is not None:
        return PAUSED
    if rule is None:
        return OPEN
    return AT_RISK if due < risk_horizon(rule, at) else OPEN


def risk_horizon(rule: SlaRule, now: datetime) -> datetime:
    """Open cases of this rule due before this instant are at risk: the point where
    AT_RISK_FRACTION of the allowance (in the rule's clock) is used up from `now`. The clock
    time from now to a due time only grows with it, so "less than the fraction left" is exactly
    "due before the horizon": one instant per service type lets SQL count at-risk cases."""
    return rule.add(now, AT_RISK_FRACTION * rule.allowance)


def report_bucket(status: str, due: datetime | None, closed_at: datetime | None,
                  now: datetime, rule: SlaRule | None,
                  paused_since: datetime | None = None) -> str:
    """The compliance report's bucket: on_time (closed by its due time), late (closed after
    it), overdue (open, past due), at_risk and open_not_due (open, not yet due: never "on
    time"), no_sla (no due time)."""
    if due is None:
        return "no_sla"
    if status == "closed":
        return "on_time" if closed_at is not None and closed_at <= due else "late"
    st = state(status, due, now, rule, paused_since)
    if st == OVERDUE:
        return "overdue"
    if st == AT_RISK:
        return "at_risk"
    return "open_not_due"
