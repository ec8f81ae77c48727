"""The IVR's store access on a real database, and the behaviours that need one: a publish
during a session, the database going down mid-session, office hours, self-service lookups."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contactcenter import db
from contactcenter.audit import AuditLog
from contactcenter.bus import LocalBus
from contactcenter.cases.models import Case, Citizen
from contactcenter.events import CaseChanged, Event
from contactcenter.ivr.menu import default_menu
from contactcenter.ivr.models import Announcement, MenuVersion
from contactcenter.ivr.services import IvrServices, is_open
from contactcenter.queues.models import Queue, ServiceType
from contactcenter.seed import seed_reference
from tests.agi_fake import Caller
from tests.conftest import until
from tests.ivr_support import CAPTURE_MENU, Recorder, activate, running_ivr

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # a Monday; 10:00 in New York


# --- office hours (pure) -----------------------------------------------------------------------

HOURS = {"mon": ["08:00", "17:00"], "sat": [["09:00", "12:00"], ["13:00", "15:00"]]}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (NOW, True),  # Monday 10:00 local
        (datetime(2026, 11, 23, 22, 30, tzinfo=UTC), False),  # Monday 17:30 local
        (datetime(2026, 11, 24, 15, 0, tzinfo=UTC), False),  # Tuesday: not listed, closed
        (datetime(2026, 11, 28, 15, 30, tzinfo=UTC), True),  # Saturday 10:30
        (datetime(2026, 11, 28, 17, 30, tzinfo=UTC), False),  # Saturday 12:30, lunch
        (datetime(2026, 11, 24, 2, 0, tzinfo=UTC), False),  # Monday 21:00 local (UTC Tuesday)
    ],
)
def test_office_hours_in_the_queue_timezone(at: datetime, expected: bool) -> None:
    assert is_open(HOURS, [], "America/New_York", at) is expected


def test_holidays_empty_hours_and_malformed_settings() -> None:
    assert is_open(HOURS, ["2026-11-23"], "America/New_York", NOW) is False
    assert is_open({}, [], "UTC", NOW) is True
    assert is_open({}, ["2026-11-23"], "UTC", NOW) is False
    assert is_open({"mon": ["8am", "5pm"]}, [], "UTC", NOW) is True  # a typo never closes
    assert is_open(HOURS, [], "Mars/Olympus", NOW) is True


# --- the store ---------------------------------------------------------------------------------

@pytest.mark.store
async def test_seed_makes_the_default_menu_active(seeded: async_sessionmaker[AsyncSession]) -> None:
    services = IvrServices(seeded)
    active = await services.active_menu()
    assert active is not None and active.version == 1
    assert active.menu.languages == ("en", "es")
    await seed_reference(seeded)  # idempotent: no second version
    async with seeded() as session:
        assert len((await session.execute(select(MenuVersion))).scalars().all()) == 1


@pytest.mark.store
async def test_menu_cache_notices_a_new_version(seeded: async_sessionmaker[AsyncSession]) -> None:
    clock = [100.0]
    services = IvrServices(seeded, monotonic=lambda: clock[0])
    first = await services.active_menu()
    clock[0] += 1
    assert await services.active_menu() is first  # checked again, same version: parsed once
    await activate(seeded, CAPTURE_MENU, version=2)
    clock[0] += 0.1  # within the freshness window (0.2 s): calls share the last check
    assert await services.active_menu() is first
    clock[0] += 0.15
    second = await services.active_menu()
    assert second is not None and second.version == 2 and second.menu.name == "capture"
    await activate(seeded, default_menu(), version=3)
    strict = IvrServices(seeded, menu_freshness=0)
    third = await strict.active_menu()
    assert third is not None and third.version == 3


@pytest.mark.store
async def test_publish_during_a_session(seeded: async_sessionmaker[AsyncSession]) -> None:
    """A caller in the menu when v2 is published finishes on v1; the next caller gets v2."""
    await activate(seeded, CAPTURE_MENU, version=2)
    v3 = copy.deepcopy(CAPTURE_MENU)
    v3["nodes"][0]["options"][0] = {"digit": "1", "action": "queue", "queue": "potholes",
                                    "service": "pothole"}
    clock = [100.0]
    services = IvrServices(seeded, monotonic=lambda: clock[0])
    recorder = Recorder()
    async with running_ivr(services, recorder) as server:
        second = Caller(inputs=["1"])

        async def publish_midway(index: int, cmd: str) -> None:
            if cmd.startswith("GET DATA hello-world"):
                await activate(seeded, v3, version=3)
                clock[0] += 0.3  # the next call comes after the freshness window
                await second.call(server.port)

        first = Caller(inputs=["1"], on_command=publish_midway)
        await first.call(server.port)
        await until(lambda: len(recorder.results) == 2)
    assert second.variables["QUEUE"] == "potholes"
    assert first.variables["QUEUE"] == "sanitation"
    by_version = {r.menu_version: r.queue for r in recorder.results}
    assert by_version == {2: "sanitation", 3: "potholes"}


@pytest.mark.store
async def test_database_down_mid_session(seeded: async_sessionmaker[AsyncSession]) -> None:
    broken = db.make_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none",
                            connect_args={"timeout": 2})
    state = {"down": False}
    broken_sessions = db.make_sessionmaker(broken)

    def sessions() -> Any:
        return (broken_sessions if state["down"] else seeded)()

    services = IvrServices(sessions)  # type: ignore[arg-type]
    recorder = Recorder()

    def cut(index: int, cmd: str) -> None:
        if cmd.startswith("GET DATA 311/en/main-menu"):
            state["down"] = True

    caller = Caller(inputs=["1", "2"], on_command=cut)
    try:
        async with running_ivr(services, recorder) as server:
            await caller.call(server.port)
            await until(lambda: recorder.results)
    finally:
        await broken.dispose()
    # Queue settings come from the QueueDirectory, never from the store mid-call: with the
    # store gone the caller still reaches the queue they chose (a queue never read counts as
    # open), not the general queue. Steps that need the store fall back (test_ivr_engine).
    assert caller.variables["QUEUE"] == "potholes"
    assert recorder.results[0].outcome == "queued"


@pytest.mark.store
async def test_announcement_of_the_day_window(seeded: async_sessionmaker[AsyncSession]) -> None:
    async with seeded() as session, session.begin():
        session.add_all([
            Announcement(name="old", prompts={"en": "old"}, starts_at=NOW - timedelta(days=2),
                         ends_at=NOW - timedelta(days=1)),
            Announcement(name="off", prompts={"en": "off"}, enabled=False,
                         starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=1)),
            Announcement(name="storm", prompts={"en": "311/en/storm", "es": "311/es/storm"},
                         starts_at=NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=3)),
        ])
    services = IvrServices(seeded, cache_seconds=0)
    assert await services.announcement(NOW) == {"en": "311/en/storm", "es": "311/es/storm"}
    assert await services.announcement(NOW + timedelta(hours=4)) is None
    assert await services.announcement(NOW - timedelta(hours=3)) is None


@pytest.mark.store
async def test_queue_open_reads_hours_from_the_queues_table(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    async with seeded() as session, session.begin():
        await session.execute(update(Queue).where(Queue.name == "sanitation").values(
            office_hours=HOURS, timezone="America/New_York", holidays=["2026-12-25"]))
    services = IvrServices(seeded, cache_seconds=0)
    assert await services.queue_open("sanitation", NOW) is True
    assert await services.queue_open("sanitation", NOW + timedelta(hours=8)) is False
    assert await services.queue_open("sanitation", datetime(2026, 12, 25, 15, tzinfo=UTC)) is False
    assert await services.queue_open("potholes", NOW + timedelta(hours=8)) is True


async def _case(sessions: async_sessionmaker[AsyncSession], number: str, status: str,
                phone: str | None, created: datetime) -> None:
    async with sessions() as session, session.begin():
        stype = (await session.execute(
            select(ServiceType).where(ServiceType.code == "pothole"))).scalar_one()
        citizen = None
        if phone:
            citizen = (await session.execute(
                select(Citizen).where(Citizen.phone == phone))).scalar_one_or_none()
            if citizen is None:
                citizen = Citizen(phone=phone)
                session.add(citizen)
                await session.flush()
        session.add(Case(number=number, token=number, service_type_id=stype.id, status=status,
                         citizen_id=citizen.id if citizen else None, created_at=created,
                         sla_due_at=created + timedelta(hours=72)))


@pytest.mark.store
async def test_case_lookup_and_open_cases_by_caller(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    await _case(seeded, "311-2026-000423", "in_progress", "7875550101", NOW - timedelta(days=2))
    await _case(seeded, "311-2026-000424", "closed", "7875550101", NOW - timedelta(days=1))
    await _case(seeded, "311-2026-000425", "open", "7875550101", NOW)
    await _case(seeded, "311-2026-000500", "open", "7875550999", NOW)
    services = IvrServices(seeded)
    found = await services.find_case("000423", "7875550101")
    assert found is not None and found.number == "311-2026-000423"
    assert found.status == "in_progress" and found.service == "pothole"
    assert found.expected == (NOW + timedelta(days=1)).date()
    full = await services.find_case("3112026000423", None)
    assert full is not None and full.number == "311-2026-000423"
    assert (await services.find_case("2026000500", "7875550101")).number == "311-2026-000500"
    assert await services.find_case("999999", "7875550101") is None
    assert await services.find_case("", "7875550101") is None
    mine = await services.open_cases("+1 (787) 555-0101")
    assert [c.number for c in mine] == ["311-2026-000425", "311-2026-000423"]
    assert await services.open_cases(None) == []


@pytest.mark.store
async def test_a_short_number_never_reads_another_citizens_case(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    # Two citizens' cases end in 423: the newest is the neighbour's. Keying "423" finds only
    # the caller's own open case; a stranger (or a withheld number) is told "not found".
    await _case(seeded, "311-2026-000423", "open", "7875550101", NOW - timedelta(days=3))
    await _case(seeded, "311-2026-001423", "open", "7875550999", NOW)
    await _case(seeded, "311-2026-002423", "closed", "7875550101", NOW)
    services = IvrServices(seeded)
    mine = await services.find_case("423", "7875550101")
    assert mine is not None and mine.number == "311-2026-000423"
    neighbour = await services.find_case("423", "7875550999")
    assert neighbour is not None and neighbour.number == "311-2026-001423"
    assert await services.find_case("423", "7875550123") is None
    assert await services.find_case("423", None) is None
    assert await services.find_case("2423", "7875550101") is None  # closed: not by suffix
    closed = await services.find_case("311-2026-002423", "7875550123")  # the whole number
    assert closed is not None and closed.status == "closed"


@pytest.mark.store
async def test_leave_request_creates_a_phone_case(
    seeded: async_sessionmaker[AsyncSession],
) -> None:
    bus = LocalBus()
    changes: list[Event] = []

    async def on_change(event: Event) -> None:
        changes.append(event)

    bus.subscribe(on_change, types=(CaseChanged,))
    services = IvrServices(seeded, bus=bus)
    first = await services.leave_request(caller_number="7875550101", caller_name="Maria Lopez",
                                         queue="sanitation", service="missed-pickup", at=NOW,
                                         language="es")
    second = await services.leave_request(caller_number=None, caller_name=None,
                                          queue="potholes", service=None, at=NOW)
    assert first.number == "311-2026-000001" and second.number == "311-2026-000002"
    assert first.service == "missed-pickup" and second.service == "pothole"
    async with seeded() as session:
        case = (await session.execute(
            select(Case).where(Case.number == first.number))).scalar_one()
        citizen = await session.get(Citizen, case.citizen_id)
    assert case.channel == "phone" and case.status == "open" and case.created_by == "ivr"
    assert citizen is not None and citizen.phone == "7875550101"
    assert citizen.first_name == "Maria" and "7875550101" in case.description
    assert case.sla_due_at == NOW + timedelta(hours=48)
    assert case.language == "es"  # the caller's LANG: the citizen hears back in Spanish
    await bus.drain()
    assert [(e.number, e.change, e.citizen_id) for e in changes if isinstance(e, CaseChanged)] \
        == [(first.number, "created", citizen.id), (second.number, "created", None)]
    async with seeded() as session:
        audit = (await session.execute(
            select(AuditLog).where(AuditLog.entity_id == first.number))).scalars().all()
    assert [(a.actor, a.action) for a in audit] == [("ivr", "case.created")]
    await bus.close()


@pytest.mark.store
async def test_a_whole_call_on_the_seeded_store(seeded: async_sessionmaker[AsyncSession]) -> None:
    """The default menu end to end on the real store: Spanish, case status of an open case."""
    await _case(seeded, "311-2026-000423", "in_progress", "7875550101", NOW)
    recorder = Recorder()
    caller = Caller(inputs=["2", "9", ""], stream_digits=["1"])
    async with running_ivr(IvrServices(seeded), recorder) as server:
        await caller.call(server.port)
        await until(lambda: recorder.results)
    assert 'SAY DIGITS 423 "12"' not in caller.commands  # pressed 1 during the offer
    assert 'STREAM FILE 311/es/status-in-progress ""' in caller.commands
    assert caller.variables["CASE"] == "311-2026-000423"
    assert caller.variables["IVROUTCOME"] == "self_served"
