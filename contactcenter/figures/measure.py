"""The citizen's clock and the agencies' figures, as pure functions (no I/O, no clock).

Definitions (the README's "Public figures" section repeats them):
- **first contact**: the start of the earliest call linked to the case, or the case's creation
  when no call is linked (web, e-mail, Open311 receipt).
- **contact to resolution**: first contact → closed.
- **on time**: closed by its SLA due time. A case counts in the on-time share once it is decided:
  closed, or open past its due time (late whatever happens next). An open case not yet due is
  neither on time nor late.
- **chase call**: a call linked to a case that already existed when the call started (the
  citizen calling again about it): failure demand, charged to the agency that owns the case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo

from contactcenter.cases.timeline import (
    TimelineStep,
    contact_timeline,
    first_contact,
    fmt_duration,
    median,
    percentile,
)

__all__ = ["AgencyMonth", "TimelineStep", "add_months", "contact_timeline", "first_contact",
           "first_of_month", "fmt_duration", "median", "month_bounds", "months_ending",
           "percentile", "rate"]


def first_of_month(d: date) -> date:
    return d.replace(day=1)


def add_months(first: date, n: int) -> date:
    index = first.year * 12 + (first.month - 1) + n
    return date(index // 12, index % 12 + 1, 1)


def months_ending(today: date, count: int) -> list[date]:
    """The first days of the `count` months up to and including today's, oldest first."""
    this = first_of_month(today)
    return [add_months(this, -i) for i in range(count - 1, -1, -1)]


def month_bounds(first: date, tz: tzinfo) -> tuple[datetime, datetime]:
    """[local midnight of the month's first day, the next month's) as aware datetimes."""
    nxt = add_months(first, 1)
    return (datetime(first.year, first.month, 1, tzinfo=tz),
            datetime(nxt.year, nxt.month, 1, tzinfo=tz))


@dataclass(slots=True)
class AgencyMonth:
    """One agency's cases received in one month (and the chase calls made in that month)."""

    agency: str  # code, or "" for cases with no agency
    agency_name: str
    month: date
    received: int = 0
    closed: int = 0
    closed_on_time: int = 0
    decided: int = 0  # closed with a due time, or open past it
    resolution_seconds: list[float] = field(default_factory=list)  # contact → closed
    chase_calls: int = 0
    chase_seconds: float = 0.0  # operators' handle time of those calls
    # (median, p90) of resolution_seconds once `settle` has run (the list is then emptied)
    settled: tuple[float | None, float | None] | None = None

    def add_case(self, *, status: str, contact: datetime, closed_at: datetime | None,
                 due: datetime | None, now: datetime) -> None:
        self.received += 1
        if status == "closed" and closed_at is not None:
            self.closed += 1
            self.resolution_seconds.append(max(0.0, (closed_at - contact).total_seconds()))
            if due is not None:
                self.decided += 1
                if closed_at <= due:
                    self.closed_on_time += 1
        elif due is not None and now > due:
            self.decided += 1

    @property
    def on_time_rate(self) -> float | None:
        """closed by the due time / decided cases (closed, or open past due)."""
        return self.closed_on_time / self.decided if self.decided else None

    @property
    def median_resolution(self) -> float | None:
        if self.settled is not None:
            return self.settled[0]
        return median(self.resolution_seconds)

    @property
    def p90_resolution(self) -> float | None:
        if self.settled is not None:
            return self.settled[1]
        return percentile(self.resolution_seconds, 90)

    def settle(self) -> None:
        """Compute the median and p90 now and let the durations go: each reading sorted them
        again (hundreds of ms per page at a million calls, on the serving loop), and the
        figures travel from the report worker without them."""
        self.settled = (median(self.resolution_seconds), percentile(self.resolution_seconds, 90))
        self.resolution_seconds = []

    @property
    def chase_per_100(self) -> float | None:
        return 100.0 * self.chase_calls / self.received if self.received else None


def rate(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f} %"


DAY = timedelta(days=1)
