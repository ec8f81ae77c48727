"""The application's one clock: every "now" and "today" of business time is asked of it.

`create_app` puts one `Clock` under `keys.CLOCK` and every feature hands `clock.now` (or
`clock.timestamp`) to the code that needs the time: the wallboard's day, reports, IVR office hours
and announcements, SLA due dates, retention, Open311 windows, receipt stamps of AMI events. Tests
hand in a `FixedClock` or a `ShiftedClock` instead, so no test depends on the day it runs.

Timeouts, rate limits and durations measured inside one process use `time.monotonic()` (not
business time); the Asterisk stand-ins (`telephony/simulator/`, `telephony/replay.py`) keep
Asterisk's clock, not ours. `tests/unit/test_clock.py` enforces both rules over the package.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from datetime import UTC, date, datetime, timedelta, tzinfo


class Clock(ABC):
    """Where business time comes from; implementations differ only in `now`."""

    @abstractmethod
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""

    def timestamp(self) -> float:
        """The current instant as POSIX seconds (AMI-style float times)."""
        return self.now().timestamp()

    def today(self, tz: tzinfo) -> date:
        """The calendar day it is now in `tz` (the center's zone)."""
        return self.now().astimezone(tz).date()


class SystemClock(Clock):
    """The machine's wall clock: what `contactcenter serve` and `demo` run on."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()


class FixedClock(Clock):
    """Stands still at `at` until a test moves it (`set`, `advance`)."""

    def __init__(self, at: datetime) -> None:
        self.at = _aware(at)

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = _aware(at)

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


class ShiftedClock(Clock):
    """Real time passing, but starting at `start`: for tests that replay a capture of another
    day and also need time to move (timers, lags, wrap-up countdowns)."""

    def __init__(self, start: datetime) -> None:
        self.start = _aware(start)
        self._mono0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._mono0)


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("a clock needs a timezone-aware datetime")
    return at.astimezone(UTC)


SYSTEM = SystemClock()


def row_written_at() -> datetime:
    """Default of the `created_at`/`recorded_at` columns: when the machine wrote the row. This is
    bookkeeping, not business time; code that means business time passes its clock's value."""
    return SYSTEM.now()


__all__ = ["SYSTEM", "Clock", "FixedClock", "ShiftedClock", "SystemClock", "row_written_at"]
