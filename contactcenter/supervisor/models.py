"""The summaries the reports read: the interval summary (supervisor/intervals.py writes it) and
the IVR containment summary (supervisor/containment.py)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..schema import Base


class CallInterval(Base):
    """The interval summary (supervisor/intervals.py): additive sums of the report figures per
    15 minutes (UTC start), queue and service, kept by the case writer in the transaction that
    writes the calls, and rebuilt from `calls`/`call_legs` by `contactcenter reports rebuild`.
    `queue` "" holds the calls that reached no queue (IVR-only); `service` "" none."""

    __tablename__ = "call_intervals"
    bucket: Mapped[datetime] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(80), primary_key=True)
    service: Mapped[str] = mapped_column(String(80), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)  # calls whose first queue is this
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    short_abandoned: Mapped[int] = mapped_column(Integer, default=0)
    timed_out: Mapped[int] = mapped_column(Integer, default=0)
    other: Mapped[int] = mapped_column(Integer, default=0)
    wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_n: Mapped[int] = mapped_column(Integer, default=0)
    handle_sum: Mapped[float] = mapped_column(Float, default=0.0)
    handle_n: Mapped[int] = mapped_column(Integer, default=0)
    longest_wait: Mapped[float] = mapped_column(Float, default=0.0)


class _Sums:
    """The interval summary's additive sums (the same names), for its daily roll-ups."""

    calls: Mapped[int] = mapped_column(Integer, default=0)
    offered: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[int] = mapped_column(Integer, default=0)
    answered_in_sl: Mapped[int] = mapped_column(Integer, default=0)
    abandoned: Mapped[int] = mapped_column(Integer, default=0)
    short_abandoned: Mapped[int] = mapped_column(Integer, default=0)
    timed_out: Mapped[int] = mapped_column(Integer, default=0)
    other: Mapped[int] = mapped_column(Integer, default=0)
    wait_sum: Mapped[float] = mapped_column(Float, default=0.0)
    wait_n: Mapped[int] = mapped_column(Integer, default=0)
    handle_sum: Mapped[float] = mapped_column(Float, default=0.0)
    handle_n: Mapped[int] = mapped_column(Integer, default=0)
    longest_wait: Mapped[float] = mapped_column(Float, default=0.0)


class CallDay(_Sums, Base):
    """The interval summary rolled up per day (the center's time zone), queue and service
    (supervisor/daily.py): the tables of a long report read a few thousand of these."""

    __tablename__ = "call_days"
    day: Mapped[date] = mapped_column(primary_key=True)
    queue: Mapped[str] = mapped_column(String(80), primary_key=True)
    service: Mapped[str] = mapped_column(String(80), primary_key=True)


class CallDayHour(_Sums, Base):
    """The interval summary rolled up per local day and hour, all queues and services together
    (supervisor/daily.py): the by-day and by-hour charts of a long report."""

    __tablename__ = "call_day_hours"
    day: Mapped[date] = mapped_column(primary_key=True)
    hour: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class IvrContainment(Base):
    """The IVR containment summary (supervisor/containment.py): calls per day (in the center's
    time zone), menu path and class (contained, abandoned, closed, transferred, queued), kept by
    the case writer with the calls and rebuilt by `contactcenter reports rebuild`."""

    __tablename__ = "ivr_containment"
    day: Mapped[date] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String(200), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)
