"""SLA clocks through the case store (SQLite, and PostgreSQL under `make test`): a business-hours
service of an agency's calendar, waiting on the citizen and resuming, sla_watch's one definition
of at risk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter.agency.models import Agency
from contactcenter.bus import LocalBus
from contactcenter.cases.models import CaseSlaPause
from contactcenter.cases.store import CaseStore, IllegalTransition, InvalidCaseData, NewCase
from contactcenter.events import CaseChanged, Event
from contactcenter.queues.models import ServiceType
from contactcenter.seed import seed_reference

pytestmark = pytest.mark.store
NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def business(
    sessions: async_sessionmaker[AsyncSession],
) -> async_sessionmaker[AsyncSession]:
    """Potholes: 9 business hours of DPW (Mon-Fri 08-17, Thanksgiving off) in New York."""
    await seed_reference(sessions)
    async with sessions() as s, s.begin():
        await s.execute(update(ServiceType).where(ServiceType.code == "pothole")
                        .values(sla_mode="business", sla_hours=9))
        await s.execute(update(Agency).where(Agency.code == "DPW").values(
            office_hours={d: ["08:00", "17:00"] for d in ("mon", "tue", "wed", "thu", "fri")},
            holidays=["2026-11-26"]))
    return sessions


async def test_a_business_hours_case_is_due_after_the_weekend_and_the_holiday(
    business: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(ny(2026, 11, 25, 15, 0))  # Wednesday before Thanksgiving
    store = CaseStore(business, None, clock=clock, timezone="America/New_York")
    case = await store.open_case(NewCase(service_code="pothole"), actor="op")
    # Wed 15-17 (2 h), Thursday off, Fri 08-15 (7 h)
    assert case.sla_due_at == ny(2026, 11, 27, 15, 0)
    # calendar-hour services are unchanged: 48 wall-clock hours
    other = await store.open_case(NewCase(service_code="missed-pickup"), actor="op")
    assert other.sla_due_at == clock.now + timedelta(hours=48)
    # Friday 13:30: 1.5 of 9 business hours left (< 20 %) -> at risk, in every view
    clock.now = ny(2026, 11, 27, 13, 30)
    view = await store.by_number(case.number)
    assert view is not None and view.sla(clock.now) == "at_risk"
    # Thanksgiving noon: the pothole still has 7 of its 9 business hours, the pickup 27 of 48
    clock.now = ny(2026, 11, 26, 12, 0)
    assert await store.sla_watch() == []
    # Friday 13:30: 1.5 h left of each: both at risk (the same rule, in each one's clock)
    clock.now = ny(2026, 11, 27, 13, 30)
    watch = await store.sla_watch()
    assert [(v.number, st) for v, st in watch] == [(case.number, "at_risk"),
                                                   (other.number, "at_risk")]
    assert [v.number for v, _ in await store.sla_watch(agency="SAN")] == [other.number]
    clock.now = ny(2026, 11, 27, 15, 0)
    assert [st for _, st in await store.sla_watch(agency="DPW")] == ["overdue"]


async def test_waiting_on_the_citizen_pauses_the_clock_by_business_time(
    business: async_sessionmaker[AsyncSession],
) -> None:
    bus = LocalBus()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe(record, types=(CaseChanged,), name="test")
    clock = Clock(ny(2026, 11, 23, 8, 0))  # Monday 08:00
    store = CaseStore(business, bus, clock=clock, timezone="America/New_York")
    case = await store.open_case(NewCase(service_code="pothole", language="es"), actor="op")
    assert case.sla_due_at == ny(2026, 11, 23, 17, 0) and case.language == "es"
    case = await store.acknowledge(case.number, actor="crew")

    clock.now = ny(2026, 11, 23, 10, 0)
    with pytest.raises(InvalidCaseData):
        await store.wait_on_citizen(case.number, actor="crew", note="  ")
    case = await store.wait_on_citizen(case.number, actor="crew",
                                       note="Which side of the street is it on?")
    assert case.status == "waiting_citizen" and case.paused_since == clock.now
    assert case.public_notes[-1].body == "Which side of the street is it on?"
    with pytest.raises(IllegalTransition):
        await store.wait_on_citizen(case.number, actor="crew", note="again")
    # while it waits, its due time passing does not make it overdue, nor at risk
    clock.now = ny(2026, 11, 24, 12, 0)  # Tuesday noon: 7 + 4 = 11 business hours paused
    view = await store.by_number(case.number)
    assert view is not None and view.sla(clock.now) == "paused"
    assert await store.sla_watch() == []

    case = await store.resume(case.number, actor="crew")
    assert case.status == "acknowledged" and case.paused_since is None
    assert case.sla_due_at == ny(2026, 11, 25, 10, 0)  # Monday 17:00 + 11 business hours
    with pytest.raises(IllegalTransition, match="not waiting"):
        await store.resume(case.number, actor="crew")

    # a second wait, closed while waiting: the pause ends at the close
    clock.now = ny(2026, 11, 24, 13, 0)
    await store.wait_on_citizen(case.number, actor="crew", note="Photo please")
    clock.now = ny(2026, 11, 24, 15, 0)
    case = await store.close(case.number, actor="crew", reason="no answer; fixed anyway")
    assert case.status == "closed" and case.sla_due_at == ny(2026, 11, 25, 12, 0)
    async with business() as s:
        pauses = (await s.execute(select(CaseSlaPause).order_by(CaseSlaPause.id))).scalars().all()
    assert [(p.started_at, p.ended_at, p.resume_status) for p in pauses] == [
        (ny(2026, 11, 23, 10, 0), ny(2026, 11, 24, 12, 0), "acknowledged"),
        (ny(2026, 11, 24, 13, 0), ny(2026, 11, 24, 15, 0), "acknowledged"),
    ]
    await bus.drain()
    events = [e for e in seen if isinstance(e, CaseChanged)]
    assert [(e.change, e.public) for e in events] == [
        ("created", False), ("acknowledged", True), ("waiting", True), ("resumed", False),
        ("waiting", True), ("closed", True)]
    assert events[2].note == "Which side of the street is it on?" and events[2].agency == "DPW"
    await bus.close()


async def test_a_broken_agency_calendar_falls_back_to_calendar_hours(
    business: async_sessionmaker[AsyncSession],
) -> None:
    async with business() as s, s.begin():
        await s.execute(update(Agency).where(Agency.code == "DPW")
                        .values(office_hours={"mon": ["17:00", "08:00"]}))
    clock = Clock(ny(2026, 11, 21, 9, 0))
    store = CaseStore(business, None, clock=clock, timezone="America/New_York")
    case = await store.open_case(NewCase(service_code="pothole"), actor="op")
    assert case.sla_due_at == clock.now + timedelta(hours=9)


async def test_a_case_already_late_when_it_began_waiting_stays_overdue(
    business: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock(datetime(2026, 6, 1, 9, 0, tzinfo=UTC))
    store = CaseStore(business, None, clock=clock)
    late = await store.open_case(NewCase(service_code="missed-pickup"), actor="op")  # 48 h
    early = await store.open_case(NewCase(service_code="bulk-item"), actor="op")  # 120 h
    clock.now += timedelta(hours=49)
    await store.wait_on_citizen(late.number, actor="crew", note="Are the bins out?")
    await store.wait_on_citizen(early.number, actor="crew", note="How many items?")
    clock.now += timedelta(days=30)
    assert [(v.number, st) for v, st in await store.sla_watch()] == [(late.number, "overdue")]
    assert await store.sla_counts() == {"at_risk": 0, "overdue": 1}
    assert await store.sla_counts(agency="SAN") == {"at_risk": 0, "overdue": 1}
    view = await store.resume(early.number, actor="crew")
    # 71 h were left when it paused; the 30 days of waiting are added back
    assert early.sla_due_at is not None
    assert view.sla_due_at == early.sla_due_at + timedelta(days=30)
    assert view.sla(clock.now) == "ok"
